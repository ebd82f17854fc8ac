"""The planner: keeps every partner's schedule as rows, a rolling horizon ahead.

From the protocol and each partner's settings it works out what should happen in the next
``horizon`` (weekly check-ins at the partner's chosen local time, monthly reflections, meeting
reminders and post-meeting reflections) and reconciles that with the ``occurrence`` table:
missing rows are added, moved ones updated, ones that no longer apply (a changed slot, a
changed meeting) deleted while they are still in the future. Rows that have fallen due are
never touched here; :mod:`bot.schedule.runner` decides what happens to them.

APScheduler's ``CronTrigger`` does the calendar arithmetic in each partner's IANA zone, so a
daylight-saving change neither shifts nor duplicates anything. Keys are built from the local
date, so planning the same week twice can never make a second row.

After downtime longer than the horizon, the first pass also fills the gap (``backfill``): the
check-ins that should have happened while the bot was off get rows in the past, which
:mod:`bot.schedule.runner` then records as missed, so the longitudinal record has no silent hole.

Nothing here sends a message or commits: the caller owns the unit of work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.zones import zone_named
from bot.protocol import CheckinDef, StudyProtocol
from storage.clock import utcnow
from storage.models import (
    Meeting,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    PartnerProfile,
    Person,
    PersonStatus,
    Role,
)

log = logging.getLogger(__name__)

DEFAULT_HORIZON = timedelta(days=14)
#: How far back a first pass after downtime fills the gap (see ``reconcile_partners``).
MAX_BACKFILL = timedelta(days=366)
LONGEST_MEETING = timedelta(
    days=1
)  # longer than any meeting (bot.meetings.service allows 12 hours)
_PLANNED_KINDS = (OccurrenceKind.CHECKIN,)  # what reconcile_partner owns (meetings have theirs)


@dataclass(frozen=True)
class Planned:
    """One occurrence the planner wants to exist."""

    key: str
    kind: OccurrenceKind
    person_id: int
    due_at: datetime
    window_ends_at: datetime
    checkin_key: str | None = None
    meeting_id: int | None = None


@dataclass(frozen=True)
class PartnerSchedule:
    """What the planner needs to know about one partner (a plain row, cheap to load)."""

    person_id: int
    status: str
    timezone: str
    checkin_weekday: int | None
    checkin_time: str | None
    group_key: str | None
    onboarded_at: datetime | None


@dataclass
class PassResult:
    """What one planning pass did."""

    partners: int = 0
    added: int = 0
    moved: int = 0
    removed: int = 0
    cancelled: int = 0


# -- calendar arithmetic ---------------------------------------------------------------------


def _hhmm(value: str) -> tuple[int, int]:
    hours, minutes = value.split(":")
    return int(hours), int(minutes)


# The triggers pick the *days* (at local noon, which exists once on every day in every zone);
# the partner's wall-clock time on that day is then made an instant by zoneinfo. A time that
# happens twice when the clocks go back is taken once (its first occurrence), and one that
# does not exist when they go forward becomes the same wall time on the new offset (an hour
# later), so no week is ever skipped or doubled. APScheduler alone would return the doubled
# hour twice and drop the missing one.
@lru_cache(maxsize=4096)
def weekly_trigger(weekday: int, zone: str) -> CronTrigger:
    """Fires at local noon on ``weekday`` (0 = Monday) in ``zone``."""
    return CronTrigger(day_of_week=weekday, hour=12, minute=0, timezone=zone_named(zone))


@lru_cache(maxsize=4096)
def monthly_trigger(day: int, zone: str) -> CronTrigger:
    """Fires at local noon on ``day`` of every month in ``zone``."""
    return CronTrigger(day=day, hour=12, minute=0, timezone=zone_named(zone))


def fire_times(trigger: CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every time ``trigger`` fires in ``[start, end)``, as aware datetimes, each once."""
    times: list[datetime] = []
    previous: datetime | None = None
    now = start.astimezone(UTC)
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire >= end:
            return times
        if previous is not None and fire.astimezone(UTC) <= previous.astimezone(UTC):
            return times  # never loop on a trigger that does not move forward
        times.append(fire)
        previous, now = fire, fire.astimezone(UTC) + timedelta(seconds=1)


def local_instants(
    trigger: CronTrigger, hhmm: str, zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, date]]:
    """The instants in ``[start, end)`` at wall time ``hhmm`` on the days ``trigger`` picks.

    Each comes with its local date (the day the partner would name), in UTC.
    """
    hour, minute = _hhmm(hhmm)
    found: list[tuple[datetime, date]] = []
    for noon in fire_times(trigger, start - timedelta(days=1), end + timedelta(days=1)):
        day = noon.astimezone(zone).date()
        wall = datetime.combine(day, time(hour, minute), tzinfo=zone)  # fold=0: the first
        instant = wall.astimezone(UTC)
        if start <= instant < end:
            found.append((instant, day))
    return found


