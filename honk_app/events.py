"""Read webhook payloads through githubkit's models, without paying for it on every delivery.

githubkit's `webhooks.parse` builds a pydantic TypeAdapter on every call, which costs about 25
times the JSON parse itself. We build one adapter per event name, once, and only validate the
deliveries that start work. A model that rejects a payload GitHub really sent is logged and the raw
mapping is used: a stricter schema must never drop a delivery.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections import deque
from functools import cache
from typing import Any

from githubkit.webhooks import parse_obj
from pydantic import TypeAdapter, ValidationError

from honk_app.priority import yield_to_deliveries

log = logging.getLogger("honk.events")

# The package holding githubkit's per-event models (the "latest" schema version it ships).
_WEBHOOKS_PACKAGE = parse_obj.__module__.rsplit(".", 1)[0]

#: The events Honk acts on (and so validates).
HANDLED_EVENTS = frozenset(
    {"issues", "issue_comment", "pull_request_review", "pull_request_review_comment", "check_run"}
)


@cache
def adapter_for(event: str) -> TypeAdapter[Any] | None:
    """The TypeAdapter for one event's model union, built once per process."""
    if event not in HANDLED_EVENTS:
        return None
    module = importlib.import_module(f".{event}", _WEBHOOKS_PACKAGE)
    return TypeAdapter(module.Event)


def warm_up() -> None:
    """Build every adapter ahead of the first delivery (called at startup, off the event loop)."""
    for event in HANDLED_EVENTS:
        adapter_for(event)


def validate(event: str, delivery_id: str, payload: dict[str, Any]) -> Any | None:
    """The githubkit model for `payload`, or None (logged) when the model rejects it."""
    adapter = adapter_for(event)
    if adapter is None:
        return None
    try:
        return adapter.validate_python(payload)
    except ValidationError as exc:
        errors = exc.errors()
        location = ".".join(str(part) for part in errors[0]["loc"]) if errors else "?"
        message = errors[0]["msg"] if errors else "?"
        log.warning(
            "githubkit's %s model rejected delivery %s (%d errors, first at %s: %s); "
            "using the raw payload",
            event,
            delivery_id,
            exc.error_count(),
            location,
            message,
        )
        return None


class ModelCheck:
    """Validate accepted trigger deliveries with githubkit's models, off the webhook path.

    The check only logs what a stricter schema rejects (Honk reads the raw mapping), so it waits
    until no delivery is being answered: it was an eighth of a trigger's CPU on the webhook path.
    Under a flood the oldest unchecked deliveries are dropped from the check (and counted), never
    from Honk's work."""

    def __init__(self, capacity: int = 256) -> None:
        self._waiting: deque[tuple[str, str, dict[str, Any]]] = deque(maxlen=capacity)
        self._wake = asyncio.Event()
        self.checked = 0
        self.skipped = 0
        self._skips_reported = 0

    def submit(self, event: str, delivery_id: str, payload: dict[str, Any]) -> None:
        if len(self._waiting) == self._waiting.maxlen:
            self.skipped += 1
        self._waiting.append((event, delivery_id, payload))
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                await yield_to_deliveries()
                if self._waiting:
                    validate(*self._waiting.popleft())
                    self.checked += 1
            if self.skipped > self._skips_reported:
                log.info(
                    "skipped the model check of %d deliveries during a burst",
                    self.skipped - self._skips_reported,
                )
                self._skips_reported = self.skipped
