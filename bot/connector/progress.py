"""The connector's view of a broadcast going out: one progress message, then the report.

:class:`BroadcastProgress` runs beside the sender (on the leader only). Every few seconds it
reads each unfinished broadcast's counts; while copies are still going out it edits the
connector's progress message in place (only when the numbers changed, and never more often
than ``interval``); once nothing is left in flight it queues the final report to the
connector through the outbox and marks the broadcast finished. Its state is the database's,
so a restart picks up where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from telegram import Bot
from telegram.error import BadRequest, TelegramError

from bot.connector import broadcast as broadcasts
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.clock import utcnow
from storage.db import Database
from storage.queries.broadcasts import progress_message_id, unfinished_broadcasts

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 3.0  # seconds between two edits of one progress message, at least


class BroadcastProgress:
    """Edits progress messages and sends final reports (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        bot: Bot,
        prompts: Prompts,
        *,
        interval: float = DEFAULT_INTERVAL,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.bot = bot
        self.prompts = prompts
        self.interval = interval
        self.on_queued = on_queued
        self._shown: dict[int, str] = {}

    async def run(self) -> None:
        """Look at unfinished broadcasts every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.pass_once()
            except Exception as exc:  # the database may come back: keep going
                log.error("broadcast progress: pass failed (%s)", type(exc).__name__)
                log.debug("broadcast progress failure", exc_info=True)
            await asyncio.sleep(self.interval)

    async def pass_once(self) -> None:
        """One look at every unfinished broadcast."""
        edits: list[tuple[int, int, int, str]] = []
        queued = False
        async with self.db.transaction() as session:
            now = utcnow()  # once the transaction has begun: not before a wait for SQLite's lock
            for item in await unfinished_broadcasts(session):
                current = await broadcasts.report(session, item.id, now=now)
                if current is None:
                    continue
                if current.done:
                    item.finished_at = now
                    self._shown.pop(item.id, None)
                    if item.progress_chat_id is not None:
                        await enqueue(
                            session,
                            key=broadcasts.report_key(item.id),
                            chat_id=item.progress_chat_id,
                            text=self.prompts.render("broadcast/report", **report_values(current)),
                            kind="broadcast_progress",
                        )
                        queued = True
                    continue
                if item.progress_chat_id is None:
                    continue
                due = item.progress_edited_at is None or now - item.progress_edited_at >= (
                    timedelta(seconds=self.interval)
                )
                message_id = await progress_message_id(session, broadcasts.progress_key(item.id))
                text = self.prompts.render(
                    "broadcast/progress",
                    id=item.id,
                    recipients=item.recipients,
                    counts=current.counts,
                )
                if due and message_id is not None and self._shown.get(item.id) != text:
                    item.progress_edited_at = now
                    edits.append((item.id, item.progress_chat_id, message_id, text))
        if queued and self.on_queued is not None:
            self.on_queued()
        for broadcast_id, chat_id, message_id, text in edits:
            with contextlib.suppress(asyncio.CancelledError):
                await self._edit(broadcast_id, chat_id, message_id, text)

    async def _edit(self, broadcast_id: int, chat_id: int, message_id: int, text: str) -> None:
        try:
            await self.bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id)
            self._shown[broadcast_id] = text
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                self._shown[broadcast_id] = text
            else:
                log.info(
                    "broadcast %d: progress not edited (%s)", broadcast_id, type(exc).__name__
                )
        except TelegramError as exc:
            log.info("broadcast %d: progress not edited (%s)", broadcast_id, type(exc).__name__)


def report_values(current: broadcasts.Report) -> dict[str, Any]:
    """What the report templates show."""
    b = current.broadcast
    return {
        "id": b.id,
        "recipients": b.recipients,
        "counts": current.counts,
        "left_out": {k: v for k, v in b.left_out.items() if v},
        "cancelled": b.cancelled_at is not None,
        "done": current.done,
    }