def weekly_times(
    weekday: int, hhmm: str, zone_name: str, start: datetime, end: datetime
) -> list[datetime]:
    """A weekly local time's instants in ``[start, end)`` (for tests and the demo)."""
    zone = zone_named(zone_name)
    return [
        t for t, _ in local_instants(weekly_trigger(weekday, zone_name), hhmm, zone, start, end)
    ]


def end_of_local_day(moment: datetime, zone: ZoneInfo) -> datetime:
    """The first instant of the next local day after ``moment`` in ``zone``."""
    local = moment.astimezone(zone)
    next_day = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return next_day.astimezone(moment.tzinfo)


def lateness_window(definition: CheckinDef, due_at: datetime, zone: ZoneInfo) -> datetime:
    """Until when a check-in due at ``due_at`` may still start (its lateness policy)."""
    if definition.late_hours is not None:
        return due_at + timedelta(hours=definition.late_hours)
    return end_of_local_day(due_at, zone)


def default_checkin_time(protocol: StudyProtocol) -> str:
    """The check-in time for someone who never chose one: the protocol's first slot."""
    return protocol.checkin_slots[0].time


# -- what should exist -----------------------------------------------------------------------


# (schedule, day, time, zone, start, end) -> [(due, local date, end of window)] for one pass
FireCache = dict[
    tuple[str, int, str, str, datetime, datetime], list[tuple[datetime, str, datetime]]
]


def _fires(
    definition: CheckinDef,
    *,
    day: int,
    hhmm: str,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    cache: FireCache,
) -> list[tuple[datetime, str, datetime]]:
    """When ``definition`` falls due in ``[start, end)``, with its local date and window.

    Most partners share a slot and a zone, so one pass asks the trigger once per
    combination rather than once per partner (the calendar arithmetic is the costly part).
    """
    zone_name = str(zone.key)
    key = (definition.key, day, hhmm, zone_name, start, end)
    found = cache.get(key)
    if found is None:
        trigger = (
            weekly_trigger(day, zone_name)
            if definition.schedule == "weekly"
            else monthly_trigger(day, zone_name)
        )
        found = [
            (due, local_date.isoformat(), lateness_window(definition, due, zone))
            for due, local_date in local_instants(trigger, hhmm, zone, start, end)
        ]
        cache[key] = found
    return found


def wanted_checkins(
    protocol: StudyProtocol,
    partner: PartnerSchedule,
    start: datetime,
    end: datetime,
    cache: FireCache | None = None,
) -> list[Planned]:
    """The scheduled check-ins due for ``partner`` in ``[start, end)``."""
    if partner.status == PersonStatus.WITHDRAWN or partner.onboarded_at is None:
        return []
    cache = {} if cache is None else cache
    zone = zone_named(partner.timezone)
    # Nothing before they finished onboarding: a partner who joins on a Thursday afternoon
    # is not owed Thursday morning's check-in.
    start = max(start, partner.onboarded_at)
    hhmm = partner.checkin_time or default_checkin_time(protocol)
    wanted: list[Planned] = []
    for definition in protocol.checkins:
        if definition.schedule == "weekly":
            if partner.checkin_weekday is None:
                continue
            day = partner.checkin_weekday
        elif definition.schedule == "monthly":
            day = definition.day_of_month
        else:
            continue
        for due, local_date, window_end in _fires(
            definition, day=day, hhmm=hhmm, zone=zone, start=start, end=end, cache=cache
        ):
            wanted.append(
                Planned(
                    key=f"ci:{definition.key}:{partner.person_id}:{local_date}",
                    kind=OccurrenceKind.CHECKIN,
                    person_id=partner.person_id,
                    due_at=due,
                    window_ends_at=window_end,
                    checkin_key=definition.key,
                )
            )
    return wanted


def invited(meeting: Meeting, partner: PartnerSchedule) -> bool:
    """Whether ``partner`` is one of the people ``meeting`` is for."""
    if partner.status == PersonStatus.WITHDRAWN or partner.onboarded_at is None:
        return False
    return not meeting.groups or partner.group_key in meeting.groups


def meeting_end(meeting: Meeting) -> datetime:
    """When ``meeting`` finishes."""
    return meeting.starts_at + timedelta(minutes=meeting.length_minutes)


