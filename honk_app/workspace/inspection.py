"""The policy's look at a workspace: a capped read of its diff, judged in a worker thread.

Parsing and scanning a diff is CPU work over text the agent wrote; on the event loop it stopped
every other run and webhook (120 MB of short lines blocked it for over 90 s). Here git's output
is cut at `MAX_DIFF_BYTES`, the verdict is reached in a thread, and a thread that has not finished
by `INSPECT_TIMEOUT_S` is told to stop (the parser polls a flag) and the change is not pushed.

Protected paths are restored here too, found in the diff and in the list of every changed file
(`numstat`, which a diff cut at its cap may not reach); one still changed blocks the push.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
from collections.abc import Iterable, Sequence

from honk_app.repo_config import RepoConfig
from honk_app.safety.globs import compiled
from honk_app.safety.policy import (
    DiffTotals,
    InspectionStopped,
    PolicyReport,
    evaluate,
    inspect_diff,
    timeout_sentence,
)
from honk_app.workspace.clone import Workspace
from honk_app.workspace.git import MAX_DIFF_BYTES, FileStat
from honk_app.workspace.staging import LISTING_SENTENCE

INSPECT_TIMEOUT_S = 60.0
RESTORE_ROUNDS = 3  # restore, look again: a change that keeps coming back is not pushed


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
    if read.listing_cut:
        return evaluate([], config, uninspected=LISTING_SENTENCE)
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


async def restore_protected(
    ws: Workspace,
    config: RepoConfig,
    *,
    known_secrets: Iterable[str] = (),
    rounds: int = RESTORE_ROUNDS,
    max_bytes: int = MAX_DIFF_BYTES,
) -> tuple[set[str], PolicyReport]:
    """Undo changes under protected paths; what was restored, and the verdict on what is left.

    Protected paths are looked for in the (capped) diff and in `numstat`, which lists every
    changed file (as far as a diff's cap would reach: past it, the diff is cut and not pushed);
    restoring is repeated, `rounds` times at most, while either still names one. A protected
    path changed after that is not counted as restored and blocks the push (its sentence in
    `uninspected`, the report's one free-form reason to block)."""
    secrets = tuple(known_secrets)
    restored: set[str] = set()
    report = await inspect_workspace(ws, config, known_secrets=secrets, max_bytes=max_bytes)
    protected = await _protected(ws, config, report)
    for _ in range(rounds):
        if not protected:
            break
        await ws.restore_paths(sorted(protected))
        restored |= protected
        report = await inspect_workspace(ws, config, known_secrets=secrets, max_bytes=max_bytes)
        protected = await _protected(ws, config, report)
    if protected:
        report = _still_protected(report, sorted(protected))
    return restored - protected, report


async def _protected(ws: Workspace, config: RepoConfig, report: PolicyReport) -> set[str]:
    """The protected paths the report names, and those among every changed file."""
    return set(report.protected) | set(await protected_in((await ws.numstat()).files, config))


async def protected_in(files: Sequence[FileStat], config: RepoConfig) -> list[str]:
    """The paths among `files` that `config.protected_paths` protects (matched in a thread:
    a listing may name half a million files)."""
    globs = compiled(tuple(config.protected_paths))
    return await asyncio.to_thread(
        lambda: [f.path for f in files if globs.first_match(f.path) is not None]
    )


def _still_protected(report: PolicyReport, paths: list[str]) -> PolicyReport:
    named = ", ".join(f"`{p}`" for p in paths[:10]) + (
        f" and {len(paths) - 10:,} more" if len(paths) > 10 else ""
    )
    sentence = (
        f"Honk could not undo the changes to protected paths ({named}), so it did not push the "
        "change."
    )
    why = f"{report.uninspected} {sentence}" if report.uninspected else sentence
    return dataclasses.replace(report, protected=[], protected_patterns={}, uninspected=why)
