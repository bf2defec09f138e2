"""The trigger inbox on a real SQLite file: group commit, ordered hand-off, crash leftovers."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from honk_app.models import Trigger
from honk_app.runs import inbox as inbox_module
from honk_app.runs.inbox import Inbox
from honk_app.triggers import TriggerRules, decide
from tests.fixtures import payloads


def trigger(text: str = "/honk tidy up", delivery: str | None = None) -> Trigger:
    decision = decide(
        "issue_comment", delivery or str(uuid.uuid4()), payloads.issue_comment(text), TriggerRules()
    )
    assert isinstance(decision, Trigger)
    return decision


class Recorder:
    """A hand-off that records what it was given, and can be told to fail or to hang."""

    def __init__(self) -> None:
        self.handed: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.fail_once: set[str] = set()
        self.hang = False
        self.changed = asyncio.Event()

    async def __call__(self, run_id: str, trigger_json: dict[str, Any]) -> None:
        if self.hang:
            await asyncio.Event().wait()
        if run_id in self.fail_once:
            self.fail_once.discard(run_id)
            raise RuntimeError("database is locked")
        self.handed.append(run_id)
        self.bodies.append(trigger_json)
        self.changed.set()


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(2000):
        if await condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def rows_on_disk(path: Path) -> list[str]:
    """What another process would find in the file after a crash."""
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT run_id FROM honk_inbox ORDER BY seq")]


async def test_put_returns_once_on_disk_and_the_runs_are_handed_over_in_order(
    tmp_path: Path,
) -> None:
    recorder = Recorder()
    recorder.hang = True  # nothing leaves the inbox: what put() returned for must be on disk
    inbox = Inbox(tmp_path / "inbox.sqlite", recorder)
    await inbox.start()
    triggers = [trigger(f"/honk task {i}") for i in range(5)]
    for t in triggers:
        assert await inbox.put(t) == t.run_id
    assert rows_on_disk(inbox.path) == [t.run_id for t in triggers]
    await inbox.stop()

    recorder = Recorder()
    inbox = Inbox(tmp_path / "inbox.sqlite", recorder)
    await inbox.start()  # a new process: it hands over what the last one accepted
    await until(lambda: _zero(inbox), "the inbox to drain")
    assert recorder.handed == [t.run_id for t in triggers]
    assert recorder.bodies[0] == triggers[0].to_json()
    assert Trigger.from_json(recorder.bodies[0]) == triggers[0]
    await inbox.stop()
    assert rows_on_disk(tmp_path / "inbox.sqlite") == []


async def _zero(inbox: Inbox) -> bool:
    return inbox.backlog() == 0


async def test_concurrent_triggers_share_commits(tmp_path: Path) -> None:
    recorder = Recorder()
    inbox = Inbox(tmp_path / "inbox.sqlite", recorder)
    await inbox.start()
    triggers = [trigger(f"/honk task {i}") for i in range(64)]
    await asyncio.gather(*(inbox.put(t) for t in triggers))
    await until(lambda: _zero(inbox), "the inbox to drain")
    assert sorted(recorder.handed) == sorted(t.run_id for t in triggers)
    assert inbox.commits < len(triggers) / 4, f"{inbox.commits} commits for 64 triggers"
    await inbox.stop()


async def opened(tmp_path: Path, *, hang: bool = False) -> tuple[Inbox, Recorder]:
    recorder = Recorder()
    recorder.hang = hang
    inbox = Inbox(tmp_path / "inbox.sqlite", recorder)
    await inbox.start()
    return inbox, recorder


async def test_a_redelivery_waiting_in_the_inbox_is_one_row(tmp_path: Path) -> None:
    inbox, _ = await opened(tmp_path, hang=True)
    delivery = str(uuid.uuid4())
    first, again = trigger(delivery=delivery), trigger(delivery=delivery)
    assert await inbox.put(first) == await inbox.put(again)
    assert rows_on_disk(inbox.path) == [first.run_id]
    await inbox.stop()


async def test_a_failed_hand_off_is_retried_without_holding_up_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    inbox = Inbox(tmp_path / "inbox.sqlite", recorder, retry_delay_s=0.01)
    await inbox.start()
    stuck, after = trigger("/honk first"), trigger("/honk second")
    recorder.fail_once.add(stuck.run_id)
    await asyncio.gather(inbox.put(stuck), inbox.put(after))  # one commit, stuck first
    await until(lambda: _zero(inbox), "the inbox to drain")
    assert recorder.handed == [after.run_id, stuck.run_id]
    assert "could not hand" in caplog.text and stuck.run_id in caplog.text
    await inbox.stop()


async def test_stop_keeps_what_was_not_handed_over(tmp_path: Path) -> None:
    inbox, _ = await opened(tmp_path, hang=True)
    t = trigger()
    await inbox.put(t)
    await inbox.stop()
    assert rows_on_disk(tmp_path / "inbox.sqlite") == [t.run_id]


async def test_the_wal_is_checkpointed_outside_the_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "CHECKPOINT_INTERVAL_S", 0.01)
    recorder = Recorder()
    inbox = Inbox(tmp_path / "inbox.sqlite", recorder)
    await inbox.start()
    await asyncio.gather(*(inbox.put(trigger(f"/honk {i}")) for i in range(20)))

    async def checkpointed() -> bool:
        return inbox.checkpoints > 0

    await until(checkpointed, "a checkpoint")
    await until(lambda: _zero(inbox), "the inbox to drain")
    await inbox.stop()
    with sqlite3.connect(tmp_path / "inbox.sqlite") as conn:
        # the writer never checkpoints inside a commit: SQLite's automatic one is off
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert recorder.handed
