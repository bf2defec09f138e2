"""Startup: seconds from starting `honk serve` to its first answer to `GET /ping`.

A real `honk serve` with the embedded defaults (SQLite in a fresh temporary HONK_DATA_DIR), with
credentials that point at an address where nothing listens: startup must not need GitHub. Target:
/ping answered within 2 s (median of `--runs`). A benchmark reports; it always exits 0.

    python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.github_auth import generate_private_key_pem
from tests.fakes.loopback import free_port

TARGET_S = 2.0
GIVE_UP_S = 60.0
HONK = Path(sys.executable).with_name("honk")


def answers_ping(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def one_start(private_key: str) -> float | None:
    """Seconds to the first /ping answer, or None if Honk died or never answered."""
    data = tempfile.mkdtemp(prefix="honk-bench-startup-")
    port = free_port()
    env = {
        **os.environ,
        "APP_ID": "1",
        "PRIVATE_KEY": private_key,
        "WEBHOOK_SECRET": "bench-webhook-secret-0123456789",
        "HONK_DATA_DIR": data,
        "GITHUB_API_URL": "http://127.0.0.1:9",  # nothing listens there
        "PORT": str(port),
        "HOST": "127.0.0.1",
    }
    started = time.monotonic()
    honk = subprocess.Popen(
        [str(HONK), "--env-file", os.devnull, "serve"],
        env=env,
        cwd=data,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.monotonic() - started < GIVE_UP_S and honk.poll() is None:
            if answers_ping(port):
                return time.monotonic() - started
            time.sleep(0.01)
        return None
    finally:
        honk.terminate()
        honk.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    key = generate_private_key_pem()
    samples = [one_start(key) for _ in range(args.runs)]
    answered = [s for s in samples if s is not None]
    print("honk serve: seconds to the first /ping answer")
    print("  samples: " + ", ".join("never" if s is None else f"{s:.2f}" for s in samples))
    if not answered:
        print(f"  /ping within {TARGET_S:.0f} s: MISS (never answered)")
        return
    median = statistics.median(answered)
    verdict = "PASS" if median <= TARGET_S and len(answered) == len(samples) else "MISS"
    print(f"  median {median:.2f} s, max {max(answered):.2f} s")
    print(f"  /ping within {TARGET_S:.0f} s (median): {verdict}")


if __name__ == "__main__":
    main()
