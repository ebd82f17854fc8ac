"""Withdrawal: stop all contact at once, then keep or delete what was given, as consented.

:func:`withdraw` does it all in the caller's transaction:

1. ``Person.status = withdrawn`` (the outbox sender cancels anything still queued for them at
   the last moment, and every partner tool ignores them from then on);
2. ``profile.withdrawn_at``; any pause and awaited text input are cleared;
3. every pending outbox row for them (by person or by chat) is cancelled, and every planned or
   open check-in is closed as ``cancelled`` (reason ``withdrawn``);
4. a consent decision records that the required consent is now withdrawn;
5. with ``withdrawal.data: delete`` in the protocol: their answers, check-ins and earlier
   consent decisions are deleted, their names are removed from the identity (the Telegram ids
   stay, so the bot knows to stay silent) and, replaced by their pseudonym, from every message
   about them (alerts and notices to staff, cards) and from staff notes and drafts, the texts
   of messages sent to them are redacted,
   and their voice notes are removed from disk. The Person row (pseudonym, status), the
   support checks raised about them (a duty-of-care record, pseudonymous) and the audit trail
   stay. With ``keep``, their data stays and nothing new is collected;
6. copies made for them (charts, /mydata exports) are removed from disk in both cases;
7. an ``person.withdrawn`` audit event, and a last goodbye through the outbox with
   ``person_id=None`` (so the sender's withdrawn check does not cancel it) and the key
   ``withdraw:goodbye:<person_id>``.

Files are removed only once the transaction commits, so a rolled-back withdrawal loses nothing.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import String, Text, cast, delete, event, literal, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from bot.partners.journey import CHARTS_FOLDER
from bot.privacy import views
from bot.privacy.mydata import EXPORTS_FOLDER
from bot.protocol import StudyProtocol
from bot.schedule.planner import cancel_for_person
from bot.transport.outbox import addressed_to, cancel_pending, enqueue
from prompts import Prompts
from storage.clock import utcnow
from storage.models import (
    Answer,
    AuditEvent,
    Checkin,
    CheckinStatus,
    ConsentDecision,
    OutboxMessage,
    PartnerProfile,
    Person,
    PersonStatus,
    RelayedMessage,
    SafeguardingAlert,
    StaffDraft,
    StaffNotice,
    TelegramIdentity,
)
from storage.queries.people import identity_of

log = logging.getLogger(__name__)

DataPolicy = Literal["keep", "delete"]
REDACTED_PAYLOAD: dict[str, Any] = {"redacted": "withdrawn"}


@dataclass(frozen=True)
class WithdrawalOutcome:
    """What a withdrawal did."""

    person_id: int
    data: DataPolicy
    cancelled_messages: int
    closed_checkins: int
    deleted: dict[str, int] = field(default_factory=dict)
    files: tuple[Path, ...] = ()  # removed from disk once the transaction commits


def is_withdrawn(person: Person | None) -> bool:
    """Whether ``person`` has withdrawn (the bot must not contact or answer them)."""
    return person is not None and person.status == PersonStatus.WITHDRAWN


def goodbye_key(person_id: int) -> str:
    """The outbox key of the last message a withdrawn person gets."""
    return f"withdraw:goodbye:{person_id}"


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _inside(root: Path, stored: str) -> Path | None:
    """``stored`` (relative to ``root``, or absolute) if it resolves inside ``root``."""
    candidate = (root / stored).resolve()
    return candidate if candidate.is_relative_to(root) else None


def _files_to_remove(data_dir: Path, pseudonym: str, voice_notes: list[str]) -> list[Path]:
    """This person's charts and /mydata exports, and the given voice notes, that exist."""
    root = data_dir.resolve()
    charts = root / CHARTS_FOLDER
    # The chart, and the /journey full page, which quotes their reflections.
    files = [charts / f"{pseudonym}.png", charts / f"legacy-{pseudonym}.pdf"]
    exports = root / EXPORTS_FOLDER
    if exports.is_dir():
        files += sorted(exports.glob(f"{pseudonym}-*"))
    for stored in voice_notes:
        inside = _inside(root, stored)
        if inside is not None:
            files.append(inside)
    return [f for f in files if f.is_file()]


def remove_files(paths: Iterable[Path]) -> int:
    """Delete files, ignoring ones already gone; return how many were removed."""
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("could not remove a withdrawn person's file (%s)", type(exc).__name__)
    return removed


