"""The policy's look at a workspace: a capped read of its diff, judged in a worker thread.

Parsing and scanning a diff is CPU work over text the agent wrote; on the event loop it stopped
every other run and webhook (120 MB of short lines blocked it for over 90 s). Here git's output
is cut at `MAX_DIFF_BYTES`, the verdict is reached in a thread, and a thread that has not finished
by `INSPECT_TIMEOUT_S` is told to stop (the parser polls a flag) and the change is not pushed.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterable

from honk_app.repo_config import RepoConfig
from honk_app.safety.policy import (
    DiffTotals,
    InspectionStopped,
    PolicyReport,
    evaluate,
    inspect_diff,
    timeout_sentence,
)
from honk_app.workspace.clone import Workspace
from honk_app.workspace.git import MAX_DIFF_BYTES

INSPECT_TIMEOUT_S = 60.0


async def inspect_workspace(
    ws: Workspace,
    config: RepoConfig,
    *,
    known_secrets: Iterable[str] = (),
    max_bytes: int = MAX_DIFF_BYTES,
    timeout_s: float = INSPECT_TIMEOUT_S,
) -> PolicyReport:
    """The policy's verdict on what `ws.commit` would commit now."""
    read = await ws.diff(max_bytes)
    totals = DiffTotals(*read.totals) if read.totals is not None else None
    stop = threading.Event()
    judge = functools.partial(
        inspect_diff, read.data, config, complete=read.complete, totals=totals,
        known_secrets=tuple(known_secrets), should_stop=stop.is_set,
    )  # fmt: skip
    work = asyncio.ensure_future(asyncio.to_thread(judge))
    try:
        return await asyncio.wait_for(asyncio.shield(work), timeout_s)
    except TimeoutError:
        stop.set()
        try:
            await work  # ends at the parser's next poll of `stop`
        except InspectionStopped:
            pass
        else:  # it finished just as time ran out: its verdict stands
            return work.result()
        return evaluate([], config, totals=totals, uninspected=timeout_sentence(timeout_s))
    except asyncio.CancelledError:
        stop.set()
        raise
