"""Meetings: arrange, change and cancel them; keep partners' answers and attendance.

Nothing here needs a Telegram update, so ``/meeting``, ``/meetings``, the command line and the
scheduler share it. Every function takes the caller's session and never commits.

* :func:`create_meeting`, :func:`change_meeting` and :func:`cancel_meeting` keep the meeting
  row, write an audit line (ids only) and ask the planner
  (:mod:`bot.schedule.planner`) to (re)plan its
  reminders and follow-up reflections. A change of start or length bumps ``meeting.version``,
  so reminders already sent for the old time do not stop new ones.
* A changed or cancelled meeting tells everyone who already knew about it: partners with a
  reminder that went out (an ``Occurrence`` of kind ``meeting_reminder`` with status
  ``done``) and partners who answered it. The message goes through the outbox with a key
  made of the meeting id, its version and the audit line of the change, so nothing is sent
  twice; a partner in their quiet hours gets it when they end. Someone told of a change does
  not also get a new-version reminder that the planner made due at once.
* :func:`record_response` keeps a partner's latest answer ("yes", "no", "maybe"); a cancelled
  or started meeting, or one they are not invited to, changes nothing.
* :func:`mark_attendance` writes the partner's ``Involvement`` row (the hours they gave). A
  partner marked as attended whose follow-up reflection was skipped ("not coming") while it
  can still go out gets it planned again; the due runner then opens it.
* :func:`reminder_message` is the reminder the due runner sends, with the three answer
  buttons (``mt:<meeting id>:<yes|no|maybe>``).
* :func:`parse_start` reads a date and time typed by a person ("3 Dec 18:00",
  "2026-12-03 18:00", "03/12/2026 6pm") in a given time zone.

Connectors' half-finished ``/meeting`` conversations are kept as a ``StaffDraft`` (kind
``"meeting"``); the small helpers for that are at the end.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.calendar.quiet import quiet_ends, quiet_hours
from bot.calendar.words import day_words, time_words, timezone_words
from bot.calendar.zones import zone_of
from bot.protocol import StudyProtocol
from bot.schedule import planner
from bot.transport.outbox import enqueue
from prompts import CALLBACK_DATA_LIMIT, Prompts
from storage.clock import utcnow
from storage.models import (
    AuditEvent,
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
    StaffDraft,
    TelegramIdentity,
)

CALLBACK_PREFIX = "mt"  # a partner's answer button: mt:<meeting id>:<yes|no|maybe>
ANSWERS: tuple[str, ...] = tuple(a.value for a in MeetingAnswer)
CHOSEN_MARK = "\u2713 "
TITLE_LIMIT = 200  # the column's length
PLACE_LIMIT = 500
MAX_LENGTH_MINUTES = 12 * 60
DRAFT_KIND = "meeting"
DRAFT_TTL = timedelta(days=1)  # a /meeting left this long is forgotten
RECENT_DAYS = 14  # attendance can be marked for meetings this recent
INVOLVEMENT_KIND = "meeting"

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


class MeetingError(ValueError):
    """Something about a meeting that cannot be done; ``reason`` names the wording to show.

    Reasons: ``title``, ``place``, ``length``, ``unknown_group``, ``timezone``, ``bad_date``,
    ``gap`` (a local time skipped by a clock change), ``past``, ``cancelled``, ``started``,
    ``nothing`` (a change that changes nothing), ``not_started`` (attendance too early).
    """

    def __init__(self, reason: str, **values: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


class ResponseOutcome(enum.StrEnum):
    """What a partner's answer button did."""

    RECORDED = "recorded"  # a first answer
    CHANGED = "changed"  # a different answer from before
    UNCHANGED = "unchanged"  # the same answer again
    CANCELLED = "cancelled"  # the meeting was cancelled: nothing changes
    PAST = "past"  # the meeting has started or is over: nothing changes
    NOT_INVITED = "not_invited"  # not one of the people it is for (now)
    INVALID = "invalid"  # not a partner, not an answer


@dataclass(frozen=True)
class ResponseResult:
    """The outcome of an answer, and the answer in force afterwards."""

    outcome: ResponseOutcome
    answer: str | None = None


@dataclass
class ChangeResult:
    """What :func:`change_meeting` changed and how many people were told."""

    changed: list[str] = field(default_factory=list)
    notified: int = 0


class Invitee(NamedTuple):
    """A partner a meeting is for."""

    person: Person
    profile: PartnerProfile


