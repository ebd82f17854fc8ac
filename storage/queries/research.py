"""Reads for research exports and the impact report: plain statements, streamed in batches.

Every function builds or runs a query over an AsyncSession and never commits. The big tables
(answers, check-ins) are read one batch at a time (a server-side cursor on PostgreSQL,
``fetchmany`` on SQLite), so an export of a million answers needs no more memory than one of a
hundred: the export compiles these statements and reads them with the database's own driver
(``bot.research.reading``), or with :func:`stream` through the session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Answer,
    Checkin,
    ConsentDecision,
    Involvement,
    Meeting,
    MeetingResponse,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    PartnerProfile,
    Person,
    Role,
)
from storage.queries.as_text import seconds_between, true_false, utc_text
from storage.types import UTCDateTime

BATCH = 5000


@dataclass(frozen=True)
class Window:
    """Which rows an export or report covers: a time range and a set of groups."""

    since: datetime | None = None  # inclusive, aware UTC
    until: datetime | None = None  # exclusive, aware UTC
    groups: tuple[str, ...] = ()  # empty: every group

    def covers(self, column: Any) -> list[Any]:
        """Conditions that keep ``column`` (a datetime) inside the range."""
        conditions = []
        if self.since is not None:
            conditions.append(column >= self.since)
        if self.until is not None:
            conditions.append(column < self.until)
        return conditions


async def stream(
    session: AsyncSession, statement: Select, *, batch: int = BATCH
) -> AsyncIterator[Sequence[Any]]:
    """The rows of ``statement``, a batch at a time, without loading them all.

    The statement runs on the session's connection as plain Core (these are column reads, so
    the ORM's row loading would only cost time), and the next batch is fetched while the
    caller works on this one: the driver's thread (SQLite) or the server (PostgreSQL) gets on
    with the query instead of waiting for Python to format the rows.
    """
    connection = await session.connection()
    result = await connection.stream(statement.execution_options(yield_per=batch))
    batches = result.partitions(batch)
    ahead = asyncio.ensure_future(anext(batches, None))
    try:
        while (rows := await ahead) is not None:
            ahead = asyncio.ensure_future(anext(batches, None))
            yield rows
    finally:
        if not ahead.done():  # the caller stopped early: let the fetch finish being cancelled
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ahead
        await result.close()


def partners_in(window: Window) -> Select:
    """Person ids of the partners in the window's groups (every partner when none is given)."""
    query = select(Person.id).where(Person.role == Role.PARTNER)
    if window.groups:
        query = query.join(PartnerProfile, PartnerProfile.person_id == Person.id).where(
            PartnerProfile.group_key.in_(window.groups)
        )
    return query


def partners(window: Window) -> Select:
    """One row per partner: id, internal pseudonym, status, group, zone, dates."""
    query = (
        select(
            Person.id,
            Person.pseudonym,
            Person.status,
            PartnerProfile.group_key,
            PartnerProfile.timezone,
            PartnerProfile.enrolled_at,
            PartnerProfile.paused_until,
            PartnerProfile.withdrawn_at,
            Person.status_changed_at,
        )
        .outerjoin(PartnerProfile, PartnerProfile.person_id == Person.id)
        .where(Person.role == Role.PARTNER)
        .order_by(Person.id)
    )
    if window.groups:
        query = query.where(PartnerProfile.group_key.in_(window.groups))
    return query


def consent_decisions(window: Window) -> Select:
    """Every consent decision of the window's partners, oldest first (the last one counts)."""
    return (
        select(ConsentDecision.person_id, ConsentDecision.item_key, ConsentDecision.granted)
        .where(ConsentDecision.person_id.in_(partners_in(window)))
        .order_by(ConsentDecision.decided_at, ConsentDecision.id)
    )


def _reminders() -> Any:
    """When each check-in's gentle reminder went out (one row per reminded check-in)."""
    return (
        select(
            Occurrence.checkin_id.label("checkin_id"),
            func.min(Occurrence.done_at).label("reminded_at"),
        )
        .where(
            Occurrence.kind == OccurrenceKind.CHECKIN_NUDGE,
            Occurrence.status == OccurrenceStatus.DONE,
            Occurrence.checkin_id.is_not(None),
        )
        .group_by(Occurrence.checkin_id)
        .subquery("reminders")
    )


