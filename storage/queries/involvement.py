"""The involvement log: time partners gave, summed the same way everywhere.

Only approved rows count as time given (a meeting marked "did not come" has 0 minutes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Involvement, InvolvementStatus


@dataclass(frozen=True)
class Given:
    """What one partner gave: meetings attended, minutes and expenses (approved only)."""

    meetings: int = 0
    minutes: int = 0
    expenses_pence: int = 0


def _approved() -> list[object]:
    return [Involvement.status == InvolvementStatus.APPROVED]


async def given_by(
    session: AsyncSession,
    person_ids: Iterable[int] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[int, Given]:
    """Approved time per partner (all partners when ``person_ids`` is None), in a period."""
    query = (
        select(
            Involvement.person_id,
            func.sum(
                case((Involvement.meeting_id.is_not(None) & Involvement.attended, 1), else_=0)
            ),
            func.sum(Involvement.minutes),
            func.sum(func.coalesce(Involvement.expenses_pence, 0)),
        )
        .where(*_approved())  # type: ignore[arg-type]
        .group_by(Involvement.person_id)
    )
    if person_ids is not None:
        query = query.where(Involvement.person_id.in_(list(person_ids)))
    if since is not None:
        query = query.where(Involvement.occurred_at >= since)
    if until is not None:
        query = query.where(Involvement.occurred_at < until)
    rows = await session.execute(query)
    return {
        pid: Given(int(meetings or 0), int(minutes or 0), int(pence or 0))
        for pid, meetings, minutes, pence in rows
    }


async def entries_of(
    session: AsyncSession, person_id: int, *, limit: int = 20
) -> list[Involvement]:
    """A partner's time given (approved or waiting for approval), newest first."""
    rows = await session.execute(
        select(Involvement)
        .where(
            Involvement.person_id == person_id,
            Involvement.attended.is_(True),
        )
        .order_by(Involvement.occurred_at.desc(), Involvement.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())