def _followup_definition(protocol: StudyProtocol) -> CheckinDef | None:
    return next((c for c in protocol.checkins if c.schedule == "after_meeting"), None)


def wanted_for_meeting(
    protocol: StudyProtocol,
    meeting: Meeting,
    partner: PartnerSchedule,
    *,
    now: datetime,
    existing: Iterable[str] = (),
) -> list[Planned]:
    """The reminders and the follow-up reflection of ``meeting`` for ``partner``.

    Reminders whose time has already passed when the meeting is planned (it was arranged at
    short notice, or the partner joined late) collapse into one reminder due now, so nobody
    gets two at once; a reminder already sent for this version is not planned again.
    """
    if meeting.cancelled_at is not None or not invited(meeting, partner):
        return []
    prefix = f"mt:{meeting.id}:v{meeting.version}"
    already = set(existing)
    wanted: list[Planned] = []
    if meeting.starts_at > now:
        late: list[int] = []
        for hours in protocol.meetings.reminder_offsets_hours:
            due = meeting.starts_at - timedelta(hours=hours)
            key = f"{prefix}:remind:{hours}h:{partner.person_id}"
            if due >= now or key in already:
                wanted.append(
                    Planned(
                        key=key,
                        kind=OccurrenceKind.MEETING_REMINDER,
                        person_id=partner.person_id,
                        due_at=due,
                        window_ends_at=meeting.starts_at,
                        meeting_id=meeting.id,
                    )
                )
            else:
                late.append(hours)
        sent_late = any(f"{prefix}:remind:{h}h:{partner.person_id}" in already for h in late)
        if (
            late
            and not sent_late
            and not any(w.due_at < now + timedelta(minutes=1) for w in wanted)
        ):
            hours = min(late)
            wanted.append(
                Planned(
                    key=f"{prefix}:remind:{hours}h:{partner.person_id}",
                    kind=OccurrenceKind.MEETING_REMINDER,
                    person_id=partner.person_id,
                    due_at=now,
                    window_ends_at=meeting.starts_at,
                    meeting_id=meeting.id,
                )
            )
    definition = _followup_definition(protocol)
    end = meeting_end(meeting)
    if definition is not None:
        zone = zone_named(partner.timezone)
        wanted.append(
            Planned(
                key=f"{prefix}:after:{partner.person_id}",
                kind=OccurrenceKind.MEETING_FOLLOWUP,
                person_id=partner.person_id,
                due_at=end,
                window_ends_at=lateness_window(definition, end, zone),
                checkin_key=definition.key,
                meeting_id=meeting.id,
            )
        )
    return wanted


# -- loading ---------------------------------------------------------------------------------


_PARTNER_COLUMNS = (
    Person.id,
    Person.status,
    PartnerProfile.timezone,
    PartnerProfile.checkin_weekday,
    PartnerProfile.checkin_time,
    PartnerProfile.group_key,
    PartnerProfile.onboarded_at,
)


async def load_partners(
    session: AsyncSession, person_ids: Sequence[int] | None = None
) -> list[PartnerSchedule]:
    """Every partner with a profile (or just ``person_ids``), as plain rows."""
    query = (
        select(*_PARTNER_COLUMNS)
        .join(PartnerProfile, PartnerProfile.person_id == Person.id)
        .where(Person.role == Role.PARTNER)
        .order_by(Person.id)
    )
    if person_ids is not None:
        query = query.where(Person.id.in_(person_ids))
    rows = await session.execute(query)
    return [PartnerSchedule(*row) for row in rows]


@dataclass(frozen=True)
class _Row:
    """An occurrence as the planner sees it."""

    id: int
    status: str
    due_at: datetime
    deferred: bool  # it fell due once and was held back (quiet hours, another check-in)

    def movable(self, now: datetime) -> bool:
        """Still only a plan: planned, in the future, and never yet due."""
        return self.status == OccurrenceStatus.PLANNED and self.due_at > now and not self.deferred


async def _existing(
    session: AsyncSession,
    *,
    person_ids: Sequence[int] | None,
    meeting_id: int | None,
    kinds: Sequence[str],
) -> dict[str, _Row]:
    """Occurrences of ``kinds`` by key, for these people and/or this meeting."""
    query = select(
        Occurrence.key,
        Occurrence.id,
        Occurrence.status,
        Occurrence.due_at,
        Occurrence.reason,
    ).where(Occurrence.kind.in_(kinds))
    if person_ids is not None:
        query = query.where(Occurrence.person_id.in_(person_ids))
    if meeting_id is not None:
        query = query.where(Occurrence.meeting_id == meeting_id)
    rows = await session.execute(query)
    return {
        key: _Row(oid, status, due, reason is not None) for key, oid, status, due, reason in rows
    }


