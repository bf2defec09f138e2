"""A fresh PostgreSQL database per test, on the server named by HONK_TEST_POSTGRES_URL.

CI starts a throwaway cluster (.ci/run). Where it is missing a test fails under CI, and is skipped
with the reason elsewhere, so a developer without PostgreSQL can still run the rest.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.needs import missing


def server_url() -> str:
    url = os.environ.get("HONK_TEST_POSTGRES_URL")
    if not url:
        missing(
            "HONK_TEST_POSTGRES_URL is not set: the PostgreSQL mode needs a real server",
            "start one and set it",
        )
    return url


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database; its URL. Dropped afterwards."""
    url = server_url()
    name = f"honk_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
