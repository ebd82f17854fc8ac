"""A staff member's half-finished step-by-step command (/broadcast, /meeting, /log for a
partner, /yousaid, resolving an alert), kept in the database (:class:`~storage.models.StaffDraft`)
so that a restart between steps loses nothing. One draft per person: starting one replaces any
other. The one home of these rules; each feature names its own ``kind``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import StaffDraft

DRAFT_TTL = timedelta(days=1)  # a draft left this long is forgotten


async def get(
    session: AsyncSession, person_id: int, kind: str, *, now: datetime
) -> StaffDraft | None:
    """The person's draft of ``kind``, if one is open and not stale."""
    draft = await session.get(StaffDraft, person_id)
    if draft is None or draft.kind != kind:
        return None
    if draft.updated_at < now - DRAFT_TTL:
        await session.delete(draft)
        return None
    return draft


async def start(
    session: AsyncSession,
    person_id: int,
    kind: str,
    step: str,
    data: dict[str, Any],
    *,
    now: datetime,
) -> StaffDraft:
    """Begin a draft of ``kind`` at ``step``, replacing whatever draft the person had."""
    draft = await session.get(StaffDraft, person_id)
    if draft is None:
        draft = StaffDraft(person_id=person_id, kind=kind, step=step, data=data, updated_at=now)
        session.add(draft)
    else:
        draft.kind, draft.step, draft.data, draft.updated_at = kind, step, dict(data), now
    await session.flush()
    return draft


def save(draft: StaffDraft, step: str, *, now: datetime, **values: Any) -> None:
    """Move a draft to ``step`` with ``values`` added to its data."""
    draft.step = step
    draft.data = {**draft.data, **values}  # a new dict, so the JSON column sees the change
    draft.updated_at = now


async def drop(session: AsyncSession, person_id: int, kind: str) -> bool:
    """Forget the person's draft of ``kind``; True if there was one."""
    draft = await session.get(StaffDraft, person_id)
    if draft is None or draft.kind != kind:
        return False
    await session.delete(draft)
    return True


async def staff_draft_of(session: AsyncSession, person_id: int) -> StaffDraft | None:
    """The draft ``person_id`` has open, of any kind (one at a time per person)."""
    return await session.get(StaffDraft, person_id)


async def drop_any(session: AsyncSession, person_id: int) -> bool:
    """Forget whatever draft the person has open (their staff role ended); True if one was."""
    draft = await session.get(StaffDraft, person_id)
    if draft is None:
        return False
    await session.delete(draft)
    return True
