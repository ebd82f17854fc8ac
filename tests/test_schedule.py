"""The schedule as data: planning, daylight saving, time zones, lateness, quiet hours, pause.

These run the real planner and due runner on the real database, with time-machine setting the
calendar and the one clock stepping through each due moment (``Scheduler.advance_to``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select, update

from bot.app import build_scheduler
from bot.protocol import load_protocol
from bot.schedule.planner import plan_all
from bot.schedule.scheduler import Scheduler
from bot.settings import DEFAULT_STUDY_PATH
from prompts import Prompts
from storage.clock import CLOCK, utcnow
from storage.db import Database
from storage.models import (
    Checkin,
    CheckinStatus,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    OutboxMessage,
    PartnerProfile,
    Person,
    PersonStatus,
)
from tests.factories import enrol

PROTOCOL = load_protocol(DEFAULT_STUDY_PATH)
PROMPTS = Prompts(PROTOCOL.study.locale)
SUNDAY = 6
LONDON = ZoneInfo("Europe/London")


def at(day: str, hhmm: str, zone: ZoneInfo = LONDON) -> datetime:
    """An aware local time."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=zone)


@pytest.fixture
def calendar() -> Iterator[time_machine.Coordinates]:
    """Freeze the calendar; tests move it with ``.move_to`` or the clock."""
    with time_machine.travel(datetime(2027, 3, 10, 12, 0, tzinfo=UTC), tick=False) as machine:
        yield machine


def scheduler(database: Database) -> Scheduler:
    """A scheduler driven by hand (no background loop)."""
    return build_scheduler(database, PROTOCOL, PROMPTS, horizon=timedelta(days=14))


async def opened(database: Database, person_id: int) -> list[Checkin]:
    """The check-ins opened for a partner, oldest first."""
    async with database.sessions() as session:
        rows = await session.execute(
            select(Checkin)
            .where(Checkin.person_id == person_id, Checkin.opened_at.is_not(None))
            .order_by(Checkin.opened_at)
        )
        return list(rows.scalars())


async def occurrences(database: Database, person_id: int, kind: str) -> list[Occurrence]:
    """A partner's occurrences of one kind, by due time."""
    async with database.sessions() as session:
        rows = await session.execute(
            select(Occurrence)
            .where(Occurrence.person_id == person_id, Occurrence.kind == kind)
            .order_by(Occurrence.due_at)
        )
        return list(rows.scalars())


async def settled_checkins(database: Database, person_id: int) -> list[Occurrence]:
    """A partner's check-in occurrences that are no longer only planned."""
    return [
        o
        for o in await occurrences(database, person_id, OccurrenceKind.CHECKIN)
        if o.status != OccurrenceStatus.PLANNED
    ]


def weekly(items: list[Checkin]) -> list[Checkin]:
    """Only the weekly check-ins."""
    return [c for c in items if c.checkin_key == "weekly"]