# -- reconciling -----------------------------------------------------------------------------


async def _apply(
    session: AsyncSession,
    wanted: Sequence[Planned],
    existing: dict[str, _Row],
    *,
    now: datetime,
    removable: Iterable[str],
    result: PassResult,
) -> None:
    """Add, move and remove planned rows so that the future matches ``wanted``."""
    wanted_keys = set()
    new_rows = []
    for item in wanted:
        wanted_keys.add(item.key)
        found = existing.get(item.key)
        if found is None:
            new_rows.append(
                {
                    "key": item.key,
                    "kind": item.kind,
                    "person_id": item.person_id,
                    "checkin_key": item.checkin_key,
                    "meeting_id": item.meeting_id,
                    "due_at": item.due_at,
                    "window_ends_at": item.window_ends_at,
                    "status": OccurrenceStatus.PLANNED,
                    "planned_at": now,
                }
            )
            continue
        if found.movable(now) and found.due_at != item.due_at:
            await session.execute(
                update(Occurrence)
                .where(Occurrence.id == found.id)
                .values(due_at=item.due_at, window_ends_at=item.window_ends_at)
            )
            result.moved += 1
    if new_rows:
        await session.execute(insert(Occurrence), new_rows)
        result.added += len(new_rows)
    stale = [
        existing[key].id
        for key in removable
        if key not in wanted_keys and existing[key].movable(now)
    ]
    if stale:
        await session.execute(delete(Occurrence).where(Occurrence.id.in_(stale)))
        result.removed += len(stale)


async def cancel_for_person(
    session: AsyncSession, person_id: int, *, now: datetime, reason: str
) -> int:
    """Cancel everything still planned for a person (withdrawal); returns how many."""
    done = await session.execute(
        update(Occurrence)
        .where(Occurrence.person_id == person_id, Occurrence.status == OccurrenceStatus.PLANNED)
        .values(status=OccurrenceStatus.CANCELLED, reason=reason, done_at=now)
    )
    return int(getattr(done, "rowcount", 0) or 0)


async def reconcile_partners(
    session: AsyncSession,
    protocol: StudyProtocol,
    partners: Sequence[PartnerSchedule],
    *,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    result: PassResult | None = None,
    backfill: timedelta | None = None,
) -> PassResult:
    """Bring these partners' scheduled check-ins in line with their settings up to ``horizon``.

    ``backfill`` (after downtime): also plan what fell due between each partner's last
    planned check-in and now, up to that far back. Those rows are already due, and the due
    runner records them as missed (or, within their window, still sends them).
    """
    result = result or PassResult()
    result.partners += len(partners)
    active = [p for p in partners if p.status != PersonStatus.WITHDRAWN]
    gone = [p.person_id for p in partners if p.status == PersonStatus.WITHDRAWN]
    if gone:
        done = await session.execute(
            update(Occurrence)
            .where(Occurrence.person_id.in_(gone), Occurrence.status == OccurrenceStatus.PLANNED)
            .values(status=OccurrenceStatus.CANCELLED, reason="withdrawn", done_at=now)
        )
        result.cancelled += int(getattr(done, "rowcount", 0) or 0)
    if not active:
        return result
    ids = [p.person_id for p in active]
    existing = await _existing(session, person_ids=ids, meeting_id=None, kinds=_PLANNED_KINDS)
    starts = await _gap_starts(session, ids, now=now, backfill=backfill) if backfill else {}
    wanted: list[Planned] = []
    cache: FireCache = {}
    for partner in active:
        start = starts.get(partner.person_id, now)
        wanted.extend(wanted_checkins(protocol, partner, start, now + horizon, cache))
    await _apply(session, wanted, existing, now=now, removable=existing.keys(), result=result)
    return result


async def _gap_starts(
    session: AsyncSession, person_ids: Sequence[int], *, now: datetime, backfill: timedelta
) -> dict[int, datetime]:
    """For partners whose last planned check-in is in the past: where the gap begins."""
    rows = await session.execute(
        select(Occurrence.person_id, func.max(Occurrence.due_at))
        .where(Occurrence.person_id.in_(person_ids), Occurrence.kind.in_(_PLANNED_KINDS))
        .group_by(Occurrence.person_id)
    )
    earliest = now - backfill
    return {
        person_id: max(last + timedelta(microseconds=1), earliest)
        for person_id, last in rows
        if last is not None and last < now
    }


