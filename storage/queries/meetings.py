"""Meetings: which meetings are coming up or just passed, who they are for, who answered what.

Reads only; the meetings room (:mod:`bot.meetings`) decides what they mean and writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Involvement,
    Meeting,
    MeetingAnswer,
    MeetingResponse,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    PartnerProfile,
    Person,
    PersonStatus,
    Role,
    TelegramIdentity,
)


class Invitee(NamedTuple):
    """A partner a meeting is for."""

    person: Person
    profile: PartnerProfile


def _invited_where(groups: Sequence[str]) -> list[ColumnElement[bool]]:
    """Conditions on Person and PartnerProfile for the partners a meeting for ``groups`` is for."""
    conditions = [
        Person.role == Role.PARTNER,
        Person.status == PersonStatus.ACTIVE,
        PartnerProfile.onboarded_at.is_not(None),
    ]
    if groups:
        conditions.append(PartnerProfile.group_key.in_(list(groups)))
    return conditions


async def meeting_by_id(session: AsyncSession, meeting_id: int) -> Meeting | None:
    """The meeting with this id, or None."""
    return await session.get(Meeting, meeting_id)


async def invitees(session: AsyncSession, meeting: Meeting) -> list[Invitee]:
    """The partners a meeting is for: active, onboarded, in one of its groups (all if none)."""
    rows = await session.execute(
        select(Person, PartnerProfile)
        .join(PartnerProfile, PartnerProfile.person_id == Person.id)
        .where(*_invited_where(meeting.groups))
        .order_by(Person.id)
    )
    return [Invitee(person, profile) for person, profile in rows]


async def count_invitees(session: AsyncSession, groups: Sequence[str]) -> int:
    """How many partners a meeting for ``groups`` (``[]``: everyone) would be for."""
    rows = await session.execute(
        select(func.count())
        .select_from(Person)
        .join(PartnerProfile, PartnerProfile.person_id == Person.id)
        .where(*_invited_where(groups))
    )
    return int(rows.scalar_one())


async def answer_of(session: AsyncSession, meeting_id: int, person_id: int) -> str | None:
    """A partner's answer to a meeting so far ("yes", "no", "maybe"), or None."""
    row = await session.execute(
        select(MeetingResponse.answer).where(
            MeetingResponse.meeting_id == meeting_id, MeetingResponse.person_id == person_id
        )
    )
    return row.scalar_one_or_none()


async def response_of(
    session: AsyncSession, meeting_id: int, person_id: int
) -> MeetingResponse | None:
    """A partner's answer row for a meeting, to change it, or None."""
    row = await session.execute(
        select(MeetingResponse).where(
            MeetingResponse.meeting_id == meeting_id, MeetingResponse.person_id == person_id
        )
    )
    return row.scalar_one_or_none()


async def answers_by_person(session: AsyncSession, meeting_id: int) -> dict[int, str]:
    """Each partner's answer to a meeting, by person id."""
    rows = await session.execute(
        select(MeetingResponse.person_id, MeetingResponse.answer).where(
            MeetingResponse.meeting_id == meeting_id
        )
    )
    return {person_id: answer for person_id, answer in rows.all()}


async def answer_counts(session: AsyncSession, meeting_id: int) -> dict[str, int]:
    """How many partners gave each answer."""
    rows = await session.execute(
        select(MeetingResponse.answer).where(MeetingResponse.meeting_id == meeting_id)
    )
    counts = dict.fromkeys((a.value for a in MeetingAnswer), 0)
    for answer in rows.scalars():
        if answer in counts:
            counts[answer] += 1
    return counts


async def answers_of_person(
    session: AsyncSession, person_id: int, meeting_ids: Sequence[int]
) -> dict[int, str]:
    """A partner's answers to some meetings, by meeting id."""
    if not meeting_ids:
        return {}
    rows = await session.execute(
        select(MeetingResponse.meeting_id, MeetingResponse.answer).where(
            MeetingResponse.person_id == person_id,
            MeetingResponse.meeting_id.in_(list(meeting_ids)),
        )
    )
    return {meeting_id: answer for meeting_id, answer in rows.all()}


async def attendance_of(session: AsyncSession, meeting_id: int) -> dict[int, bool]:
    """Whether each partner marked for a meeting came, by person id."""
    rows = await session.execute(
        select(Involvement.person_id, Involvement.attended).where(
            Involvement.meeting_id == meeting_id
        )
    )
    return {person_id: attended for person_id, attended in rows.all()}


