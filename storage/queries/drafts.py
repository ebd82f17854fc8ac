"""A staff member's open step-by-step draft (a broadcast, a meeting, an alert's note...)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import StaffDraft


async def staff_draft_of(session: AsyncSession, person_id: int) -> StaffDraft | None:
    """The draft ``person_id`` has open, if any (one at a time per person)."""
    return await session.get(StaffDraft, person_id)