@dataclass(frozen=True)
class AttendanceRow:
    """One line of a connector's attendance sheet."""

    person_id: int
    name: str
    answer: str | None
    attended: bool


@dataclass(frozen=True)
class _Contact:
    person_id: int
    chat_id: int
    name: str
    zone: ZoneInfo
    profile: PartnerProfile | None


# -- small pure helpers ----------------------------------------------------------------------


def meeting_zone(protocol: StudyProtocol, groups: Sequence[str]) -> str:
    """The zone a meeting is arranged in: its first group's (the protocol's first for all)."""
    group = protocol.group(groups[0]) if groups else None
    return (group or protocol.groups[0]).timezone


def is_invited(meeting: Meeting, profile: PartnerProfile | None) -> bool:
    """Whether a partner with ``profile`` is one of the people the meeting is for."""
    if profile is None or profile.onboarded_at is None:
        return False
    return not meeting.groups or profile.group_key in meeting.groups


def clean_text(text: str | None, limit: int) -> str | None:
    """One tidy line from what someone typed, or None (empty or longer than ``limit``)."""
    if text is None:
        return None
    cleaned = " ".join(_CONTROL.sub("", text).split())
    if not cleaned or len(cleaned) > limit:
        return None
    return cleaned


def check_groups(protocol: StudyProtocol, groups: Iterable[str]) -> list[str]:
    """The group keys in protocol order, without repeats; unknown ones raise MeetingError."""
    wanted = list(dict.fromkeys(groups))
    known = [g.key for g in protocol.groups]
    unknown = [g for g in wanted if g not in known]
    if unknown:
        raise MeetingError("unknown_group", group=unknown[0], known=", ".join(known))
    return [key for key in known if key in wanted]


def _check_length(minutes: int) -> int:
    if not 1 <= minutes <= MAX_LENGTH_MINUTES:
        raise MeetingError("length", most=MAX_LENGTH_MINUTES)
    return minutes


# -- words ------------------------------------------------------------------------------------


def length_words(prompts: Prompts, minutes: int) -> str:
    """A meeting's length in words: ``1 hour``, ``2 hours``, ``1 hour 30 minutes``."""
    hours, rest = divmod(minutes, 60)
    if hours == 0:
        return prompts.label("meetings.length.minutes", minutes=rest)
    hour_words = prompts.label(
        "meetings.length.one_hour" if hours == 1 else "meetings.length.hours", hours=hours
    )
    if rest == 0:
        return hour_words
    return prompts.label("meetings.length.and_minutes", hours=hour_words, minutes=rest)


def offset_words(prompts: Prompts, hours: int) -> str:
    """How long before a meeting: ``2 hours``, ``1 day``, ``2 days``."""
    if hours % 24 == 0:
        days = hours // 24
        return prompts.label(
            "meetings.offset.one_day" if days == 1 else "meetings.offset.days", days=days
        )
    return prompts.label(
        "meetings.offset.one_hour" if hours == 1 else "meetings.offset.hours", hours=hours
    )


def answer_label(prompts: Prompts, answer: str | None) -> str | None:
    """The button words of an answer ("I'll be there"), or None for no answer."""
    if answer not in ANSWERS:
        return None
    return prompts.label(f"meetings.answers.{answer}")


def details(prompts: Prompts, meeting: Meeting, zone: ZoneInfo) -> dict[str, Any]:
    """The values every meeting template shows, in the reader's time zone."""
    return {
        "title": meeting.title,
        "day": day_words(prompts, meeting.starts_at, zone),
        "time": time_words(prompts, meeting.starts_at.astimezone(zone).time()),
        "length": length_words(prompts, meeting.length_minutes),
        "place": meeting.place,
        "zone": timezone_words(prompts, str(zone.key)),
    }


def group_words(prompts: Prompts, protocol: StudyProtocol, groups: Sequence[str]) -> list[str]:
    """The names of a meeting's groups (``Everyone`` when it is for all)."""
    if not groups:
        return [prompts.label("meetings.staff.everyone")]
    return [(g.name if (g := protocol.group(key)) else key) for key in groups]


def reminder_offsets_words(prompts: Prompts, protocol: StudyProtocol) -> list[str]:
    """When reminders go out, earliest first: ``["2 days", "2 hours"]``."""
    hours = sorted(protocol.meetings.reminder_offsets_hours, reverse=True)
    return [offset_words(prompts, h) for h in hours]