async def reconcile_partner(
    session: AsyncSession,
    protocol: StudyProtocol,
    person_id: int,
    *,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
) -> PassResult:
    """Re-plan one partner at once (after onboarding, a settings change, resume, withdrawal).

    Their upcoming meetings are re-planned too, since a new group changes what they are
    invited to.
    """
    partners = await load_partners(session, [person_id])
    result = await reconcile_partners(session, protocol, partners, now=now, horizon=horizon)
    for meeting in await upcoming_meetings(session, now=now, horizon=horizon):
        await _reconcile_meeting(
            session, protocol, meeting, partners, now=now, result=result, only=person_id
        )
    return result


async def schedule_changed(
    session: AsyncSession, protocol: StudyProtocol, person_id: int, *, horizon_days: int
) -> PassResult:
    """Re-plan a partner now, after something that moves their schedule changed."""
    return await reconcile_partner(
        session, protocol, person_id, now=utcnow(), horizon=timedelta(days=horizon_days)
    )


async def upcoming_meetings(
    session: AsyncSession, *, now: datetime, horizon: timedelta = DEFAULT_HORIZON
) -> list[Meeting]:
    """Meetings not cancelled that end after ``now`` and start within ``horizon``.

    (One that is over needs no planning: what was planned for it is the due runner's.)
    """
    rows = await session.execute(
        select(Meeting)
        .where(
            Meeting.cancelled_at.is_(None),
            Meeting.starts_at < now + horizon,
            Meeting.starts_at > now - LONGEST_MEETING,
        )
        .order_by(Meeting.starts_at)
    )
    return [m for m in rows.scalars() if meeting_end(m) > now]


async def _reconcile_meeting(
    session: AsyncSession,
    protocol: StudyProtocol,
    meeting: Meeting,
    partners: Sequence[PartnerSchedule],
    *,
    now: datetime,
    result: PassResult,
    only: int | None = None,
) -> None:
    existing = await _existing(
        session,
        person_ids=[only] if only is not None else None,
        meeting_id=meeting.id,
        kinds=(OccurrenceKind.MEETING_REMINDER, OccurrenceKind.MEETING_FOLLOWUP),
    )
    wanted: list[Planned] = []
    for partner in partners:
        if only is not None and partner.person_id != only:
            continue
        if meeting_end(meeting) <= now:
            continue  # over: what was planned is left to the due runner
        wanted.extend(wanted_for_meeting(protocol, meeting, partner, now=now, existing=existing))
    if meeting_end(meeting) <= now:
        return
    await _apply(session, wanted, existing, now=now, removable=existing.keys(), result=result)


async def replan_meeting(
    session: AsyncSession, protocol: StudyProtocol, meeting: Meeting, *, now: datetime
) -> PassResult:
    """(Re)plan a meeting's reminders and follow-ups for everyone it is for.

    Call after creating or changing it (bump ``meeting.version`` first when its time moves, so
    that reminders already sent for the old time do not stop new ones). Planned rows of older
    versions, and of people no longer invited, are removed while still in the future.
    """
    result = PassResult()
    await session.flush()
    if meeting.cancelled_at is not None:
        result.cancelled = await cancel_meeting_occurrences(session, meeting, now=now)
        return result
    partners = await load_partners(session)
    await _reconcile_meeting(session, protocol, meeting, partners, now=now, result=result)
    return result


async def cancel_meeting_occurrences(
    session: AsyncSession, meeting: Meeting, *, now: datetime
) -> int:
    """Cancel every planned reminder and follow-up of ``meeting``; returns how many."""
    done = await session.execute(
        update(Occurrence)
        .where(Occurrence.meeting_id == meeting.id, Occurrence.status == OccurrenceStatus.PLANNED)
        .values(status=OccurrenceStatus.CANCELLED, reason="meeting_cancelled", done_at=now)
    )
    return int(getattr(done, "rowcount", 0) or 0)


async def plan_all(
    session: AsyncSession,
    protocol: StudyProtocol,
    *,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    chunk: int = 2000,
    backfill: timedelta | None = None,
) -> PassResult:
    """One full planning pass over every partner and every upcoming meeting (``backfill``:
    see :func:`reconcile_partners`)."""
    result = PassResult()
    partners = await load_partners(session)
    for start in range(0, len(partners), chunk):
        await reconcile_partners(
            session,
            protocol,
            partners[start : start + chunk],
            now=now,
            horizon=horizon,
            result=result,
            backfill=backfill,
        )
    for meeting in await upcoming_meetings(session, now=now, horizon=horizon):
        await _reconcile_meeting(session, protocol, meeting, partners, now=now, result=result)
    return result
