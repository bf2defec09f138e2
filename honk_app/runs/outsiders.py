"""Replies to people without write access: at most one per issue or pull request per UTC day.

Anyone can comment `/honk` on a public repository, and each answer costs the installation's
shared rate limit. So the reply is built from the delivery alone and posted without paging
through the issue's comments, and a row in Honk's database, inserted only if absent, decides
which of many such comments is answered: a flood, or a crash replay, posts once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from honk_app.github.issues import with_marker
from honk_app.models import Trigger
from honk_app.runs.runtime import Runtime
from honk_app.runs.store import outsider_replies_table as replies

Claim = Literal["mine", "retry", "taken"]


def utc_day(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


class ReplyLog:
    """Who answered an outsider on which target and day."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, target_key: str, day: str, run_id: str) -> Claim:
        """ "mine": post the reply; "retry": this run claimed it before and may have posted
        (a crash replay); "taken": another run answers today, or this one already did."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    replies.insert().values(
                        target_key=target_key, day=day, run_id=run_id, created_at=time.time()
                    )
                )
            return "mine"
        except sa.exc.IntegrityError:
            pass
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(replies.c.run_id, replies.c.comment_id).where(
                    replies.c.target_key == target_key, replies.c.day == day
                )
            ).first()
        if row is not None and row.run_id == run_id and row.comment_id is None:
            return "retry"
        return "taken"

    def posted(self, target_key: str, day: str, comment_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                replies.update()
                .where(replies.c.target_key == target_key, replies.c.day == day)
                .values(comment_id=comment_id)
            )


async def reply_once(rt: Runtime, trigger: Trigger, body: str, marker: str) -> bool:
    """Post `body` unless someone without write access was answered here today; True if posted."""
    log = ReplyLog(rt.store.engine)
    key, day = trigger.target.key, utc_day(datetime.now(UTC))
    claim = await asyncio.to_thread(log.claim, key, day, trigger.run_id)
    if claim == "taken":
        return False
    gh = await rt.github.installation(trigger.installation_id)
    full_name, number = trigger.target.full_name, trigger.target.number
    if claim == "mine":
        comment = await gh.create_comment(full_name, number, with_marker(body, marker))
    else:  # an earlier attempt may have posted before it crashed: look once, by its marker
        comment = await gh.reply(full_name, number, body, marker=marker)
    await asyncio.to_thread(log.posted, key, day, comment.id)
    return True
