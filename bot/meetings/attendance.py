"""Who came to a meeting: the connector's attendance sheet and the involvement log.

:func:`mark_attendance` writes the partner's ``Involvement`` row (the hours they gave). A
partner marked as came whose follow-up reflection was skipped ("not coming") while it can
still go out gets it planned again; the due runner then opens it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.meetings.arranging import audit
from bot.meetings.rules import MeetingError
from bot.meetings.views import AttendanceRow
from storage.clock import utcnow
from storage.models import Involvement, Meeting, OccurrenceStatus, Person
from storage.queries import meetings as queries

INVOLVEMENT_KIND = "meeting"


async def attendance_sheet(session: AsyncSession, meeting: Meeting) -> list[AttendanceRow]:
    """Everyone the meeting was for, who answered, or who has attendance, sorted by name."""
    people = {i.person.id for i in await queries.invitees(session, meeting)}
    answers = await queries.answers_by_person(session, meeting.id)
    attended = await queries.attendance_of(session, meeting.id)
    people |= set(answers) | set(attended)
    names = await queries.names_of(session, people)
    rows = [
        AttendanceRow(pid, names.get(pid, ""), answers.get(pid), bool(attended.get(pid, False)))
        for pid in people
    ]
    return sorted(rows, key=lambda r: (r.name.casefold(), r.person_id))


async def mark_attendance(
    session: AsyncSession,
    meeting: Meeting,
    person: Person,
    attended: bool,
    by_person_id: int | None,
    *,
    now: datetime | None = None,
) -> Involvement:
    """Record whether a partner came to a meeting, with the minutes they gave.

    The ``Involvement`` row (kind "meeting", at the meeting's start) holds the meeting's
    length when they came and 0 when they did not. Someone marked as came whose follow-up
    reflection was skipped ("not coming") gets it planned again while its window is open.
    Raises MeetingError ``cancelled`` or ``not_started``.
    """
    now = now or utcnow()
    if meeting.cancelled_at is not None:
        raise MeetingError("cancelled")
    if meeting.starts_at > now:
        raise MeetingError("not_started")
    involvement = await queries.involvement_of(session, meeting.id, person.id)
    if involvement is None:
        involvement = Involvement(person_id=person.id, meeting_id=meeting.id)
        session.add(involvement)
    involvement.kind = INVOLVEMENT_KIND
    involvement.attended = attended
    involvement.minutes = meeting.length_minutes if attended else 0
    involvement.occurred_at = meeting.starts_at
    involvement.recorded_by_person_id = by_person_id
    involvement.recorded_at = now
    replanned = 0
    if attended:
        for occurrence in await queries.skipped_followups(
            session, meeting, person.id, open_after=now
        ):
            occurrence.status = OccurrenceStatus.PLANNED
            occurrence.reason = None
            occurrence.done_at = None
            replanned += 1
    await session.flush()
    audit(
        session,
        "meeting.attendance",
        by_person_id,
        now,
        meeting_id=meeting.id,
        person_id=person.id,
        attended=attended,
        followup_replanned=replanned,
    )
    return involvement