@pytest.mark.parametrize(
    ("start", "weeks", "changes"),
    [
        # Spring forward: New York 14 March, London 28 March; Sydney falls back 4 April.
        (datetime(2027, 3, 1, 12, tzinfo=UTC), 6, "spring"),
        # Sydney springs forward 3 October; London falls back 31 October, New York 7 November.
        (datetime(2027, 9, 20, 12, tzinfo=UTC), 7, "autumn"),
    ],
)
async def test_weekly_1800_arrives_at_1800_local_across_daylight_saving_in_three_zones(
    database: Database, start: datetime, weeks: int, changes: str
) -> None:
    zones = ["Europe/London", "America/New_York", "Australia/Sydney"]
    with time_machine.travel(start, tick=False):
        people = [
            await enrol(database, 100 + i, timezone=zone, checkin_weekday=SUNDAY)
            for i, zone in enumerate(zones)
        ]
        runner = scheduler(database)
        await runner.advance_to(start + timedelta(weeks=weeks))
        for person, zone_name in zip(people, zones, strict=True):
            zone = ZoneInfo(zone_name)
            got = weekly(await opened(database, person.id))
            local = [c.opened_at.astimezone(zone) for c in got if c.opened_at]
            assert len(local) == weeks, (zone_name, changes, local)
            assert all(t.weekday() == SUNDAY and (t.hour, t.minute) == (18, 0) for t in local), (
                zone_name,
                local,
            )
            days = [t.date() for t in local]
            assert len(set(days)) == len(days), "never twice on one day"
            assert all((b - a) == timedelta(days=7) for a, b in itertools.pairwise(days)), (
                "once a week, every week"
            )
            offsets = {t.utcoffset() for t in local}
            assert len(offsets) == 2, f"the run crossed a daylight-saving change in {zone_name}"
            # It arrives when it opens: the first question went into the outbox at 18:00 local.
            async with database.sessions() as session:
                sends = (
                    await session.execute(
                        select(OutboxMessage.next_attempt_at)
                        .where(OutboxMessage.person_id == person.id)
                        .where(OutboxMessage.idempotency_key.like("ci:%:ask:%"))
                        .order_by(OutboxMessage.id)
                    )
                ).scalars()
                first_asks = [s.astimezone(zone) for s in sends]
            assert [(t.hour, t.minute) for t in first_asks[:weeks]] == [(18, 0)] * weeks