async def involvement_of(
    session: AsyncSession, meeting_id: int, person_id: int
) -> Involvement | None:
    """A partner's attendance row for a meeting, to change it, or None."""
    row = await session.execute(
        select(Involvement).where(
            Involvement.meeting_id == meeting_id, Involvement.person_id == person_id
        )
    )
    return row.scalar_one_or_none()


async def not_started(
    session: AsyncSession, *, now: datetime, limit: int | None = None
) -> list[Meeting]:
    """Meetings that have not started and are not cancelled, soonest first."""
    query = (
        select(Meeting)
        .where(Meeting.cancelled_at.is_(None), Meeting.starts_at > now)
        .order_by(Meeting.starts_at, Meeting.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list((await session.execute(query)).scalars())


async def started_since(
    session: AsyncSession, since: datetime, *, now: datetime, limit: int
) -> list[Meeting]:
    """Meetings (not cancelled) that started after ``since`` and by ``now``, latest first."""
    rows = await session.execute(
        select(Meeting)
        .where(
            Meeting.cancelled_at.is_(None),
            Meeting.starts_at <= now,
            Meeting.starts_at > since,
        )
        .order_by(Meeting.starts_at.desc(), Meeting.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def meetings_listed(
    session: AsyncSession, *, now: datetime, everything: bool = False
) -> list[Meeting]:
    """Every meeting (``everything``), or those not cancelled that started after a day ago."""
    query = select(Meeting).order_by(Meeting.starts_at, Meeting.id)
    if not everything:
        query = query.where(
            Meeting.cancelled_at.is_(None), Meeting.starts_at > now - timedelta(days=1)
        )
    return list((await session.execute(query)).scalars())


async def names_of(session: AsyncSession, person_ids: Iterable[int]) -> dict[int, str]:
    """The name we call each person (``TelegramIdentity.called``), by person id."""
    ids = list(set(person_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(TelegramIdentity).where(TelegramIdentity.person_id.in_(ids))
    )
    return {identity.person_id: identity.called for identity in rows.scalars()}


async def active_contacts(
    session: AsyncSession, person_ids: Iterable[int]
) -> list[tuple[TelegramIdentity, PartnerProfile | None]]:
    """The Telegram identity and partner profile (if any) of each active person, by id."""
    ids = sorted(set(person_ids))
    if not ids:
        return []
    rows = await session.execute(
        select(TelegramIdentity, PartnerProfile)
        .join(Person, Person.id == TelegramIdentity.person_id)
        .outerjoin(PartnerProfile, PartnerProfile.person_id == TelegramIdentity.person_id)
        .where(TelegramIdentity.person_id.in_(ids), Person.status == PersonStatus.ACTIVE)
        .order_by(TelegramIdentity.person_id)
    )
    return [(identity, profile) for identity, profile in rows.all()]


async def told_about(session: AsyncSession, meeting: Meeting) -> list[int]:
    """Partners who know about the meeting: a reminder went out to them, or they answered."""
    reminded = await session.execute(
        select(Occurrence.person_id).where(
            Occurrence.meeting_id == meeting.id,
            Occurrence.kind == OccurrenceKind.MEETING_REMINDER,
            Occurrence.status == OccurrenceStatus.DONE,
        )
    )
    answered = await session.execute(
        select(MeetingResponse.person_id).where(MeetingResponse.meeting_id == meeting.id)
    )
    return sorted(set(reminded.scalars()) | set(answered.scalars()))


async def reminders_due_by(
    session: AsyncSession, meeting: Meeting, person_ids: Sequence[int], due_by: datetime
) -> list[Occurrence]:
    """Planned reminders of a meeting for these people that are due by ``due_by``."""
    rows = await session.execute(
        select(Occurrence).where(
            Occurrence.meeting_id == meeting.id,
            Occurrence.kind == OccurrenceKind.MEETING_REMINDER,
            Occurrence.status == OccurrenceStatus.PLANNED,
            Occurrence.person_id.in_(list(person_ids)),
            Occurrence.due_at <= due_by,
        )
    )
    return list(rows.scalars())


async def skipped_followups(
    session: AsyncSession, meeting: Meeting, person_id: int, *, open_after: datetime
) -> list[Occurrence]:
    """A partner's follow-up reflections of a meeting that were skipped and are still open."""
    rows = await session.execute(
        select(Occurrence).where(
            Occurrence.meeting_id == meeting.id,
            Occurrence.person_id == person_id,
            Occurrence.kind == OccurrenceKind.MEETING_FOLLOWUP,
            Occurrence.status == OccurrenceStatus.SKIPPED,
            Occurrence.window_ends_at > open_after,
        )
    )
    return list(rows.scalars())
