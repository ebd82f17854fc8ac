"""Partners' side of meetings: what is coming up for them, and their yes / no / maybe.

:func:`record_response` keeps a partner's latest answer; a cancelled or started meeting, or one
they are not invited to, changes nothing. :func:`partner_meetings` is their ``/meetings`` and
:func:`press_answer` what their answer button (``mt:<meeting id>:<answer>``) does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.zones import zone_of
from bot.meetings import views
from bot.meetings.callbacks import parse_callback
from bot.meetings.rules import ANSWERS, ResponseOutcome, ResponseResult, is_invited
from bot.transport.view import View
from prompts import Prompts
from storage.clock import utcnow
from storage.models import Meeting, MeetingResponse, PartnerProfile, Person, Role
from storage.queries import meetings as queries


async def record_response(
    session: AsyncSession,
    meeting: Meeting,
    person: Person,
    answer: str,
    *,
    now: datetime | None = None,
) -> ResponseResult:
    """Keep a partner's answer to a meeting (the latest one counts).

    A cancelled meeting, one that has started, one they are not invited to, or an answer that
    is not yes / no / maybe changes nothing (see :class:`ResponseOutcome`).
    """
    now = now or utcnow()
    if person.role != Role.PARTNER or answer not in ANSWERS:
        return ResponseResult(ResponseOutcome.INVALID)
    if meeting.cancelled_at is not None:
        return ResponseResult(ResponseOutcome.CANCELLED)
    if meeting.starts_at <= now:
        return ResponseResult(ResponseOutcome.PAST)
    if not is_invited(meeting, await session.get(PartnerProfile, person.id)):
        return ResponseResult(ResponseOutcome.NOT_INVITED)
    response = await queries.response_of(session, meeting.id, person.id)
    if response is not None:
        if response.answer == answer:
            return ResponseResult(ResponseOutcome.UNCHANGED, answer)
        response.answer = answer
        response.answered_at = now
        return ResponseResult(ResponseOutcome.CHANGED, answer)
    try:
        async with session.begin_nested():
            session.add(
                MeetingResponse(
                    meeting_id=meeting.id, person_id=person.id, answer=answer, answered_at=now
                )
            )
    except IntegrityError:  # a double tap handled at the same moment elsewhere
        return ResponseResult(ResponseOutcome.UNCHANGED, answer)
    return ResponseResult(ResponseOutcome.RECORDED, answer)


async def upcoming_for_partner(
    session: AsyncSession,
    person: Person,
    profile: PartnerProfile,
    *,
    now: datetime,
    limit: int = 5,
) -> list[tuple[Meeting, str | None]]:
    """The next meetings (not started, not cancelled) for the partner, with their answers."""
    coming = await queries.not_started(session, now=now)
    meetings = [m for m in coming if is_invited(m, profile)][:limit]
    given = await queries.answers_of_person(session, person.id, [m.id for m in meetings])
    return [(m, given.get(m.id)) for m in meetings]


async def partner_meetings(
    session: AsyncSession,
    prompts: Prompts,
    person: Person,
    profile: PartnerProfile,
    *,
    now: datetime,
) -> list[View]:
    """``/meetings``: one message per meeting coming up for the partner (or one saying none)."""
    coming = await upcoming_for_partner(session, person, profile, now=now)
    if not coming:
        return [views.none_upcoming(prompts)]
    zone = zone_of(profile)
    return [
        views.upcoming(
            prompts, meeting, zone=zone, answer=answer, first=index == 0, count=len(coming)
        )
        for index, (meeting, answer) in enumerate(coming)
    ]


async def press_answer(
    session: AsyncSession, prompts: Prompts, person: Person, data: str | None, *, now: datetime
) -> views.Reply:
    """A partner's answer button: kept, ticked, thanked; anything else changes nothing."""
    parsed = parse_callback(data)
    meeting = await queries.meeting_by_id(session, parsed[0]) if parsed is not None else None
    if parsed is None or meeting is None:
        return views.answer_reply(prompts, None, ResponseResult(ResponseOutcome.INVALID))
    result = await record_response(session, meeting, person, parsed[1], now=now)
    return views.answer_reply(prompts, meeting, result)