def remove_after_commit(session: AsyncSession, paths: list[Path]) -> None:
    """Delete ``paths`` once the session's outermost transaction commits.

    Never when the change behind them is rolled back: neither the whole transaction nor a
    savepoint it was made in (an update that failed inside a batch of updates).
    """
    if not paths:
        return
    sync = session.sync_session
    state = {"done": False}
    made_in: set[SessionTransaction] = set()
    transaction = sync.get_nested_transaction() or sync.get_transaction()
    while transaction is not None:
        made_in.add(transaction)
        transaction = transaction.parent

    def on_commit(committed: Session) -> None:
        if state["done"] or committed.in_nested_transaction():
            return
        state["done"] = True
        remove_files(paths)

    def on_rollback(_session: Session, rolled_back: SessionTransaction) -> None:
        if rolled_back in made_in:
            state["done"] = True

    def on_end(_session: Session, ended: SessionTransaction) -> None:
        if ended.parent is None:
            state["done"] = True

    event.listen(sync, "after_commit", on_commit)
    event.listen(sync, "after_soft_rollback", on_rollback)
    event.listen(sync, "after_transaction_end", on_end)


def _name_forms(names: Iterable[str | None]) -> set[str]:
    """Each name as typed and as HTML-escaped (the way it appears in a message)."""
    return {form for name in names if name for form in (name, html.escape(name)) if form.strip()}


def _name_pattern(forms: set[str]) -> re.Pattern[str]:
    """A whole-word, case-blind match of any of ``forms``."""
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _may_mention(column: Any, forms: set[str]) -> Any:
    """A cheap SQL filter for rows that may hold one of ``forms`` (the pattern decides), so a
    large outbox is not read whole; none (every row) for a name SQL could not match plainly
    (JSON escapes anything but plain ASCII, and LIKE has its own wildcards)."""
    if not all(f.isascii() and not set(f) & set('%_\\"') for f in forms):
        return true()
    text = cast(column, Text)
    return or_(*(text.ilike(f"%{form}%") for form in forms))


def _scrub(value: Any, pattern: re.Pattern[str], stand_in: str) -> Any:
    """``value`` (JSON-like) with every match of ``pattern`` in its strings replaced."""
    if isinstance(value, str):
        return pattern.sub(stand_in, value)
    if isinstance(value, list):
        return [_scrub(v, pattern, stand_in) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, pattern, stand_in) for k, v in value.items()}
    return value


async def forget_names(session: AsyncSession, names: Iterable[str | None], stand_in: str) -> int:
    """Replace ``names`` with ``stand_in`` (the pseudonym) wherever the bot wrote them down
    about someone: outbox rows (alerts, notices and cards sent to staff, pending or sent),
    staff drafts, and the notes staff left on alerts and notices. Return how many rows changed.

    Read and rewritten in Python (portable, and names may need HTML escaping or case folding
    that SQL would not do the same way everywhere); withdrawals are rare.
    """
    forms = _name_forms(names)
    if not forms:
        return 0
    pattern = _name_pattern(forms)
    changed = 0
    for model, column in (
        (OutboxMessage, OutboxMessage.payload),
        (StaffDraft, StaffDraft.data),
        (SafeguardingAlert, SafeguardingAlert.resolution_note),
        (StaffNotice, StaffNotice.resolution_note),
    ):
        key = model.__mapper__.primary_key[0]
        rows = await session.execute(
            select(key, column).where(column.is_not(None), _may_mention(column, forms))
        )
        for row_id, value in rows.all():
            scrubbed = _scrub(value, pattern, stand_in)
            if scrubbed != value:
                await session.execute(
                    update(model)
                    .where(key == row_id)
                    .values({column.key: scrubbed})
                    .execution_options(synchronize_session=False)
                )
                changed += 1
    return changed


async def _forget_identity(
    session: AsyncSession, identity: TelegramIdentity, pseudonym: str
) -> dict[str, int]:
    """Their names, gone from the identity and from everything written about them."""
    mentions = await forget_names(
        session, [identity.first_name, identity.username, identity.preferred_name], pseudonym
    )
    identity.first_name = None
    identity.username = None
    identity.preferred_name = None
    identity.language_code = None
    return {"names": 1, "name_mentions": mentions}


