"""Retention: delete or clear what the protocol's ``retention:`` section says is kept no longer.

One pass (:func:`apply_retention`) runs in one transaction and is one line of the audit log,
whether it changed anything or, with ``dry_run``, only counted what it would change. Files
(voice notes, export zips) are removed only once the transaction has committed, so a failed
pass leaves every file with its row. ``companion retention apply`` runs it by hand; the
scheduler runs it once a day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Text, cast, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.partners.journey import CHARTS_FOLDER
from bot.privacy.mydata import EXPORTS_FOLDER
from bot.privacy.withdrawal import remove_after_commit
from bot.protocol import Retention
from bot.transport.outbox import SETTLED_STATUSES
from storage.clock import CLOCK
from storage.models import (
    Answer,
    AuditEvent,
    InboxStatus,
    InboxUpdate,
    OutboxMessage,
    RelayedMessage,
)

KINDS = ("answers", "voice_notes", "relay_messages", "exports", "outbox_payloads", "inbox_ids")


@dataclass
class RetentionResult:
    """How many of each kind were (or, in a dry run, would be) deleted or cleared."""

    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))


def _cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def _inside(root: Path, stored: str) -> Path | None:
    candidate = (root / stored).resolve()
    return candidate if candidate.is_relative_to(root.resolve()) else None


def old_export_files(data_dir: Path, cutoff: datetime) -> list[Path]:
    """Files made to be sent once, written before ``cutoff``: export zips (research and
    /mydata), and the /journey charts and pages (a page quotes the partner's reflections)."""
    # File times are system time; the one clock may be ahead of it (the demo, tests).
    limit = cutoff.timestamp() - CLOCK.offset.total_seconds()
    found = []
    candidates = [
        path
        for folder, pattern in (
            (EXPORTS_FOLDER, "*.zip"),
            (CHARTS_FOLDER, "*.png"),
            (CHARTS_FOLDER, "*.pdf"),
        )
        if (data_dir / folder).is_dir()
        for path in (data_dir / folder).glob(pattern)
    ]
    for path in candidates:
        try:
            if path.stat().st_mtime < limit:
                found.append(path)
        except FileNotFoundError:
            continue
    return found


async def _count(session: AsyncSession, query: Any) -> int:
    return int((await session.execute(query)).scalar_one())


def _payload_kept() -> Any:
    return cast(OutboxMessage.payload, Text) != "{}"


async def _clear_relayed(session: AsyncSession, cutoff: datetime, *, dry_run: bool) -> int:
    """Clear the text of relayed messages kept since before ``cutoff`` (the kept copy,
    encrypted at rest; the outbox copies are cleared with the other payloads)."""
    kept = (RelayedMessage.created_at < cutoff) & RelayedMessage.text.is_not(None)
    found = await _count(session, select(func.count()).select_from(RelayedMessage).where(kept))
    if found and not dry_run:
        await session.execute(
            update(RelayedMessage).where(kept).values(text=None, text_encrypted=False)
        )
    return found


async def apply_retention(
    session: AsyncSession,
    retention: Retention,
    *,
    data_dir: Path,
    now: datetime,
    dry_run: bool = False,
    actor_person_id: int | None = None,
    via: str = "cli",
) -> RetentionResult:
    """Apply ``retention`` as of ``now`` in the caller's transaction; audit it."""
    result = RetentionResult(dry_run=dry_run)
    counts = result.counts
    files: list[Path] = []

    answers_cutoff = cutoff = _cutoff(now, retention.answers_days)
    if cutoff is not None:
        old = Answer.answered_at < cutoff
        voices = (await session.execute(select(Answer.voice_path).where(old))).scalars()
        files += [p for s in voices if s and (p := _inside(data_dir, s)) is not None]
        counts["answers"] = await _count(session, select(func.count()).where(old))
        if not dry_run:
            await session.execute(delete(Answer).where(old))

    cutoff = _cutoff(now, retention.voice_notes_days)
    if cutoff is not None:
        old = (Answer.answered_at < cutoff) & Answer.voice_path.is_not(None)
        if answers_cutoff is not None:  # those go with their answers above
            old = old & (Answer.answered_at >= answers_cutoff)
        voices = (await session.execute(select(Answer.voice_path).where(old))).scalars()
        found = [p for s in voices if s and (p := _inside(data_dir, s)) is not None]
        counts["voice_notes"] = len(found)
        files += found
        if not dry_run:
            await session.execute(update(Answer).where(old).values(voice_path=None))

    for kind, days, only_relay in (
        ("relay_messages", retention.relay_messages_days, True),
        ("outbox_payloads", retention.outbox_payloads_days, False),
    ):
        cutoff = _cutoff(now, days)
        if cutoff is None:
            continue
        where = [
            OutboxMessage.status.in_(SETTLED_STATUSES),
            OutboxMessage.created_at < cutoff,
            _payload_kept(),
        ]
        # Relayed messages follow their own line of the policy, never the general one.
        relay = OutboxMessage.kind.like("relay%")
        where.append(relay if only_relay else ~relay)
        counts[kind] = await _count(
            session, select(func.count()).select_from(OutboxMessage).where(*where)
        )
        if not dry_run:
            await session.execute(update(OutboxMessage).where(*where).values(payload={}))

    cutoff = _cutoff(now, retention.relay_messages_days)
    if cutoff is not None:
        counts["relay_messages"] += await _clear_relayed(session, cutoff, dry_run=dry_run)

    cutoff = _cutoff(now, retention.inbox_ids_days)
    if cutoff is not None:
        where = [InboxUpdate.status != InboxStatus.PENDING, InboxUpdate.received_at < cutoff]
        counts["inbox_ids"] = await _count(
            session, select(func.count()).select_from(InboxUpdate).where(*where)
        )
        if not dry_run:
            await session.execute(delete(InboxUpdate).where(*where))

    cutoff = _cutoff(now, retention.exports_days)
    if cutoff is not None:
        exports = old_export_files(data_dir, cutoff)
        counts["exports"] = len(exports)
        files += exports

    if not dry_run:
        remove_after_commit(session, sorted(set(files)))
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=actor_person_id,
            action="retention.apply",
            detail={
                "via": via,
                "dry_run": dry_run,
                "counts": counts,
                "policy": retention.model_dump(),
            },
        )
    )
    return result


async def run_daily(db: Any, retention: Retention, data_dir: Path) -> RetentionResult:
    """The scheduler's daily pass: one transaction, one audit line."""
    from storage.clock import utcnow

    async with db.transaction() as session:
        return await apply_retention(
            session, retention, data_dir=data_dir, now=utcnow(), via="scheduler"
        )
