"""Arranging meetings: create, change and cancel them, and tell those who already knew.

Nothing here needs a Telegram update, so ``/meeting``, the command line and the tests share
it. Every function takes the caller's session and never commits.

* :func:`create_meeting`, :func:`change_meeting` and :func:`cancel_meeting` keep the meeting
  row, write an audit line (ids only) and ask the planner (:mod:`bot.schedule.planner`) to
  (re)plan its reminders and follow-up reflections. A change of start or length bumps
  ``meeting.version``, so reminders already sent for the old time do not stop new ones.
* A changed or cancelled meeting tells everyone who already knew about it: partners with a
  reminder that went out (an ``Occurrence`` of kind ``meeting_reminder`` with status
  ``done``) and partners who answered it. The message (:func:`bot.meetings.views.change_notice`,
  :func:`bot.meetings.views.cancel_notice`) goes through the outbox with a key made of the
  meeting id, its version and the audit line of the change, so nothing is sent twice; a
  partner in their quiet hours gets it when they end. Someone told of a change does not also
  get a new-version reminder that the planner made due at once.
* :func:`all_meetings` is the command line's list: those not over, or every one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.quiet import quiet_ends, quiet_hours
from bot.calendar.zones import zone_of
from bot.meetings.rules import (
    PLACE_LIMIT,
    TITLE_LIMIT,
    MeetingError,
    check_groups,
    check_length,
    meeting_zone,
)
from bot.meetings.views import cancel_notice, change_notice
from bot.protocol import StudyProtocol
from bot.schedule import planner
from bot.text import clean_line
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.clock import utcnow
from storage.models import AuditEvent, Meeting, OccurrenceStatus, PartnerProfile
from storage.queries import meetings as queries


@dataclass
class ChangeResult:
    """What :func:`change_meeting` changed and how many people were told."""

    changed: list[str] = field(default_factory=list)
    notified: int = 0


@dataclass(frozen=True)
class _Contact:
    person_id: int
    chat_id: int
    name: str
    zone: ZoneInfo
    profile: PartnerProfile | None


async def _contacts(session: AsyncSession, person_ids: Iterable[int]) -> list[_Contact]:
    """Chat, name and zone of each active person in ``person_ids`` (by id)."""
    return [
        _Contact(
            identity.person_id,
            identity.chat_id,
            identity.called,
            zone_of(profile),
            profile,
        )
        for identity, profile in await queries.active_contacts(session, person_ids)
    ]


async def all_meetings(
    session: AsyncSession, *, now: datetime, everything: bool = False
) -> list[Meeting]:
    """Meetings for a list: those not over and not cancelled, or ``everything``."""
    meetings = await queries.meetings_listed(session, now=now, everything=everything)
    return [m for m in meetings if everything or planner.meeting_end(m) > now]


def after_quiet_hours(
    protocol: StudyProtocol, profile: PartnerProfile | None, now: datetime
) -> datetime | None:
    """When a message to this partner may go out if ``now`` is in their quiet hours, else None.

    Change and cancellation notices wait for the end of the partner's quiet hours, like
    everything else the bot sends on its own.
    """
    if profile is None:
        return None
    window = quiet_hours(profile, protocol)
    zone = zone_of(profile)
    local = now.astimezone(zone)
    if window is None or not window.contains(local.time()):
        return None
    return quiet_ends(window, now, zone)


def audit(
    session: AsyncSession, action: str, actor: int | None, now: datetime, **detail: Any
) -> AuditEvent:
    """Add an audit line about a meeting (ids only, never its words)."""
    event = AuditEvent(at=now, actor_person_id=actor, action=action, detail=detail)
    session.add(event)
    return event


async def create_meeting(
    session: AsyncSession,
    protocol: StudyProtocol,
    *,
    title: str,
    starts_at: datetime,
    length_minutes: int,
    place: str,
    groups: Sequence[str] = (),
    timezone: str | None = None,
    created_by: int | None = None,
    now: datetime | None = None,
) -> Meeting:
    """Create a meeting and plan its reminders and follow-ups (groups ``[]``: everyone).

    ``timezone`` is the zone it was arranged in (default: its first group's). Raises
    MeetingError for an empty or too long title or place, an unknown group or zone, a
    length out of range, or a start that is not in the future.
    """
    now = now or utcnow()
    clean_title = clean_line(title, TITLE_LIMIT)
    if clean_title is None:
        raise MeetingError("title", limit=TITLE_LIMIT)
    clean_place = clean_line(place, PLACE_LIMIT)
    if clean_place is None:
        raise MeetingError("place", limit=PLACE_LIMIT)
    keys = check_groups(protocol, groups)
    zone = timezone or meeting_zone(protocol, keys)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MeetingError("timezone", zone=zone) from exc
    if starts_at.tzinfo is None:
        raise ValueError("starts_at must be timezone-aware")
    if starts_at <= now:
        raise MeetingError("past")
    meeting = Meeting(
        title=clean_title,
        starts_at=starts_at.astimezone(UTC),
        length_minutes=check_length(length_minutes),
        timezone=zone,
        place=clean_place,
        groups=keys,
        version=1,
        created_by_person_id=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(meeting)
    await session.flush()
    audit(
        session,
        "meeting.created",
        created_by,
        now,
        meeting_id=meeting.id,
        groups=keys,
        starts_at=meeting.starts_at.isoformat(),
        length_minutes=meeting.length_minutes,
    )
    await planner.replan_meeting(session, protocol, meeting, now=now)
    return meeting


async def change_meeting(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    meeting: Meeting,
    *,
    starts_at: datetime | None = None,
    length_minutes: int | None = None,
    place: str | None = None,
    title: str | None = None,
    by_person_id: int | None = None,
    now: datetime | None = None,
) -> ChangeResult:
    """Change a meeting that has not started, re-plan it and tell those who knew about it.

    A new start or length bumps ``version``. Everyone reminded (or who answered) gets the new
    details with the answer buttons again (their answer so far ticked), after their quiet
    hours if they are in them. Raises MeetingError:
    ``cancelled``, ``started``, ``past`` (a new start not in the future), ``nothing``, or a
    bad title, place or length.
    """
    now = now or utcnow()
    if meeting.cancelled_at is not None:
        raise MeetingError("cancelled")
    if meeting.starts_at <= now:
        raise MeetingError("started")
    result = ChangeResult()
    new_title = None if title is None else clean_line(title, TITLE_LIMIT)
    new_place = None if place is None else clean_line(place, PLACE_LIMIT)
    if title is not None and new_title is None:
        raise MeetingError("title", limit=TITLE_LIMIT)
    if place is not None and new_place is None:
        raise MeetingError("place", limit=PLACE_LIMIT)
    if starts_at is not None and starts_at <= now:
        raise MeetingError("past")
    if length_minutes is not None:
        check_length(length_minutes)
    if starts_at is not None and starts_at.astimezone(UTC) != meeting.starts_at:
        meeting.starts_at = starts_at.astimezone(UTC)
        result.changed.append("start")
    if length_minutes is not None and length_minutes != meeting.length_minutes:
        meeting.length_minutes = length_minutes
        result.changed.append("length")
    if new_place is not None and new_place != meeting.place:
        meeting.place = new_place
        result.changed.append("place")
    if new_title is not None and new_title != meeting.title:
        meeting.title = new_title
        result.changed.append("title")
    if not result.changed:
        raise MeetingError("nothing")
    if {"start", "length"} & set(result.changed):
        meeting.version += 1
    meeting.updated_at = now
    knew = await queries.told_about(session, meeting)  # before re-planning
    event = audit(
        session,
        "meeting.changed",
        by_person_id,
        now,
        meeting_id=meeting.id,
        version=meeting.version,
        changed=result.changed,
        notified=len(knew),
    )
    await session.flush()
    await planner.replan_meeting(session, protocol, meeting, now=now)
    contacts = await _contacts(session, knew)
    answers = await queries.answers_by_person(session, meeting.id)
    for contact in contacts:
        notice = change_notice(
            prompts,
            meeting,
            name=contact.name,
            zone=contact.zone,
            changed=result.changed,
            answer=answers.get(contact.person_id),
        )
        await enqueue(
            session,
            key=f"mt:{meeting.id}:v{meeting.version}:changed:{event.id}:{contact.person_id}",
            chat_id=contact.chat_id,
            text=notice.text,
            reply_markup=notice.markup,
            person_id=contact.person_id,
            kind="meeting",
            not_before=after_quiet_hours(protocol, contact.profile, now),
        )
    await _settle_reminders_due_now(session, meeting, [c.person_id for c in contacts], now)
    result.notified = len(contacts)
    return result


async def _settle_reminders_due_now(
    session: AsyncSession, meeting: Meeting, person_ids: Sequence[int], now: datetime
) -> None:
    """The change notice is their reminder: a new-version reminder due now is marked done.

    After a late change the planner collapses reminders whose time has passed into one due
    now; for people who have just been told, that would be the same news twice.
    """
    if not person_ids:
        return
    due = await queries.reminders_due_by(session, meeting, person_ids, now + timedelta(minutes=1))
    for occurrence in due:
        occurrence.status = OccurrenceStatus.DONE
        occurrence.reason = "change_notice"
        occurrence.done_at = now


async def cancel_meeting(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    meeting: Meeting,
    *,
    by_person_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Cancel a meeting: nothing more is planned for it, and those who knew are told kindly.

    Returns how many people were told (notices wait for the end of their quiet hours).
    Raises MeetingError ``cancelled`` if it already was.
    """
    now = now or utcnow()
    if meeting.cancelled_at is not None:
        raise MeetingError("cancelled")
    knew = await queries.told_about(session, meeting)
    meeting.cancelled_at = now
    meeting.updated_at = now
    await session.flush()
    await planner.cancel_meeting_occurrences(session, meeting, now=now)
    contacts = await _contacts(session, knew) if meeting.starts_at > now else []
    audit(
        session,
        "meeting.cancelled",
        by_person_id,
        now,
        meeting_id=meeting.id,
        version=meeting.version,
        notified=len(contacts),
    )
    for contact in contacts:
        await enqueue(
            session,
            key=f"mt:{meeting.id}:v{meeting.version}:cancelled:{contact.person_id}",
            chat_id=contact.chat_id,
            text=cancel_notice(prompts, meeting, name=contact.name, zone=contact.zone).text,
            person_id=contact.person_id,
            kind="meeting",
            not_before=after_quiet_hours(protocol, contact.profile, now),
        )
    return len(contacts)
