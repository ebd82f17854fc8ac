"""Partners as the connectors see them: who, which group, how they take part, and what they
said in their own words."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Answer,
    Checkin,
    CheckinStatus,
    Involvement,
    InvolvementStatus,
    Meeting,
    PartnerProfile,
    Person,
    Role,
    SafeguardingAlert,
    TelegramIdentity,
)


@dataclass(frozen=True)
class PartnerRow:
    """One partner's line on the roster (facts only; the words are the prompts')."""

    person_id: int
    name: str
    group_key: str | None
    status: str
    onboarded: bool
    paused_until: datetime | None
    last_checkin_at: datetime | None


async def partner_rows(
    session: AsyncSession, groups: frozenset[str] | None, person_id: int | None = None
) -> list[PartnerRow]:
    """Partners in ``groups`` (None: all), or just ``person_id``; sorted by group and name."""
    last = (
        select(Checkin.person_id, func.max(Checkin.completed_at).label("at"))
        .where(Checkin.status == CheckinStatus.COMPLETED)
        .group_by(Checkin.person_id)
        .subquery()
    )
    query = (
        select(
            Person.id,
            TelegramIdentity.called,
            PartnerProfile.group_key,
            Person.status,
            PartnerProfile.onboarded_at,
            PartnerProfile.paused_until,
            last.c.at,
        )
        .join(PartnerProfile, PartnerProfile.person_id == Person.id)
        .outerjoin(TelegramIdentity, TelegramIdentity.person_id == Person.id)
        .outerjoin(last, last.c.person_id == Person.id)
        .where(Person.role == Role.PARTNER)
    )
    if groups is not None:
        query = query.where(PartnerProfile.group_key.in_(sorted(groups)))
    if person_id is not None:
        query = query.where(Person.id == person_id)
    rows = [
        PartnerRow(
            person_id=pid,
            name=name,
            group_key=group,
            status=status,
            onboarded=onboarded is not None,
            paused_until=paused,
            last_checkin_at=at,
        )
        for pid, name, group, status, onboarded, paused, at in await session.execute(query)
    ]
    return sorted(rows, key=lambda r: (r.group_key or "~", r.name.casefold(), r.person_id))


async def free_text_answers(session: AsyncSession, person_id: int, limit: int) -> list[Answer]:
    """A partner's latest current answers in their own words (typed), newest first."""
    rows = await session.execute(
        select(Answer)
        .where(
            Answer.person_id == person_id,
            Answer.superseded_at.is_(None),
            Answer.skipped.is_(False),
            Answer.value_text.is_not(None),
        )
        .order_by(Answer.answered_at.desc(), Answer.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def meetings_attended(session: AsyncSession, person_id: int, limit: int) -> list[Meeting]:
    """The meetings a partner came to, latest first."""
    rows = await session.execute(
        select(Meeting)
        .join(Involvement, Involvement.meeting_id == Meeting.id)
        .where(
            Involvement.person_id == person_id,
            Involvement.attended.is_(True),
            Involvement.status == InvolvementStatus.APPROVED,
        )
        .order_by(Meeting.starts_at.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def open_alerts(session: AsyncSession, person_ids: Iterable[int]) -> dict[int, int]:
    """How many safeguarding alerts nobody has picked up yet, per partner."""
    rows = await session.execute(
        select(SafeguardingAlert.person_id, func.count())
        .where(
            SafeguardingAlert.person_id.in_(list(person_ids)),
            SafeguardingAlert.acknowledged_at.is_(None),
        )
        .group_by(SafeguardingAlert.person_id)
    )
    return {pid: int(n) for pid, n in rows}


async def pending_entries(session: AsyncSession, person_id: int) -> list[Involvement]:
    """A partner's logged time still waiting for a connector."""
    rows = await session.execute(
        select(Involvement)
        .where(Involvement.person_id == person_id, Involvement.status == InvolvementStatus.PENDING)
        .order_by(Involvement.occurred_at)
    )
    return list(rows.scalars())