async def withdraw(
    session: AsyncSession,
    person: Person,
    *,
    protocol: StudyProtocol,
    prompts: Prompts,
    data_dir: Path | None,
    now: datetime | None = None,
    actor_person_id: int | None = None,
    goodbye: bool = True,
) -> WithdrawalOutcome | None:
    """Withdraw ``person`` (see the module docstring); None if they had already withdrawn.

    ``actor_person_id`` is who asked (default: the person themselves, for the audit log).
    Nothing is committed here.
    """
    if is_withdrawn(person):
        return None
    now = now or utcnow()
    policy: DataPolicy = protocol.withdrawal.data
    pid = person.id

    person.status = PersonStatus.WITHDRAWN
    person.status_changed_at = now
    # The person row first: a due batch locks it too (bot/due.py), so the two wait for each
    # other instead of deadlocking, and no check-in is opened for someone who has just left.
    await session.flush()
    profile = await session.get(PartnerProfile, pid)
    if profile is not None:
        profile.withdrawn_at = now
        profile.awaiting_input = None
        profile.paused_until = None

    identity = await identity_of(session, pid)
    chat_id = identity.chat_id if identity is not None else None
    to_them = addressed_to(pid, chat_id)
    cancelled = await cancel_pending(session, person_id=pid, chat_id=chat_id, reason="withdrawn")
    closed = _rowcount(
        await session.execute(
            update(Checkin)
            .where(
                Checkin.person_id == pid,
                Checkin.status.in_([CheckinStatus.PLANNED, CheckinStatus.OPEN]),
            )
            .values(status=CheckinStatus.CANCELLED, reason="withdrawn")
            .execution_options(synchronize_session=False)
        )
    )

    await cancel_for_person(session, pid, now=now, reason="withdrawn")

    voice_notes: list[str] = []
    deleted: dict[str, int] = {}
    if policy == "delete":
        voice = await session.execute(
            select(Answer.voice_path).where(
                Answer.person_id == pid, Answer.voice_path.is_not(None)
            )
        )
        voice_notes = [stored for stored in voice.scalars() if stored]
    files = (
        await asyncio.to_thread(_files_to_remove, data_dir, person.pseudonym, voice_notes)
        if data_dir is not None
        else []
    )
    if policy == "delete":
        await session.execute(
            update(SafeguardingAlert)
            .where(SafeguardingAlert.person_id == pid)
            .values(answer_id=None)
            .execution_options(synchronize_session=False)
        )
        deleted["answers"] = _rowcount(
            await session.execute(
                delete(Answer)
                .where(Answer.person_id == pid)
                .execution_options(synchronize_session=False)
            )
        )
        deleted["checkins"] = _rowcount(
            await session.execute(
                delete(Checkin)
                .where(Checkin.person_id == pid)
                .execution_options(synchronize_session=False)
            )
        )
        deleted["consent_decisions"] = _rowcount(
            await session.execute(
                delete(ConsentDecision)
                .where(ConsentDecision.person_id == pid)
                .execution_options(synchronize_session=False)
            )
        )
        if identity is not None:
            deleted.update(await _forget_identity(session, identity, person.pseudonym))
        # What they wrote to their connector, and the connectors' copies of it.
        relayed_ids = (
            (
                await session.execute(
                    select(RelayedMessage.id).where(RelayedMessage.person_id == pid)
                )
            )
            .scalars()
            .all()
        )
        copies = [OutboxMessage.idempotency_key.like(f"relay:{i}:%") for i in relayed_ids]
        if copies:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.kind == "relay", or_(*copies))
                .values(payload=REDACTED_PAYLOAD)
                .execution_options(synchronize_session=False)
            )
        deleted["relayed_messages"] = _rowcount(
            await session.execute(
                delete(RelayedMessage)
                .where(RelayedMessage.person_id == pid)
                .execution_options(synchronize_session=False)
            )
        )
        deleted["message_texts"] = _rowcount(
            await session.execute(
                update(OutboxMessage)
                .where(to_them)
                # The keys go too: they are built from ids of the rows deleted above, which
                # SQLite may give out again, and a new row must never find its key taken.
                .values(
                    payload=REDACTED_PAYLOAD,
                    idempotency_key=literal("withdrawn:") + cast(OutboxMessage.id, String),
                )
                .execution_options(synchronize_session=False)
            )
        )
        deleted["files"] = len(files)

    # The withdrawal itself is a consent decision, kept whatever the data policy.
    session.add(
        ConsentDecision(
            person_id=pid, item_key=protocol.required_consent.key, granted=False, decided_at=now
        )
    )
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=actor_person_id if actor_person_id is not None else pid,
            action="person.withdrawn",
            detail={
                "person_id": pid,
                "pseudonym": person.pseudonym,
                "data": policy,
                "cancelled_messages": cancelled,
                "closed_checkins": closed,
                "deleted": deleted,
            },
        )
    )
    if goodbye and identity is not None:
        await enqueue(
            session,
            key=goodbye_key(pid),
            chat_id=identity.chat_id,
            text=views.goodbye(prompts, protocol).text,
            person_id=None,  # the sender cancels anything carrying a withdrawn person's id
            kind="goodbye",
        )
    remove_after_commit(session, files)
    log.info("person %s withdrew (data: %s)", person.pseudonym, policy)
    return WithdrawalOutcome(
        person_id=pid,
        data=policy,
        cancelled_messages=cancelled,
        closed_checkins=closed,
        deleted=deleted,
        files=tuple(files),
    )
