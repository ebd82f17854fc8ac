"""Logging time given, step by step, and a connector's review of it.

A partner's ``/log`` (or a connector logging for a partner) is kept as a ``StaffDraft`` of
kind "log" until it is sent, so a restart between steps loses nothing: what (a kind), when
(one of the last days), how long (a choice), expenses (typed, or none), then a check. A
partner's entry waits for a connector (``pending``); a connector's own entry for a partner is
approved at once. A connector approves a pending entry as it is, or with corrected minutes.
Nothing here commits.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.transport.callbacks import number
from storage.models import AuditEvent, Involvement, InvolvementStatus, StaffDraft
from storage.queries import drafts

DRAFT_KIND = "log"
KINDS = ("meeting", "training", "reading", "delivering", "other")
DURATIONS = (30, 60, 90, 120, 180, 240, 360)
DAYS_BACK = 7
MAX_EXPENSES_PENCE = 100_000  # £1,000: more than that is a claim to make with the team
STEPS = ("kind", "day", "minutes", "expenses", "confirm")

_AMOUNT = re.compile(r"^\s*£?\s*(\d{1,6}(?:[.,]\d{1,2})?)\s*(?:p|pounds?)?\s*$", re.IGNORECASE)


def parse_pounds(text: str) -> int | None:
    """An amount typed in pounds ("12.50", "£8", "8 pounds") as pence; None if unreadable."""
    match = _AMOUNT.match(text or "")
    if match is None:
        return None
    try:
        pence = int(Decimal(match.group(1).replace(",", ".")) * 100)
    except InvalidOperation:
        return None
    return pence if 0 <= pence <= MAX_EXPENSES_PENCE else None


async def start(
    session: AsyncSession, recorder_id: int, partner_id: int, *, now: datetime
) -> StaffDraft:
    """Begin logging time for ``partner_id`` (replacing any other draft of the recorder)."""
    return await drafts.start(
        session, recorder_id, DRAFT_KIND, "kind", {"partner_id": partner_id}, now=now
    )


async def current(session: AsyncSession, recorder_id: int, *, now: datetime) -> StaffDraft | None:
    """The recorder's unfinished entry, if any (one left over a day is forgotten)."""
    return await drafts.get(session, recorder_id, DRAFT_KIND, now=now)


async def drop(session: AsyncSession, recorder_id: int) -> bool:
    """Forget the recorder's unfinished entry; True if there was one."""
    return await drafts.drop(session, recorder_id, DRAFT_KIND)


def advance(draft: StaffDraft, step: str, *, now: datetime, **values: Any) -> None:
    """Move the draft to ``step`` with ``values`` added."""
    drafts.save(draft, step, now=now, **values)


def day_of(days_ago: int, zone: ZoneInfo, now: datetime) -> datetime:
    """Midday, local time, ``days_ago`` days before today (never later than now): the moment
    an entry is dated."""
    local_day = now.astimezone(zone).date() - timedelta(days=days_ago)
    return min(datetime.combine(local_day, time(12, 0), tzinfo=zone), now)


def choose(draft: StaffDraft, what: str, value: str, zone: ZoneInfo, *, now: datetime) -> bool:
    """Apply a button's choice to the step it belongs to; False when it is not one offered."""
    given = number(value)  # days back, or minutes; None when not a plain number
    if what == "k" and draft.step == "kind" and value in KINDS:
        advance(draft, "day", now=now, kind=value)
    elif what == "d" and draft.step == "day" and given is not None and given < DAYS_BACK:
        advance(draft, "minutes", now=now, at=day_of(given, zone, now).isoformat())
    elif what == "m" and draft.step == "minutes" and given in DURATIONS:
        advance(draft, "expenses", now=now, minutes=given)
    elif what == "e" and draft.step == "expenses" and value == "0":
        advance(draft, "confirm", now=now, pence=0)
    else:
        return False
    return True


async def submit(
    session: AsyncSession, draft: StaffDraft, *, by_partner: bool, now: datetime
) -> Involvement:
    """Turn a confirmed draft into a log entry: pending for a partner, approved for staff."""
    data = draft.data
    entry = Involvement(
        person_id=int(data["partner_id"]),
        kind=str(data["kind"]),
        attended=True,
        minutes=int(data["minutes"]),
        occurred_at=datetime.fromisoformat(str(data["at"])),
        expenses_pence=int(data.get("pence") or 0) or None,
        recorded_by_person_id=draft.person_id,
        recorded_at=now,
        status=InvolvementStatus.PENDING if by_partner else InvolvementStatus.APPROVED,
        reviewed_by_person_id=None if by_partner else draft.person_id,
        reviewed_at=None if by_partner else now,
    )
    session.add(entry)
    await session.delete(draft)
    await session.flush()
    session.add(
        AuditEvent(
            actor_person_id=draft.person_id,
            action="involvement.logged",
            detail={"entry_id": entry.id, "person_id": entry.person_id, "status": entry.status},
            at=now,
        )
    )
    return entry


async def review(
    session: AsyncSession,
    entry_id: int,
    connector_id: int,
    *,
    minutes: int | None = None,
    now: datetime,
) -> Involvement | None:
    """Approve a pending entry (with corrected ``minutes`` if given); None if not pending."""
    entry = (
        await session.execute(
            select(Involvement).where(
                Involvement.id == entry_id, Involvement.status == InvolvementStatus.PENDING
            )
        )
    ).scalar_one_or_none()
    if entry is None or (minutes is not None and minutes not in DURATIONS):
        return None
    before = entry.minutes
    if minutes is not None:
        entry.minutes = minutes
    entry.status = InvolvementStatus.APPROVED
    entry.reviewed_by_person_id = connector_id
    entry.reviewed_at = now
    session.add(
        AuditEvent(
            actor_person_id=connector_id,
            action="involvement.approved",
            detail={"entry_id": entry.id, "minutes_logged": before, "minutes": entry.minutes},
            at=now,
        )
    )
    return entry


async def pending(session: AsyncSession, entry_id: int) -> Involvement | None:
    """A pending entry by id (None once reviewed or gone)."""
    return (
        await session.execute(
            select(Involvement).where(
                Involvement.id == entry_id, Involvement.status == InvolvementStatus.PENDING
            )
        )
    ).scalar_one_or_none()
