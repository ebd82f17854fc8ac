""" "You said, we did": what a partner has been told changed because of them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ImpactEvent, ImpactRecipient


async def changes_for(
    session: AsyncSession, person_id: int, *, limit: int = 10
) -> list[ImpactEvent]:
    """The impact events a partner was told about, newest first."""
    rows = await session.execute(
        select(ImpactEvent)
        .join(ImpactRecipient, ImpactRecipient.event_id == ImpactEvent.id)
        .where(ImpactRecipient.person_id == person_id)
        .order_by(ImpactEvent.created_at.desc(), ImpactEvent.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())
