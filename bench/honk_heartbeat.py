"""`python bench/honk_heartbeat.py serve …`: Honk's own CLI, with a heartbeat on every event loop
of the process (uvicorn's, and the asyncio loop DBOS runs workflows on in a thread).

Each heartbeat sleeps `PERIOD_S` and measures how late it woke: that lateness is how long the
loop could not run anything. Every lateness above `REPORT_S` is appended to the file named by
`HONK_BENCH_STALLS` as `<unix time> <seconds> <loop>`, for bench/hostile_diff.py to read. Nothing
of Honk is changed: the hooks are uvicorn's `Server.serve` and asyncio's `run_forever`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PERIOD_S = 0.005
REPORT_S = 0.010


async def heartbeat(out: Path, name: str) -> None:
    with out.open("a", buffering=1) as log:
        while True:
            start = time.monotonic()
            await asyncio.sleep(PERIOD_S)
            late = time.monotonic() - start - PERIOD_S
            if late > REPORT_S:
                log.write(f"{time.time():.3f} {late:.4f} {name}\n")


def install(out: Path) -> None:
    import uvicorn

    serve = uvicorn.Server.serve

    async def serve_with_heartbeat(self: uvicorn.Server, *args: Any, **kwargs: Any) -> None:
        beat = asyncio.create_task(heartbeat(out, "uvicorn"))
        try:
            await serve(self, *args, **kwargs)
        finally:
            beat.cancel()

    uvicorn.Server.serve = serve_with_heartbeat  # type: ignore[method-assign]

    run_forever: Callable[[asyncio.BaseEventLoop], None] = asyncio.BaseEventLoop.run_forever

    def run_forever_with_heartbeat(self: asyncio.BaseEventLoop) -> None:
        name = threading.current_thread().name
        self.call_soon(lambda: self.create_task(heartbeat(out, f"asyncio:{name}")))
        run_forever(self)

    asyncio.BaseEventLoop.run_forever = run_forever_with_heartbeat  # type: ignore[method-assign]


if __name__ == "__main__":
    install(Path(os.environ["HONK_BENCH_STALLS"]))
    from honk_app.cli import main

    main(sys.argv[1:])
