"""Aggregates for ``/stats``: counted in the database, grouped by period and group.

Periods (weeks, months) are given as their start instants; a row falls in the last period
that starts at or before it (a portable ``CASE``, the same on SQLite and PostgreSQL). Every
count comes with how many people it is about, so the caller can protect small groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, distinct, func, literal, literal_column, select
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
    PersonStatus,
    Role,
)
from storage.types import UTCDateTime


def period_of(column: Any, starts: Sequence[datetime]) -> ColumnElement[int]:
    """The index of the period ``column`` falls in (``starts`` ascending; before: -1).

    A balanced tree of ``CASE`` expressions: about log2(periods) comparisons a row instead of
    one per period (a year of weeks: 6 instead of up to 53).
    """

    def within(low: int, high: int) -> ColumnElement[int]:  # the answer is in [low, high)
        if high - low == 1:
            return literal(low)
        middle = (low + high) // 2
        return case(
            (column >= literal(starts[middle], UTCDateTime()), within(middle, high)),
            else_=within(low, middle),
        )

    return case(
        (column >= literal(starts[0], UTCDateTime()), within(0, len(starts))), else_=literal(-1)
    )


@dataclass(frozen=True)
class ScaleCell:
    """Current answers to one scale question in one period and group: how many gave each
    value, and how many people gave them."""

    period: int
    group: str | None
    question: str
    answers: dict[int, int]  # value -> how many answers gave it
    people: int


async def scale_cells(
    session: AsyncSession,
    questions: Sequence[str],
    values: range,
    starts: Sequence[datetime],
) -> list[ScaleCell]:
    """Current answers in ``values`` to scale ``questions``, by period, group and question.

    Each person's answers are counted first (per period and question, one count per value),
    then those counts are added up per group: the people behind each cell, which the
    small-group rule needs, are then just the rows added. On PostgreSQL this takes two hash
    aggregates where ``COUNT(DISTINCT person_id)`` sorted every answer (265 ms against
    196 ms for a year of 2,000 partners, bench/stats.py); SQLite's one-pass
    ``COUNT(DISTINCT ...)`` is the faster there, so it keeps it.
    """
    if _on_postgresql(session):
        return await _scale_cells_per_person(session, questions, values, starts)
    return await _scale_cells_one_pass(session, questions, values, starts)


async def _scale_cells_per_person(
    session: AsyncSession,
    questions: Sequence[str],
    values: range,
    starts: Sequence[datetime],
) -> list[ScaleCell]:
    """:func:`scale_cells` counted per person first, then per group."""
    per_person = (
        select(
            period_of(Answer.answered_at, starts).label("period"),
            Answer.question_key,
            Answer.person_id,
            *(func.count().filter(Answer.value_number == v).label(f"v{v}") for v in values),
        )
        .where(*_scale_answers(questions, values, starts))
        .group_by(literal_column("1"), Answer.question_key, Answer.person_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            per_person.c.period,
            PartnerProfile.group_key,
            per_person.c.question_key,
            func.count(),
            *(func.sum(per_person.c[f"v{v}"]) for v in values),
        )
        .join(PartnerProfile, PartnerProfile.person_id == per_person.c.person_id)
        .group_by(per_person.c.period, PartnerProfile.group_key, per_person.c.question_key)
    )
    return _cells(rows, values)


def _scale_answers(
    questions: Sequence[str], values: range, starts: Sequence[datetime]
) -> list[ColumnElement[bool]]:
    """The answers /stats counts: current ones, on the scale, since the first period."""
    return [
        Answer.question_key.in_(list(questions)),
        Answer.superseded_at.is_(None),
        Answer.value_number.between(values.start, values.stop - 1),
        Answer.answered_at >= starts[0],
    ]


def _cells(rows: Any, values: range) -> list[ScaleCell]:
    return [
        ScaleCell(
            period=int(p),
            group=g,
            question=q,
            answers={v: int(n) for v, n in zip(values, counts, strict=True) if n},
            people=int(people),
        )
        for p, g, q, people, *counts in rows
    ]


async def _scale_cells_one_pass(
    session: AsyncSession,
    questions: Sequence[str],
    values: range,
    starts: Sequence[datetime],
) -> list[ScaleCell]:
    """:func:`scale_cells` in one pass over the answers: each row of the result counts the
    answers per value (one ``SUM(CASE ...)`` column each) and the distinct people behind
    them."""
    period = period_of(Answer.answered_at, starts).label("period")
    per_value = [func.sum(case((Answer.value_number == v, 1), else_=0)) for v in values]
    rows = await session.execute(
        select(
            period,
            PartnerProfile.group_key,
            Answer.question_key,
            func.count(distinct(Answer.person_id)),
            *per_value,
        )
        .join(PartnerProfile, PartnerProfile.person_id == Answer.person_id)
        .where(*_scale_answers(questions, values, starts))
        .group_by(period, PartnerProfile.group_key, Answer.question_key)
    )
    return _cells(rows, values)


@dataclass(frozen=True)
class CheckinWeek:
    """Check-ins sent and answered in one period, and to how many people."""

    period: int
    sent: int
    answered: int
    people: int


def _on_postgresql(session: AsyncSession) -> bool:
    """Whether to count in two hash aggregates (see :func:`scale_cells`)."""
    return session.get_bind().dialect.name == "postgresql"


async def checkin_periods(
    session: AsyncSession, starts: Sequence[datetime], until: datetime
) -> list[CheckinWeek]:
    """Check-ins that went out (opened) by period, and how many of them were answered.

    One pass on both databases: counted per person first, as :func:`scale_cells` does on
    PostgreSQL, it was slower (88 ms against 49 ms): a week holds about one check-in a
    person, so the first count leaves as many rows as it read.
    """
    period = period_of(Checkin.opened_at, starts).label("period")
    opened = (Checkin.opened_at >= starts[0], Checkin.opened_at < until)
    completed = Checkin.status == CheckinStatus.COMPLETED
    rows = await session.execute(
        select(
            period,
            func.count(),
            func.sum(case((completed, 1), else_=0)),
            func.count(distinct(Checkin.person_id)),
        )
        .where(*opened)
        .group_by(period)
    )
    return [CheckinWeek(int(p), int(s), int(a or 0), int(n)) for p, s, a, n in rows]


async def taking_part_by_group(session: AsyncSession) -> dict[str | None, int]:
    """Partners taking part now (set up, not withdrawn), by group."""
    rows = await session.execute(
        select(PartnerProfile.group_key, func.count())
        .join(Person, Person.id == PartnerProfile.person_id)
        .where(
            Person.role == Role.PARTNER,
            Person.status != PersonStatus.WITHDRAWN,
            PartnerProfile.onboarded_at.is_not(None),
        )
        .group_by(PartnerProfile.group_key)
    )
    return {g: int(n) for g, n in rows}


async def attendance(
    session: AsyncSession, since: datetime, until: datetime
) -> list[tuple[Meeting, int]]:
    """Meetings held in the period (not cancelled), each with how many came."""
    came = (
        select(Involvement.meeting_id, func.count().label("came"))
        .where(Involvement.attended.is_(True), Involvement.meeting_id.is_not(None))
        .group_by(Involvement.meeting_id)
        .subquery()
    )
    rows = await session.execute(
        select(Meeting, func.coalesce(came.c.came, 0))
        .outerjoin(came, came.c.meeting_id == Meeting.id)
        .where(
            Meeting.starts_at >= since,
            Meeting.starts_at < until,
            Meeting.cancelled_at.is_(None),
        )
        .order_by(Meeting.starts_at)
    )
    return [(m, int(n)) for m, n in rows]


async def hours_by_group(
    session: AsyncSession, since: datetime, until: datetime
) -> dict[str | None, tuple[int, int]]:
    """Approved minutes given in the period by group, with how many people gave them."""
    rows = await session.execute(
        select(
            PartnerProfile.group_key,
            func.sum(Involvement.minutes),
            func.count(distinct(Involvement.person_id)),
        )
        .join(PartnerProfile, PartnerProfile.person_id == Involvement.person_id)
        .where(
            Involvement.status == InvolvementStatus.APPROVED,
            Involvement.minutes > 0,
            Involvement.occurred_at >= since,
            Involvement.occurred_at < until,
        )
        .group_by(PartnerProfile.group_key)
    )
    return {g: (int(m or 0), int(n)) for g, m, n in rows}


async def first_answer_at(session: AsyncSession) -> datetime | None:
    """When the first check-in went out (the start of "all")."""
    found = await session.execute(select(func.min(Checkin.opened_at)))
    return found.scalar_one_or_none()
