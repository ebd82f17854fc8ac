"""``/export`` in Telegram: the period buttons, and making and delivering the zip.

The export is made after the update's transaction has committed, in a thread with its own
event loop and database connections, so a big study never holds the bot up. The zip (CSV) is
then sent through the outbox as a document, or, over Telegram's 50 MB limit for bots, the
researcher is told to use the command line. Either way the export is in the audit log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.protocol import StudyProtocol
from bot.research.export import (
    ExportError,
    ExportOptions,
    ExportResult,
    make_window,
    record_export,
)
from bot.research.export import write_export as _write_export
from bot.settings import Settings
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.clock import utcnow
from storage.db import Database

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "export"
#: The periods offered as buttons: label key and days back (None: everything).
PERIODS: dict[str, int | None] = {"days_30": 30, "days_90": 90, "year": 365, "all": None}
TELEGRAM_BOT_FILE_LIMIT = 50 * 1024 * 1024  # bytes a bot may send as a document
EXPORTS_FOLDER = "exports"


def period_keyboard(prompts: Prompts) -> InlineKeyboardMarkup:
    """One button per period, two to a row."""
    buttons = [
        InlineKeyboardButton(
            prompts.label(f"research.buttons.{key}"), callback_data=f"{CALLBACK_PREFIX}:{key}"
        )
        for key in PERIODS
    ]
    return InlineKeyboardMarkup([buttons[:2], buttons[2:]])


def parse_period(data: str | None) -> str | None:
    """The period key in a button's callback data, or None when it is not one of ours."""
    prefix, _, key = (data or "").partition(":")
    return key if prefix == CALLBACK_PREFIX and key in PERIODS else None


@dataclass(frozen=True)
class Delivery:
    """Where the finished export goes."""

    db: Database
    settings: Settings
    protocol: StudyProtocol
    prompts: Prompts
    chat_id: int
    person_id: int
    wake_sender: Callable[[], None] | None = None


def _export_in_thread(delivery: Delivery, options: ExportOptions) -> ExportResult:
    """Run the export on its own event loop and engine (called in a worker thread)."""

    async def run() -> ExportResult:
        db = Database(delivery.settings.database_url)
        try:
            key = delivery.settings.companion_secret_key
            return await _write_export(
                db,
                delivery.protocol,
                delivery.prompts,
                options,
                secret=key.get_secret_value() if key is not None else None,
                data_dir=delivery.settings.companion_data_dir,
                study_file=delivery.settings.companion_study,
            )
        finally:
            await db.dispose()

    return asyncio.run(run())


async def export_and_send(delivery: Delivery, period: str) -> None:
    """After the commit: make the export for ``period`` and queue the document (or a note)."""
    now = utcnow()
    days = PERIODS[period]
    since = (now - timedelta(days=days)).date() if days is not None else None
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    relative = f"{EXPORTS_FOLDER}/research-{stamp}.zip"
    data_dir = delivery.settings.companion_data_dir
    await asyncio.to_thread((data_dir / EXPORTS_FOLDER).mkdir, parents=True, exist_ok=True)
    options = ExportOptions(
        out=data_dir / relative,
        window=make_window(delivery.protocol, since=since),
        own_part=False,  # helpers format a big export: this process answers partners
    )
    result: ExportResult | None = None
    problem = None
    try:
        result = await asyncio.to_thread(_export_in_thread, delivery, options)
    except ExportError as exc:
        problem = exc.sentence(delivery.prompts)
    except Exception as exc:  # a broken export must still get the researcher an answer
        log.exception("an export from Telegram failed")
        problem = type(exc).__name__
    key = f"export:{delivery.person_id}:{stamp}"
    async with delivery.db.transaction() as session:
        if result is None:
            await enqueue(
                session,
                key=key,
                chat_id=delivery.chat_id,
                text=delivery.prompts.render("research/export_failed", reason=problem or ""),
                person_id=delivery.person_id,
                kind="export",
            )
        else:
            record_export(session, result, via="telegram", actor_person_id=delivery.person_id)
            if result.size > TELEGRAM_BOT_FILE_LIMIT:
                await asyncio.to_thread(Path.unlink, result.path, True)
                await enqueue(
                    session,
                    key=key,
                    chat_id=delivery.chat_id,
                    text=delivery.prompts.render(
                        "research/export_too_big", megabytes=round(result.size / 1e6)
                    ),
                    person_id=delivery.person_id,
                    kind="export",
                )
            else:
                await enqueue(
                    session,
                    key=key,
                    chat_id=delivery.chat_id,
                    method="sendDocument",
                    text=delivery.prompts.render(
                        "research/export_caption",
                        responses=result.rows["responses"],
                        since=since.isoformat() if since else None,
                    ),
                    payload={
                        "document": {
                            "path": relative,
                            "filename": f"research-export-{stamp[:8]}.zip",
                        }
                    },
                    person_id=delivery.person_id,
                    kind="export",
                )
    if delivery.wake_sender is not None:
        delivery.wake_sender()