def answers(window: Window, *, in_force: bool, checkins: tuple[int, int] | None = None) -> Select:
    """Answers in force (or, with ``in_force=False``, the replaced ones), check-in by check-in.

    Times come as UTC text (:mod:`storage.queries.as_text`); ``seconds`` is how long the partner
    took over the question (from the answer before it in the check-in, or from its opening),
    and ``reminded`` whether the check-in's reminder had gone out by then.
    """
    previous = (
        func.lag(Answer.answered_at, type_=UTCDateTime())
        .over(partition_by=Answer.checkin_id, order_by=(Answer.answered_at, Answer.id))
        .label("previous_at")
    )
    inner = select(
        Answer.id,
        Answer.checkin_id,
        Answer.person_id,
        Answer.question_key,
        Answer.value_number,
        Answer.value_choice,
        Answer.value_text,
        Answer.text_encrypted,
        Answer.voice_duration,
        Answer.voice_path,
        Answer.skipped,
        Answer.answered_at,
        Answer.superseded_at,
        previous,
    )
    if window.groups:
        inner = inner.where(Answer.person_id.in_(partners_in(window)))
    if checkins is not None:
        inner = inner.where(Answer.checkin_id >= checkins[0], Answer.checkin_id < checkins[1])
    if not in_force:  # only check-ins with a changed answer: the rest cannot have history
        changed = select(Answer.checkin_id).where(Answer.superseded_at.is_not(None))
        inner = inner.where(Answer.checkin_id.in_(changed))
    timed = inner.subquery("timed")
    reminders = _reminders()
    query = (
        select(
            timed.c.id,
            timed.c.checkin_id,
            timed.c.person_id,
            Checkin.checkin_key,
            Checkin.asked_for.label("manual"),
            utc_text(Checkin.due_at).label("due_at"),
            timed.c.question_key,
            timed.c.value_number,
            timed.c.value_choice,
            timed.c.value_text,
            timed.c.text_encrypted,
            timed.c.voice_duration,
            timed.c.voice_path,
            timed.c.skipped,
            utc_text(timed.c.answered_at).label("answered_at"),
            seconds_between(
                timed.c.answered_at, func.coalesce(timed.c.previous_at, Checkin.opened_at)
            ).label("seconds"),
            true_false(
                and_(
                    reminders.c.reminded_at.is_not(None),
                    reminders.c.reminded_at <= timed.c.answered_at,
                )
            ).label("reminded"),
            utc_text(timed.c.superseded_at).label("superseded_at"),
        )
        .join(Checkin, Checkin.id == timed.c.checkin_id)
        .outerjoin(reminders, reminders.c.checkin_id == timed.c.checkin_id)
        .where(
            timed.c.superseded_at.is_(None) if in_force else timed.c.superseded_at.is_not(None),
            *window.covers(timed.c.answered_at),
        )
        .order_by(timed.c.checkin_id, timed.c.answered_at, timed.c.id)
    )
    return query


def checkins(window: Window) -> Select:
    """One row per check-in in the window (by when it was due), with its answer count.

    Times come as UTC text and ``reminded`` as ``'true'``/``'false'``
    (:mod:`storage.queries.as_text`).
    """
    counts = (
        select(Answer.checkin_id, func.count().label("answers"))
        .where(Answer.superseded_at.is_(None))
        .group_by(Answer.checkin_id)
        .subquery("counts")
    )
    reminders = _reminders()
    query = (
        select(
            Checkin.id,
            Checkin.person_id,
            Checkin.checkin_key,
            Checkin.asked_for.label("manual"),
            utc_text(Checkin.due_at).label("due_at"),
            utc_text(Checkin.opened_at).label("opened_at"),
            utc_text(Checkin.completed_at).label("completed_at"),
            utc_text(Checkin.closes_at).label("closes_at"),
            Checkin.status,
            Checkin.reason,
            true_false(reminders.c.reminded_at.is_not(None)).label("reminded"),
            func.coalesce(counts.c.answers, literal(0)).label("answers"),
        )
        .outerjoin(counts, counts.c.checkin_id == Checkin.id)
        .outerjoin(reminders, reminders.c.checkin_id == Checkin.id)
        .where(*window.covers(Checkin.due_at))
        .order_by(Checkin.id)
    )
    if window.groups:
        query = query.where(Checkin.person_id.in_(partners_in(window)))
    return query


def meetings(window: Window) -> Select:
    """Meetings that start inside the window, oldest first (groups are filtered by the caller:
    they are a JSON list)."""
    return (
        select(
            Meeting.id,
            Meeting.title,
            Meeting.starts_at,
            Meeting.timezone,
            Meeting.length_minutes,
            Meeting.groups,
            Meeting.version,
            Meeting.cancelled_at,
        )
        .where(*window.covers(Meeting.starts_at))
        .order_by(Meeting.starts_at, Meeting.id)
    )


def attendance(window: Window) -> Select:
    """What each partner said about each meeting in the window, and whether they came."""
    came = Involvement.__table__.alias("came")
    query = (
        select(
            MeetingResponse.meeting_id,
            MeetingResponse.person_id,
            MeetingResponse.answer,
            MeetingResponse.answered_at,
            came.c.attended,
            came.c.minutes,
        )
        .join(Meeting, Meeting.id == MeetingResponse.meeting_id)
        .outerjoin(
            came,
            and_(
                came.c.meeting_id == MeetingResponse.meeting_id,
                came.c.person_id == MeetingResponse.person_id,
            ),
        )
        .where(*window.covers(Meeting.starts_at))
        .order_by(MeetingResponse.meeting_id, MeetingResponse.person_id)
    )
    if window.groups:
        query = query.where(MeetingResponse.person_id.in_(partners_in(window)))
    return query


def involvement(window: Window) -> Select:
    """Time given to the study inside the window."""
    query = (
        select(
            Involvement.id,
            Involvement.person_id,
            Involvement.kind,
            Involvement.meeting_id,
            Involvement.attended,
            Involvement.minutes,
            Involvement.occurred_at,
            Involvement.recorded_at,
        )
        .where(*window.covers(Involvement.occurred_at))
        .order_by(Involvement.occurred_at, Involvement.id)
    )
    if window.groups:
        query = query.where(Involvement.person_id.in_(partners_in(window)))
    return query


@dataclass(frozen=True)
class AnswerSpan:
    """How many answers :func:`answers` will give, and the check-in ids they lie between."""

    count: int
    first_checkin: int
    last_checkin: int


async def answer_span(session: AsyncSession, window: Window, *, in_force: bool) -> AnswerSpan:
    """The span of :func:`answers` (for a progress bar and to split a big export), unsorted."""
    query = select(func.count(), func.min(Answer.checkin_id), func.max(Answer.checkin_id))
    query = query.where(
        Answer.superseded_at.is_(None) if in_force else Answer.superseded_at.is_not(None),
        *window.covers(Answer.answered_at),
    )
    if window.groups:
        query = query.where(Answer.person_id.in_(partners_in(window)))
    count, first, last = (await session.execute(query)).one()
    return AnswerSpan(int(count), int(first or 0), int(last or 0))