async def test_planning_twice_and_across_a_change_never_duplicates(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    person = await enrol(database, 200, checkin_weekday=SUNDAY)
    now = utcnow()
    async with database.transaction() as session:
        first = await plan_all(session, PROTOCOL, now=now, horizon=timedelta(days=30))
    async with database.transaction() as session:
        again = await plan_all(session, PROTOCOL, now=now, horizon=timedelta(days=30))
    assert first.added >= 4 and again.added == again.moved == again.removed == 0
    planned = await occurrences(database, person.id, OccurrenceKind.CHECKIN)
    # 14, 21, 28 March and 4 April (London changes on the 28th), plus the monthly on 1 April.
    weekly_local = [o.due_at.astimezone(LONDON) for o in planned if o.checkin_key == "weekly"]
    assert [t.strftime("%d %H:%M") for t in weekly_local] == [
        "14 18:00",
        "21 18:00",
        "28 18:00",
        "04 18:00",
    ]
    monthly = [o for o in planned if o.checkin_key == "monthly"]
    assert [o.due_at.astimezone(LONDON).strftime("%d %B %H:%M") for o in monthly] == [
        "01 April 18:00"
    ]


async def test_a_changed_slot_moves_what_is_planned(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    person = await enrol(database, 201, checkin_weekday=SUNDAY)
    async with database.transaction() as session:
        await plan_all(session, PROTOCOL, now=utcnow())
        await session.execute(
            update(PartnerProfile)
            .where(PartnerProfile.person_id == person.id)
            .values(checkin_weekday=2, checkin_time="14:00")
        )
    async with database.transaction() as session:
        result = await plan_all(session, PROTOCOL, now=utcnow())
    assert result.removed == 2 and result.added == 2
    planned = await occurrences(database, person.id, OccurrenceKind.CHECKIN)
    weekly_local = [o.due_at.astimezone(LONDON) for o in planned if o.checkin_key == "weekly"]
    assert [(t.weekday(), t.hour) for t in weekly_local] == [(2, 14), (2, 14)]


async def test_an_unanswered_checkin_gets_one_gentle_reminder_then_closes_as_missed(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    person = await enrol(database, 202, checkin_weekday=SUNDAY)
    runner = scheduler(database)
    sunday = at("2027-03-14", "18:00")
    await runner.advance_to(sunday + timedelta(days=3))
    [checkin] = weekly(await opened(database, person.id))
    assert checkin.status == CheckinStatus.MISSED and checkin.reason == "unanswered"
    nudges = await occurrences(database, person.id, OccurrenceKind.CHECKIN_NUDGE)
    assert [(n.status, n.due_at.astimezone(LONDON).strftime("%a %H:%M")) for n in nudges] == [
        (OccurrenceStatus.DONE, "Mon 18:00")
    ]
    async with database.sessions() as session:
        texts = (
            await session.execute(
                select(OutboxMessage.payload)
                .where(OutboxMessage.person_id == person.id)
                .order_by(OutboxMessage.id)
            )
        ).scalars()
        messages = [p["text"] for p in texts]
    assert len(messages) == 2, "the check-in, then exactly one reminder, then nothing"
    assert "gentle reminder" in messages[1] and "Tuesday" in messages[1]


async def test_an_answered_checkin_gets_no_reminder(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    from bot.partners import checkins

    person = await enrol(database, 203, checkin_weekday=SUNDAY)
    runner = scheduler(database)
    await runner.advance_to(at("2027-03-14", "18:05"))
    [checkin] = weekly(await opened(database, person.id))
    async with database.transaction() as session:
        found = await session.get(Person, person.id)
        assert found is not None
        await checkins.record_choice(
            session, PROTOCOL, PROMPTS, found, f"ci:{checkin.id}:confidence:4", now=utcnow()
        )
    await runner.advance_to(at("2027-03-16", "19:00"))
    [nudge] = await occurrences(database, person.id, OccurrenceKind.CHECKIN_NUDGE)
    assert (nudge.status, nudge.reason) == (OccurrenceStatus.SKIPPED, "answered")
    [checkin] = weekly(await opened(database, person.id))
    assert checkin.status == CheckinStatus.EXPIRED, "partly answered: kept, closed quietly"


async def test_quiet_hours_hold_a_checkin_until_they_end_within_its_window(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    person = await enrol(database, 204, checkin_weekday=SUNDAY)
    late = await enrol(database, 205, checkin_weekday=SUNDAY)
    async with database.transaction() as session:
        await session.execute(
            update(PartnerProfile)
            .where(PartnerProfile.person_id == person.id)
            .values(quiet_start="17:00", quiet_end="18:30")
        )
        # Quiet until the next morning: past the end of the day, so it cannot wait.
        await session.execute(
            update(PartnerProfile)
            .where(PartnerProfile.person_id == late.id)
            .values(quiet_start="17:00", quiet_end="09:00")
        )
    runner = scheduler(database)
    await runner.advance_to(at("2027-03-14", "23:59"))
    [checkin] = weekly(await opened(database, person.id))
    assert checkin.opened_at is not None
    assert checkin.opened_at.astimezone(LONDON).strftime("%H:%M") == "18:30"
    assert weekly(await opened(database, late.id)) == []
    [missed] = await settled_checkins(database, late.id)
    assert (missed.status, missed.reason) == (OccurrenceStatus.MISSED, "quiet_hours")


async def test_pause_and_a_blocked_bot_are_respected_when_due_not_when_planned(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    paused = await enrol(database, 206, checkin_weekday=SUNDAY)
    blocked = await enrol(database, 207, checkin_weekday=SUNDAY)
    runner = scheduler(database)
    async with database.transaction() as session:
        await plan_all(session, PROTOCOL, now=utcnow())
        # Both change after planning: the rows were already there.
        await session.execute(
            update(PartnerProfile)
            .where(PartnerProfile.person_id == paused.id)
            .values(paused_until=at("2027-03-18", "12:00"))
        )
        await session.execute(
            update(Person).where(Person.id == blocked.id).values(status=PersonStatus.UNREACHABLE)
        )
    await runner.advance_to(at("2027-03-21", "19:00"))
    for person, reason, later in ((paused, "paused", True), (blocked, "unreachable", False)):
        items = [
            o for o in await settled_checkins(database, person.id) if o.checkin_key == "weekly"
        ]
        assert (items[0].status, items[0].reason) == (OccurrenceStatus.MISSED, reason)
        resumed = [o for o in items[1:] if o.status == OccurrenceStatus.DONE]
        assert bool(resumed) is later, "after the pause ends the next one goes out again"


async def test_after_downtime_what_is_in_its_window_goes_once_and_the_rest_is_missed(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    on_time = await enrol(database, 208, checkin_weekday=SUNDAY)
    runner = scheduler(database)
    async with database.transaction() as session:
        await plan_all(session, PROTOCOL, now=utcnow())
    # The bot is off from before Sunday 14 March 18:00 until 21:00 the same day: still in
    # its window (the end of the day). Then off again from Sunday 21st 17:00 to Monday.
    CLOCK.advance_to(at("2027-03-14", "20:00"))
    first = await runner.pass_once()
    assert first.done == 1
    again = await runner.pass_once()
    assert again.done == 0, "sent once"
    CLOCK.advance_to(at("2027-03-22", "07:00"))
    await runner.pass_once()
    items = [o for o in await settled_checkins(database, on_time.id) if o.checkin_key == "weekly"]
    assert [(o.status, o.reason) for o in items] == [
        (OccurrenceStatus.DONE, None),
        (OccurrenceStatus.MISSED, "late"),
    ]
    async with database.sessions() as session:
        count = (
            await session.execute(
                select(func.count())
                .select_from(Checkin)
                .where(Checkin.person_id == on_time.id, Checkin.checkin_key == "weekly")
            )
        ).scalar_one()
    assert count == 1, "no stale prompt after the second gap"


async def test_a_withdrawn_partner_has_nothing_left_planned(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    person = await enrol(database, 209, checkin_weekday=SUNDAY)
    async with database.transaction() as session:
        await plan_all(session, PROTOCOL, now=utcnow())
        await session.execute(
            update(Person).where(Person.id == person.id).values(status=PersonStatus.WITHDRAWN)
        )
    runner = scheduler(database)
    await runner.advance_to(at("2027-03-15", "12:00"))
    statuses = {
        (o.status, o.reason)
        for o in await occurrences(database, person.id, OccurrenceKind.CHECKIN)
    }
    assert statuses == {(OccurrenceStatus.CANCELLED, "withdrawn")}
    assert await opened(database, person.id) == []


# -- the edges of the calendar, and things that go wrong ------------------------------------


def test_a_time_in_the_doubled_or_missing_hour_comes_once_a_week() -> None:
    from bot.schedule.planner import weekly_times

    spring = weekly_times(
        SUNDAY, "01:30", "Europe/London", at("2027-03-20", "00:00"), at("2027-04-05", "00:00")
    )
    # 28 March has no 01:30 (clocks go from 01:00 to 02:00): it comes at 02:30 instead.
    assert [t.astimezone(LONDON).strftime("%d %H:%M") for t in spring] == [
        "21 01:30",
        "28 02:30",
        "04 01:30",
    ]
    autumn = weekly_times(
        SUNDAY, "01:30", "Europe/London", at("2027-10-23", "00:00"), at("2027-11-08", "00:00")
    )
    # 31 October has 01:30 twice: only the first.
    assert [t.astimezone(LONDON).strftime("%d %H:%M %Z") for t in autumn] == [
        "24 01:30 BST",
        "31 01:30 BST",
        "07 01:30 GMT",
    ]


def test_quiet_hours_ending_in_the_doubled_hour_end_once_and_never_in_the_past() -> None:
    from bot.calendar.quiet import QuietHours, quiet_ends

    window = QuietHours(start=time(23, 0), end=time(1, 30))
    # 01:15 GMT on 31 October 2027 is the second 01:15: the end still ahead is 01:30 GMT.
    moment = datetime(2027, 10, 31, 1, 15, tzinfo=UTC)
    ends = quiet_ends(window, moment, LONDON)
    assert ends > moment and ends - moment == timedelta(minutes=15)


async def test_a_monthly_and_a_weekly_at_the_same_moment_send_one_prompt(
    database: Database,
) -> None:
    # Thursday 1 April 2027: the monthly reflection falls on the weekly check-in's day and time.
    with time_machine.travel(datetime(2027, 3, 30, 12, tzinfo=UTC), tick=False):
        person = await enrol(database, 210, checkin_weekday=3)
        await scheduler(database).advance_to(at("2027-04-01", "18:30"))
        opened_now = await opened(database, person.id)
        assert [c.checkin_key for c in opened_now] == ["monthly"]
        skipped = [
            (o.checkin_key, o.reason)
            for o in await occurrences(database, person.id, OccurrenceKind.CHECKIN)
            if o.status == OccurrenceStatus.SKIPPED
        ]
        assert skipped == [("weekly", "same_time")]


async def test_one_broken_occurrence_is_set_aside_and_the_rest_go_out(
    database: Database, calendar: time_machine.Coordinates, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.partners.checkin_occurrences import ScheduledCheckins

    broken = await enrol(database, 211, checkin_weekday=SUNDAY)
    fine = await enrol(database, 212, checkin_weekday=SUNDAY)
    original = ScheduledCheckins.fire

    async def fails_for_one(self, session, occurrence, who, *, now):  # type: ignore[no-untyped-def]
        if who.person.id == broken.id:
            raise RuntimeError("a broken occurrence")
        return await original(self, session, occurrence, who, now=now)

    monkeypatch.setattr(ScheduledCheckins, "fire", fails_for_one)
    await scheduler(database).advance_to(at("2027-03-14", "18:05"))
    assert [c.checkin_key for c in await opened(database, fine.id)] == ["weekly"]
    [failed] = await settled_checkins(database, broken.id)
    assert (failed.status, failed.reason) == (OccurrenceStatus.MISSED, "error")


async def test_after_a_withdrawal_that_deletes_data_the_next_checkin_still_goes_out(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    from bot.privacy.withdrawal import withdraw
    from bot.protocol import Withdrawal

    deleting = PROTOCOL.model_copy(update={"withdrawal": Withdrawal(data="delete")})
    first = await enrol(database, 213, checkin_weekday=SUNDAY, checkin_time="17:00")
    second = await enrol(database, 214, checkin_weekday=SUNDAY)
    runner = build_scheduler(database, deleting, PROMPTS)
    await runner.advance_to(at("2027-03-14", "17:05"))
    async with database.transaction() as session:
        found = await session.get(Person, first.id)
        assert found is not None
        await withdraw(session, found, protocol=deleting, prompts=PROMPTS, data_dir=None)
    # SQLite may give the deleted check-in's id to the next one: its messages must still go.
    await runner.advance_to(at("2027-03-14", "18:05"))
    assert len(await opened(database, second.id)) == 1
    async with database.sessions() as session:
        asks = (
            await session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.person_id == second.id)
            )
        ).scalar_one()
    assert asks == 1, "the first question of the new check-in is queued"


async def test_messages_held_for_later_do_not_hold_a_wave_back(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    from bot.transport.outbox import enqueue

    people = [await enrol(database, 220 + i, checkin_weekday=SUNDAY) for i in range(4)]
    async with database.transaction() as session:
        for i in range(20):  # change notices waiting for someone's quiet hours to end
            await enqueue(
                session,
                key=f"held:{i}",
                chat_id=230,
                text="later",
                not_before=at("2027-03-20", "09:00"),
            )
        await plan_all(session, PROTOCOL, now=utcnow())
    runner = build_scheduler(database, PROTOCOL, PROMPTS, queue_limit=10)
    runner.batch = 1  # four batches: room is checked between them
    CLOCK.advance_to(at("2027-03-14", "18:00"))
    result = await asyncio.wait_for(runner.run_due(pace=True), timeout=20)
    assert result.done == 4
    for person in people:
        assert len(weekly(await opened(database, person.id))) == 1


async def test_stopping_does_not_wait_for_a_wave_held_back_by_the_sender(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    for i in range(3):
        await enrol(database, 240 + i, checkin_weekday=SUNDAY)
    runner = build_scheduler(database, PROTOCOL, PROMPTS, queue_limit=0)
    runner.batch = 1  # nothing is sending, so after one check-in the wave waits for room
    await runner.pass_once()
    CLOCK.advance_to(at("2027-03-14", "18:00"))
    wave = asyncio.create_task(runner.pass_once())
    await asyncio.sleep(1)
    assert not wave.done(), "the wave is waiting for the sender"
    async with asyncio.timeout(5):
        async with runner.quiesced():
            pass
    result = await asyncio.wait_for(wave, 5)
    assert result.done == 1, "it stopped between batches, leaving the rest planned"


async def test_a_failed_planning_pass_is_tried_again_at_the_next_wake_up(
    database: Database, calendar: time_machine.Coordinates, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.schedule.planner

    person = await enrol(database, 250, checkin_weekday=SUNDAY)
    original = bot.schedule.planner.plan_all
    calls = 0

    async def fails_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database went away")
        return await original(*args, **kwargs)

    monkeypatch.setattr(bot.schedule.planner, "plan_all", fails_once)
    runner = scheduler(database)
    with pytest.raises(RuntimeError):
        await runner.pass_once()
    await runner.pass_once()
    assert calls == 2
    assert await occurrences(database, person.id, OccurrenceKind.CHECKIN)


async def test_a_withdrawal_under_way_holds_a_due_pass_back_and_wins(
    database: Database, database_url: str, calendar: time_machine.Coordinates
) -> None:
    """PostgreSQL runs the due pass and the withdrawal side by side: the pass waits for the
    person row, then sees the withdrawal, so no check-in is opened and the record says why."""
    if database.is_sqlite:
        pytest.skip("SQLite has one writer at a time: the two cannot overlap")
    from bot.privacy.withdrawal import withdraw

    person = await enrol(database, 212, checkin_weekday=SUNDAY)
    runner = scheduler(database)
    sunday = at("2027-03-14", "18:00")
    await runner.advance_to(sunday - timedelta(minutes=1))
    async with database.transaction() as session:
        leaving = await session.get(Person, person.id)
        assert leaving is not None
        await withdraw(
            session, leaving, protocol=PROTOCOL, prompts=PROMPTS, data_dir=None, goodbye=False
        )
        due_pass = asyncio.create_task(runner.advance_to(sunday + timedelta(minutes=1)))
        await asyncio.sleep(1.0)
        assert not due_pass.done(), "the due pass waits for the withdrawal to commit"
    await asyncio.wait_for(due_pass, 10)
    assert await opened(database, person.id) == []
    [checkin] = [
        o
        for o in await occurrences(database, person.id, OccurrenceKind.CHECKIN)
        if o.due_at == sunday
    ]
    assert (checkin.status, checkin.reason) == (OccurrenceStatus.CANCELLED, "withdrawn")


async def test_downtime_longer_than_the_horizon_is_recorded_as_missed_not_left_blank(
    database: Database, calendar: time_machine.Coordinates
) -> None:
    """Six weeks off with a two-week horizon: the four weeks beyond what was planned get rows
    too, recorded as missed, and nothing stale is sent."""
    person = await enrol(database, 213, checkin_weekday=SUNDAY)
    async with database.transaction() as session:
        await plan_all(session, PROTOCOL, now=utcnow(), horizon=timedelta(days=14))
    CLOCK.advance_to(at("2027-04-21", "12:00"))  # back on a Wednesday, six weeks later
    restarted = scheduler(database)  # a new process: its first pass fills the gap
    await restarted.pass_once()
    weekly_rows = [
        o
        for o in await occurrences(database, person.id, OccurrenceKind.CHECKIN)
        if o.checkin_key == "weekly"
    ]
    past = [o for o in weekly_rows if o.due_at < utcnow()]
    assert [o.due_at.astimezone(LONDON).strftime("%d %b") for o in past] == [
        "14 Mar",
        "21 Mar",
        "28 Mar",
        "04 Apr",
        "11 Apr",
        "18 Apr",
    ]
    assert {(o.status, o.reason) for o in past} == {(OccurrenceStatus.MISSED, "late")}
    assert any(o.status == OccurrenceStatus.PLANNED for o in weekly_rows), "and ahead as usual"
    assert weekly(await opened(database, person.id)) == [], "no stale prompt"
    again = scheduler(database)
    await again.pass_once()
    assert len(
        [
            o
            for o in await occurrences(database, person.id, OccurrenceKind.CHECKIN)
            if o.checkin_key == "weekly"
        ]
    ) == len(weekly_rows), "filling the gap twice adds nothing"