def example_start(prompts: Prompts, zone: ZoneInfo, *, now: datetime) -> str:
    """A date and time a week from now, written the way :func:`parse_start` reads it."""
    local = (now + timedelta(days=7)).astimezone(zone)
    month = prompts.labels("tools.dates.months_short")[str(local.month)]
    return f"{local.day} {month} 18:00"


def callback_data(meeting_id: int, answer: str) -> str:
    """``mt:<meeting id>:<answer>`` for one answer button."""
    data = f"{CALLBACK_PREFIX}:{meeting_id}:{answer}"
    assert len(data.encode()) <= CALLBACK_DATA_LIMIT
    return data


def parse_callback(data: str | None) -> tuple[int, str] | None:
    """``(meeting id, answer)`` from answer-button data, or None when it is not well formed."""
    if not data or len(data.encode()) > CALLBACK_DATA_LIMIT:
        return None
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != CALLBACK_PREFIX:
        return None
    meeting_id, answer = parts[1], parts[2]
    if not (meeting_id.isascii() and meeting_id.isdigit()) or len(meeting_id) > 12:
        return None
    if answer not in ANSWERS:
        return None
    return int(meeting_id), answer


def answer_keyboard(
    prompts: Prompts, meeting: Meeting, chosen: str | None = None
) -> InlineKeyboardMarkup:
    """The three answer buttons, one per row, with the chosen one ticked."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    (CHOSEN_MARK if answer == chosen else "")
                    + prompts.label(f"meetings.answers.{answer}"),
                    callback_data=callback_data(meeting.id, answer),
                )
            ]
            for answer in ANSWERS
        ]
    )


def reminder_message(
    prompts: Prompts,
    meeting: Meeting,
    *,
    name: str,
    zone: ZoneInfo,
    answer: str | None,
    hours_before: int,
) -> tuple[str, InlineKeyboardMarkup]:
    """The reminder a partner gets ``hours_before`` a meeting, and its answer buttons.

    The day and time are in the partner's own zone; ``answer`` (their answer so far, if any)
    is named in the text and ticked on its button. "In 2 days" follows ``hours_before``
    unless the reminder goes out well away from that time (late after downtime, or planned at
    short notice): then it says how long there really is left, on the one clock.
    """
    left = (meeting.starts_at - utcnow()).total_seconds() / 3600
    if abs(left - hours_before) >= 1.5 and left > 0:
        hours_before = round(left / 24) * 24 if left >= 24 else round(left)
    soon = (
        offset_words(prompts, hours_before)
        if hours_before >= 1 and left >= 0.75
        else prompts.label("meetings.offset.under_an_hour")
    )
    text = prompts.render(
        "meetings/reminder",
        name=name,
        soon=soon,
        answer=answer_label(prompts, answer),
        **details(prompts, meeting, zone),
    )
    return text, answer_keyboard(prompts, meeting, answer)


# -- reading a typed date and time ------------------------------------------------------------

_ORDINAL = re.compile(r"(\d)(st|nd|rd|th)\b")
_TIME_AT_END = re.compile(
    r"(?:^|\s)(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?(?::\d{2})?\s*(?P<ap>[a-z]{2})?$"
)
_ISO_DATE = re.compile(r"^(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})$")
_NUMERIC_DATE = re.compile(r"^(?P<d>\d{1,2})[/.-](?P<mo>\d{1,2})(?:[/.-](?P<y>\d{4}|\d{2}))?$")
_DAY_MONTH = re.compile(r"^(?P<d>\d{1,2})\s+(?P<mo>[a-z]+)\.?(?:\s+(?P<y>\d{4}))?$")
_MONTH_DAY = re.compile(r"^(?P<mo>[a-z]+)\.?\s+(?P<d>\d{1,2})(?:\s+(?P<y>\d{4}))?$")


def _month_names(prompts: Prompts) -> dict[str, int]:
    """Month words (full, short, and any 3+ letter start of the full name) -> number."""
    names: dict[str, int] = {}
    for group in ("tools.dates.months", "tools.dates.months_short"):
        for number, word in prompts.labels(group).items():
            names[word.lower()] = int(number)
    for number, word in prompts.labels("tools.dates.months").items():
        lowered = word.lower()
        for end in range(3, len(lowered)):
            names.setdefault(lowered[:end], int(number))
    return names


def _clock(match: re.Match[str], prompts: Prompts) -> time | None:
    """The time of day in a ``_TIME_AT_END`` match (a bare number is not a time)."""
    hour, minute, suffix = int(match["h"]), int(match["m"] or 0), match["ap"]
    am, pm = prompts.label("meetings.parse.am"), prompts.label("meetings.parse.pm")
    if suffix is None and match["m"] is None:
        return None
    if suffix is not None:
        if suffix not in (am, pm) or not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix == pm else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _day(text: str, prompts: Prompts, today: date) -> tuple[int | None, int, int] | None:
    """(year or None, month, day) from the date part of what was typed."""
    if text == prompts.label("meetings.parse.today"):
        return today.year, today.month, today.day
    if text == prompts.label("meetings.parse.tomorrow"):
        tomorrow = today + timedelta(days=1)
        return tomorrow.year, tomorrow.month, tomorrow.day
    if match := _ISO_DATE.match(text):
        return int(match["y"]), int(match["mo"]), int(match["d"])
    found = _NUMERIC_DATE.match(text)
    if found is not None:
        year = found["y"]
        full = None if year is None else int(year) + (2000 if len(year) == 2 else 0)
        return full, int(found["mo"]), int(found["d"])
    months = _month_names(prompts)
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        found = pattern.match(text)
        if found is not None and found["mo"] in months:
            return (int(found["y"]) if found["y"] else None), months[found["mo"]], int(found["d"])
    return None


def parse_start(prompts: Prompts, text: str, zone: ZoneInfo, *, now: datetime) -> datetime:
    """The moment a person means by ``text`` in ``zone``, as an aware UTC datetime.

    Accepts, for example, ``3 Dec 18:00``, ``Thursday 3rd December at 6pm``,
    ``2026-12-03 18:00``, ``03/12/2026 6pm`` (day first, the British way) and
    ``tomorrow 10:30am``. Without a year, the next such date is meant. Raises MeetingError:
    ``bad_date`` (not understood, or no such date), ``gap`` (a time the clocks skip on that
    day) or ``past``.
    """
    cleaned = " ".join(text.strip().lower().replace(",", " ").split())
    cleaned = re.sub(r"(\d)t(\d)", r"\1 \2", cleaned)  # 2026-12-03T18:00
    cleaned = _ORDINAL.sub(r"\1", cleaned)
    skip = {prompts.label("meetings.parse.at")}
    for weekday in prompts.labels("tools.dates.weekdays").values():
        skip |= {weekday.lower(), weekday.lower()[:3]}
    cleaned = " ".join(w for w in cleaned.split() if w.rstrip(".") not in skip)
    if len(cleaned) > 60:
        raise MeetingError("bad_date")
    found = _TIME_AT_END.search(cleaned)
    clock = _clock(found, prompts) if found is not None else None
    if found is None or clock is None:
        raise MeetingError("bad_date")
    local_now = now.astimezone(zone)
    day = _day(cleaned[: found.start()].strip(), prompts, local_now.date())
    if day is None:
        raise MeetingError("bad_date")
    year, month, dom = day
    try:
        local = datetime.combine(date(year or local_now.year, month, dom), clock, tzinfo=zone)
        if year is None and local <= now:
            local = datetime.combine(date(local_now.year + 1, month, dom), clock, tzinfo=zone)
    except ValueError as exc:  # 31 February and the like
        raise MeetingError("bad_date") from exc
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise MeetingError("gap")
    if moment <= now:
        raise MeetingError("past")
    return moment


# -- reading ----------------------------------------------------------------------------------


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


async def answer_counts(session: AsyncSession, meeting_id: int) -> dict[str, int]:
    """How many partners gave each answer."""
    rows = await session.execute(
        select(MeetingResponse.answer).where(MeetingResponse.meeting_id == meeting_id)
    )
    counts = dict.fromkeys(ANSWERS, 0)
    for answer in rows.scalars():
        if answer in counts:
            counts[answer] += 1
    return counts


async def upcoming_for_partner(
    session: AsyncSession,
    person: Person,
    profile: PartnerProfile,
    *,
    now: datetime,
    limit: int = 5,
) -> list[tuple[Meeting, str | None]]:
    """The next meetings (not started, not cancelled) for the partner, with their answers."""
    rows = await session.execute(
        select(Meeting)
        .where(Meeting.cancelled_at.is_(None), Meeting.starts_at > now)
        .order_by(Meeting.starts_at, Meeting.id)
    )
    meetings = [m for m in rows.scalars() if is_invited(m, profile)][:limit]
    if not meetings:
        return []
    answers = await session.execute(
        select(MeetingResponse.meeting_id, MeetingResponse.answer).where(
            MeetingResponse.person_id == person.id,
            MeetingResponse.meeting_id.in_([m.id for m in meetings]),
        )
    )
    given = {meeting_id: answer for meeting_id, answer in answers}
    return [(m, given.get(m.id)) for m in meetings]


async def upcoming(session: AsyncSession, *, now: datetime, limit: int = 8) -> list[Meeting]:
    """Meetings that have not started and are not cancelled, soonest first."""
    rows = await session.execute(
        select(Meeting)
        .where(Meeting.cancelled_at.is_(None), Meeting.starts_at > now)
        .order_by(Meeting.starts_at, Meeting.id)
        .limit(limit)
    )
    return list(rows.scalars())


async def recent(
    session: AsyncSession, *, now: datetime, days: int = RECENT_DAYS, limit: int = 5
) -> list[Meeting]:
    """Meetings that started in the last ``days`` (not cancelled), latest first."""
    rows = await session.execute(
        select(Meeting)
        .where(
            Meeting.cancelled_at.is_(None),
            Meeting.starts_at <= now,
            Meeting.starts_at > now - timedelta(days=days),
        )
        .order_by(Meeting.starts_at.desc(), Meeting.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def all_meetings(
    session: AsyncSession, *, now: datetime, everything: bool = False
) -> list[Meeting]:
    """Meetings for a list: those not over and not cancelled, or ``everything``."""
    query = select(Meeting).order_by(Meeting.starts_at, Meeting.id)
    if not everything:
        query = query.where(
            Meeting.cancelled_at.is_(None), Meeting.starts_at > now - timedelta(days=1)
        )
    rows = await session.execute(query)
    return [m for m in rows.scalars() if everything or planner.meeting_end(m) > now]


async def _pairs(session: AsyncSession, query: Any) -> dict[Any, Any]:
    """A two-column query as a mapping of the first column to the second."""
    return {key: value for key, value in (await session.execute(query)).all()}


async def _names(session: AsyncSession, person_ids: Iterable[int]) -> dict[int, str]:
    ids = list(set(person_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(
            TelegramIdentity.person_id,
            TelegramIdentity.preferred_name,
            TelegramIdentity.first_name,
        ).where(TelegramIdentity.person_id.in_(ids))
    )
    return {pid: preferred or first or "" for pid, preferred, first in rows}


async def attendance_sheet(session: AsyncSession, meeting: Meeting) -> list[AttendanceRow]:
    """Everyone the meeting was for, who answered, or who has attendance, sorted by name."""
    people = {i.person.id for i in await invitees(session, meeting)}
    answers = await _pairs(
        session,
        select(MeetingResponse.person_id, MeetingResponse.answer).where(
            MeetingResponse.meeting_id == meeting.id
        ),
    )
    attended = await _pairs(
        session,
        select(Involvement.person_id, Involvement.attended).where(
            Involvement.meeting_id == meeting.id
        ),
    )
    people |= set(answers) | set(attended)
    names = await _names(session, people)
    rows = [
        AttendanceRow(pid, names.get(pid, ""), answers.get(pid), bool(attended.get(pid, False)))
        for pid in people
    ]
    return sorted(rows, key=lambda r: (r.name.casefold(), r.person_id))


async def _contacts(session: AsyncSession, person_ids: Iterable[int]) -> list[_Contact]:
    """Chat, name and zone of each active person in ``person_ids`` (by id)."""
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
    return [
        _Contact(
            identity.person_id,
            identity.chat_id,
            identity.called,
            zone_of(profile),
            profile,
        )
        for identity, profile in rows
    ]


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


# -- changing ---------------------------------------------------------------------------------


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


def _audit(
    session: AsyncSession, action: str, actor: int | None, now: datetime, **detail: Any
) -> AuditEvent:
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
    clean_title = clean_text(title, TITLE_LIMIT)
    if clean_title is None:
        raise MeetingError("title", limit=TITLE_LIMIT)
    clean_place = clean_text(place, PLACE_LIMIT)
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
        length_minutes=_check_length(length_minutes),
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
    _audit(
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
    new_title = None if title is None else clean_text(title, TITLE_LIMIT)
    new_place = None if place is None else clean_text(place, PLACE_LIMIT)
    if title is not None and new_title is None:
        raise MeetingError("title", limit=TITLE_LIMIT)
    if place is not None and new_place is None:
        raise MeetingError("place", limit=PLACE_LIMIT)
    if starts_at is not None and starts_at <= now:
        raise MeetingError("past")
    if length_minutes is not None:
        _check_length(length_minutes)
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
    knew = await told_about(session, meeting)  # before re-planning
    event = _audit(
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
    answers = await _pairs(
        session,
        select(MeetingResponse.person_id, MeetingResponse.answer).where(
            MeetingResponse.meeting_id == meeting.id
        ),
    )
    for contact in contacts:
        answer = answers.get(contact.person_id)
        await enqueue(
            session,
            key=f"mt:{meeting.id}:v{meeting.version}:changed:{event.id}:{contact.person_id}",
            chat_id=contact.chat_id,
            text=prompts.render(
                "meetings/changed",
                name=contact.name,
                changed=result.changed,
                answer=answer_label(prompts, answer),
                **details(prompts, meeting, contact.zone),
            ),
            reply_markup=answer_keyboard(prompts, meeting, answer),
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
    rows = await session.execute(
        select(Occurrence).where(
            Occurrence.meeting_id == meeting.id,
            Occurrence.kind == OccurrenceKind.MEETING_REMINDER,
            Occurrence.status == OccurrenceStatus.PLANNED,
            Occurrence.person_id.in_(list(person_ids)),
            Occurrence.due_at <= now + timedelta(minutes=1),
        )
    )
    for occurrence in rows.scalars():
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
    knew = await told_about(session, meeting)
    meeting.cancelled_at = now
    meeting.updated_at = now
    await session.flush()
    await planner.cancel_meeting_occurrences(session, meeting, now=now)
    contacts = await _contacts(session, knew) if meeting.starts_at > now else []
    _audit(
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
            text=prompts.render(
                "meetings/cancelled",
                name=contact.name,
                **details(prompts, meeting, contact.zone),
            ),
            person_id=contact.person_id,
            kind="meeting",
            not_before=after_quiet_hours(protocol, contact.profile, now),
        )
    return len(contacts)


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
    found = await session.execute(
        select(MeetingResponse).where(
            MeetingResponse.meeting_id == meeting.id, MeetingResponse.person_id == person.id
        )
    )
    response = found.scalar_one_or_none()
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
    found = await session.execute(
        select(Involvement).where(
            Involvement.meeting_id == meeting.id, Involvement.person_id == person.id
        )
    )
    involvement = found.scalar_one_or_none()
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
        skipped = await session.execute(
            select(Occurrence).where(
                Occurrence.meeting_id == meeting.id,
                Occurrence.person_id == person.id,
                Occurrence.kind == OccurrenceKind.MEETING_FOLLOWUP,
                Occurrence.status == OccurrenceStatus.SKIPPED,
                Occurrence.window_ends_at > now,
            )
        )
        for occurrence in skipped.scalars():
            occurrence.status = OccurrenceStatus.PLANNED
            occurrence.reason = None
            occurrence.done_at = None
            replanned += 1
    await session.flush()
    _audit(
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


# -- connectors' drafts ------------------------------------------------------------------------


async def get_draft(session: AsyncSession, person_id: int, *, now: datetime) -> StaffDraft | None:
    """The connector's unfinished ``/meeting``, if any (one left over a day is forgotten)."""
    draft = await session.get(StaffDraft, person_id)
    if draft is None or draft.kind != DRAFT_KIND:
        return None
    if draft.updated_at < now - DRAFT_TTL:
        await session.delete(draft)
        return None
    return draft


async def start_draft(
    session: AsyncSession, person_id: int, step: str, data: dict[str, Any], *, now: datetime
) -> StaffDraft:
    """Begin a ``/meeting`` draft at ``step`` (replacing any other draft of this person)."""
    await session.execute(delete(StaffDraft).where(StaffDraft.person_id == person_id))
    draft = StaffDraft(person_id=person_id, kind=DRAFT_KIND, step=step, data=data, updated_at=now)
    session.add(draft)
    await session.flush()
    return draft


def save_draft(draft: StaffDraft, step: str, *, now: datetime, **values: Any) -> None:
    """Move a draft to ``step`` with ``values`` added to its data."""
    draft.step = step
    draft.data = {**draft.data, **values}  # a new dict, so the JSON column sees the change
    draft.updated_at = now


async def drop_draft(session: AsyncSession, person_id: int) -> bool:
    """Forget the connector's ``/meeting`` draft; True if there was one."""
    draft = await session.get(StaffDraft, person_id)
    if draft is None or draft.kind != DRAFT_KIND:
        return False
    await session.delete(draft)
    return True
