"""The meetings service: reading typed times, creating, changing and cancelling meetings, who is
invited, answers, attendance and the involvement log, the reminder message, drafts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import meetings
from bot.calendar.words import day_words, time_words
from bot.meetings import MeetingError, ResponseOutcome
from bot.protocol import load_protocol
from bot.schedule.planner import meeting_end
from prompts import CALLBACK_DATA_LIMIT, DEFAULT_STUDY_PATH, Prompts
from storage.clock import utcnow
from storage.models import (
    AuditEvent,
    Involvement,
    Meeting,
    MeetingResponse,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    OutboxMessage,
    PartnerProfile,
    PersonStatus,
    Role,
)
from tests.factories import enrol
from tests.support import mark_reminded

PROTOCOL = load_protocol(DEFAULT_STUDY_PATH)
PROMPTS = Prompts()
LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday


def start(text: str, zone: ZoneInfo = LONDON, now: datetime = NOW) -> datetime:
    return meetings.parse_start(PROMPTS, text, zone, now=now)


# -- reading typed dates and times -----------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("3 Dec 18:00", datetime(2026, 12, 3, 18, tzinfo=UTC)),
        ("2026-12-03 18:00", datetime(2026, 12, 3, 18, tzinfo=UTC)),
        ("2026-12-03T18:00", datetime(2026, 12, 3, 18, tzinfo=UTC)),
        ("03/12/2026 6pm", datetime(2026, 12, 3, 18, tzinfo=UTC)),
        ("3/12 6:30 pm", datetime(2026, 12, 3, 18, 30, tzinfo=UTC)),
        ("Thursday 3rd December at 6.30pm", datetime(2026, 12, 3, 18, 30, tzinfo=UTC)),
        ("Dec 3, 2026 10am", datetime(2026, 12, 3, 10, tzinfo=UTC)),
        ("tomorrow 10:30am", datetime(2026, 11, 21, 10, 30, tzinfo=UTC)),
        ("12 Jan 9:15", datetime(2027, 1, 12, 9, 15, tzinfo=UTC)),  # no year: the next one
        ("1 July 2027 18:00", datetime(2027, 7, 1, 17, tzinfo=UTC)),  # summer time in London
        ("  3   SEPT   2027   12pm ", datetime(2027, 9, 3, 11, tzinfo=UTC)),
    ],
)
def test_parse_start_reads_the_usual_ways_of_writing_a_time(typed: str, expected: datetime):
    assert start(typed) == expected


def test_parse_start_reads_in_the_given_zone():
    assert start("3 Dec 18:00", ZoneInfo("America/New_York")) == datetime(
        2026, 12, 3, 23, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("next week", "bad_date"),
        ("3 Dec", "bad_date"),  # no time
        ("3 Dec 18", "bad_date"),  # a bare number is not a time
        ("31 Feb 2027 18:00", "bad_date"),
        ("3 Smarch 18:00", "bad_date"),
        ("3 Dec 25:00", "bad_date"),
        ("3 Dec 13pm", "bad_date"),
        ("", "bad_date"),
        ("1" * 200, "bad_date"),
        ("2026-11-19 18:00", "past"),
        ("20/11/2026 11:00", "past"),
        ("28 Mar 2027 01:30", "gap"),  # the clocks go forward in London
    ],
)
def test_parse_start_refuses_kindly(typed: str, reason: str):
    with pytest.raises(MeetingError) as caught:
        start(typed)
    assert caught.value.reason == reason


def test_words_for_lengths_and_offsets():
    assert meetings.length_words(PROMPTS, 60) == "1 hour"
    assert meetings.length_words(PROMPTS, 90) == "1 hour 30 minutes"
    assert meetings.length_words(PROMPTS, 120) == "2 hours"
    assert meetings.length_words(PROMPTS, 45) == "45 minutes"
    assert meetings.offset_words(PROMPTS, 48) == "2 days"
    assert meetings.offset_words(PROMPTS, 24) == "1 day"
    assert meetings.offset_words(PROMPTS, 2) == "2 hours"
    assert meetings.reminder_offsets_words(PROMPTS, PROTOCOL) == ["2 days", "2 hours"]


def test_answer_callbacks_round_trip_and_refuse_forgeries():
    assert meetings.parse_callback("mt:12:yes") == (12, "yes")
    assert meetings.parse_callback(meetings.callback_data(7, "maybe")) == (7, "maybe")
    for bad in [None, "", "mt:12", "mt:x:yes", "mt:12:perhaps", "mt:-1:no", "ci:1:a:b",
                "mt:12:yes:1", "mt:1234567890123:yes", "mt:" + "9" * 70 + ":no"]:  # fmt: skip
        assert meetings.parse_callback(bad) is None, bad


# -- the database side -----------------------------------------------------------------------


def in_days(days: int, hour: int = 10) -> datetime:
    """``hour`` o'clock London time, ``days`` from today (so a follow-up's day is not over)."""
    day = (utcnow() + timedelta(days=days)).astimezone(LONDON).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=LONDON).astimezone(UTC)


async def make_meeting(database, *, days: int = 10, groups=("north",), **values) -> int:
    async with database.transaction() as session:
        meeting = await meetings.create_meeting(
            session,
            PROTOCOL,
            title=values.pop("title", "Team meeting"),
            starts_at=values.pop("starts_at", in_days(days)),
            length_minutes=values.pop("length_minutes", 90),
            place=values.pop("place", "Room 2"),
            groups=list(groups),
            **values,
        )
        return meeting.id


async def the_followup(session, meeting_id: int) -> Occurrence:
    """The meeting's one planned reflection afterwards."""
    found = await session.execute(
        select(Occurrence).where(
            Occurrence.meeting_id == meeting_id,
            Occurrence.kind == OccurrenceKind.MEETING_FOLLOWUP,
        )
    )
    return found.scalar_one()


async def test_invitees_are_active_onboarded_partners_of_the_groups(database):
    north = await enrol(database, 101, group="north")
    south = await enrol(database, 102, group="south")
    await enrol(database, 103, group="north", onboarded=False)
    await enrol(database, 104, group="north", status=PersonStatus.WITHDRAWN)
    await enrol(database, 105, group="north", status=PersonStatus.UNREACHABLE)
    await enrol(database, 106, role=Role.CONNECTOR, group=None)
    for_north = await make_meeting(database, groups=["north"])
    for_all = await make_meeting(database, groups=[])
    async with database.sessions() as session:
        first = await session.get(Meeting, for_north)
        everyone = await session.get(Meeting, for_all)
        assert [i.person.id for i in await meetings.invitees(session, first)] == [north.id]
        assert [i.person.id for i in await meetings.invitees(session, everyone)] == [
            north.id,
            south.id,
        ]
        assert await meetings.count_invitees(session, ["south"]) == 1
        assert await meetings.count_invitees(session, []) == 2


async def test_create_checks_everything_and_plans_reminders(database):
    sam = await enrol(database, 201, group="north")
    kim = await enrol(database, 202, group="south")
    with pytest.raises(MeetingError, match="unknown_group"):
        await make_meeting(database, groups=["nowhere"])
    with pytest.raises(MeetingError, match="past"):
        await make_meeting(database, starts_at=utcnow() - timedelta(minutes=1))
    with pytest.raises(MeetingError, match="title"):
        await make_meeting(database, title="   ")
    with pytest.raises(MeetingError, match="place"):
        await make_meeting(database, place="x" * 501)
    with pytest.raises(MeetingError, match="length"):
        await make_meeting(database, length_minutes=0)
    meeting_id = await make_meeting(database, groups=["north"], created_by=None)
    async with database.sessions() as session:
        meeting = await session.get(Meeting, meeting_id)
        assert meeting is not None
        assert (meeting.version, meeting.groups, meeting.timezone) == (
            1,
            ["north"],
            "Europe/London",
        )
        planned = (
            (await session.execute(select(Occurrence).where(Occurrence.meeting_id == meeting_id)))
            .scalars()
            .all()
        )
        assert {o.person_id for o in planned} == {sam.id}, "only the north group is invited"
        assert kim.id not in {o.person_id for o in planned}
        kinds = sorted(o.kind for o in planned)
        assert kinds.count(OccurrenceKind.MEETING_REMINDER) == 2
        assert kinds.count(OccurrenceKind.MEETING_FOLLOWUP) == 1
        audit = (await session.execute(select(AuditEvent))).scalars().all()
        created = [a for a in audit if a.action == "meeting.created"]
        assert len(created) == 1 and created[0].detail["meeting_id"] == meeting_id
        assert "Team meeting" not in str(created[0].detail)


async def test_answers_are_kept_and_refused_when_they_cannot_count(database):
    sam = await enrol(database, 301, group="north")
    kim = await enrol(database, 302, group="south")
    staff = await enrol(database, 303, role=Role.CONNECTOR, group=None)
    meeting_id = await make_meeting(database, groups=["north"])
    async with database.transaction() as session:
        meeting = await session.get(Meeting, meeting_id)
        assert meeting is not None
        record = meetings.record_response
        assert (await record(session, meeting, sam, "yes")).outcome == ResponseOutcome.RECORDED
        assert (await record(session, meeting, sam, "yes")).outcome == ResponseOutcome.UNCHANGED
        changed = await record(session, meeting, sam, "maybe")
        assert changed == meetings.ResponseResult(ResponseOutcome.CHANGED, "maybe")
        assert (await record(session, meeting, kim, "yes")).outcome == ResponseOutcome.NOT_INVITED
        assert (await record(session, meeting, staff, "yes")).outcome == ResponseOutcome.INVALID
        assert (await record(session, meeting, sam, "perhaps")).outcome == ResponseOutcome.INVALID
        later = meeting.starts_at + timedelta(minutes=1)
        past = await record(session, meeting, sam, "no", now=later)
        assert past.outcome == ResponseOutcome.PAST
        assert await meetings.answer_of(session, meeting_id, sam.id) == "maybe"
        assert await meetings.answer_counts(session, meeting_id) == {"yes": 0, "no": 0, "maybe": 1}
        coming = await meetings.upcoming_for_partner(
            session, sam, await session.get_one(PartnerProfile, sam.id), now=utcnow()
        )
        assert [(m.id, a) for m, a in coming] == [(meeting_id, "maybe")]
        await meetings.cancel_meeting(session, PROTOCOL, PROMPTS, meeting)
        assert (await record(session, meeting, sam, "no")).outcome == ResponseOutcome.CANCELLED
    async with database.sessions() as session:
        rows = (await session.execute(select(MeetingResponse))).scalars().all()
        assert [(r.person_id, r.answer) for r in rows] == [(sam.id, "maybe")]


async def outbox_rows(database, kind: str = "meeting") -> list[OutboxMessage]:
    async with database.sessions() as session:
        result = await session.execute(
            select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )
        return list(result.scalars())


async def test_a_change_tells_those_reminded_and_replans(database):
    sam = await enrol(database, 401, group="north", name="Sam", timezone="Europe/Madrid")
    ali = await enrol(database, 402, group="north", name="Ali")
    meeting_id = await make_meeting(database, groups=["north"])
    await mark_reminded(database, meeting_id, sam.id)
    async with database.transaction() as session:
        meeting = await session.get_one(Meeting, meeting_id)
        with pytest.raises(MeetingError, match="nothing"):
            await meetings.change_meeting(session, PROTOCOL, PROMPTS, meeting, place="Room 2")
        new_start = meeting.starts_at + timedelta(days=1, hours=1)
        result = await meetings.change_meeting(
            session, PROTOCOL, PROMPTS, meeting, starts_at=new_start, place="Room 5"
        )
        assert result.changed == ["start", "place"] and result.notified == 1
        assert meeting.version == 2
    [notice] = await outbox_rows(database)
    assert notice.person_id == sam.id and notice.chat_id == 401
    assert notice.idempotency_key.startswith(f"mt:{meeting_id}:v2:changed:")
    text = notice.payload["text"]
    assert "Room 5" in text and "Hi Sam" in text
    local = new_start.astimezone(ZoneInfo("Europe/Madrid"))
    assert time_words(PROMPTS, local.time()) in text, "in the partner's own zone"
    data = [b["callback_data"] for row in notice.payload["reply_markup"]["inline_keyboard"]
            for b in row]  # fmt: skip
    assert data == [f"mt:{meeting_id}:yes", f"mt:{meeting_id}:no", f"mt:{meeting_id}:maybe"]
    async with database.sessions() as session:
        planned = (
            (
                await session.execute(
                    select(Occurrence).where(
                        Occurrence.meeting_id == meeting_id,
                        Occurrence.status == OccurrenceStatus.PLANNED,
                    )
                )
            )
            .scalars()
            .all()
        )
        assert planned and all(":v2:" in o.key for o in planned), "old version's plans removed"
        assert {o.person_id for o in planned} == {sam.id, ali.id}
        changed = (
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.action == "meeting.changed")
                )
            )
            .scalars()
            .one()
        )
        assert changed.detail["changed"] == ["start", "place"]

    # A title-only change keeps the version; the notice still has a key of its own.
    async with database.transaction() as session:
        meeting = await session.get_one(Meeting, meeting_id)
        await meetings.change_meeting(session, PROTOCOL, PROMPTS, meeting, title="Big meeting")
        assert meeting.version == 2
    assert len({r.idempotency_key for r in await outbox_rows(database)}) == 2


async def test_a_late_change_is_not_announced_twice(database):
    """Moved to 40 hours away: the planner makes a reminder due now for everyone; those told of
    the change have had their news, so theirs is settled, and the others still get it."""
    sam = await enrol(database, 431, group="north")
    ali = await enrol(database, 432, group="north")
    meeting_id = await make_meeting(database, starts_at=utcnow() + timedelta(hours=30))
    await mark_reminded(database, meeting_id, sam.id)
    async with database.transaction() as session:
        meeting = await session.get_one(Meeting, meeting_id)
        await meetings.change_meeting(
            session, PROTOCOL, PROMPTS, meeting, starts_at=utcnow() + timedelta(hours=40)
        )
    async with database.sessions() as session:
        due_now = (
            await session.execute(
                select(Occurrence).where(
                    Occurrence.meeting_id == meeting_id,
                    Occurrence.kind == OccurrenceKind.MEETING_REMINDER,
                    Occurrence.key.like("%:v2:%"),
                    Occurrence.due_at <= utcnow() + timedelta(minutes=1),
                )
            )
        ).scalars()
        by_person = {o.person_id: o for o in due_now}
    assert (by_person[sam.id].status, by_person[sam.id].reason) == ("done", "change_notice")
    assert by_person[ali.id].status == OccurrenceStatus.PLANNED


async def test_notices_wait_for_the_end_of_quiet_hours(database):
    sam = await enrol(database, 451, group="north")  # quiet 21:00 to 08:00, London
    ali = await enrol(database, 452, group="north")
    async with database.transaction() as session:
        profile = await session.get_one(PartnerProfile, ali.id)
        profile.quiet_start = profile.quiet_end = "00:00"  # no quiet hours
    meeting_id = await make_meeting(database, groups=["north"])
    for person in (sam, ali):
        await mark_reminded(database, meeting_id, person.id)
    late_evening = in_days(1, hour=23)
    async with database.transaction() as session:
        meeting = await session.get_one(Meeting, meeting_id)
        await meetings.change_meeting(
            session, PROTOCOL, PROMPTS, meeting, place="Room 7", now=late_evening
        )
    by_person = {row.person_id: row for row in await outbox_rows(database)}
    assert by_person[sam.id].next_attempt_at == in_days(2, hour=8)
    assert by_person[ali.id].next_attempt_at < late_evening, "no quiet hours: at once"
    assert meetings.after_quiet_hours(PROTOCOL, None, late_evening) is None


async def test_cancel_tells_those_reminded_and_stops_the_plan(database):
    sam = await enrol(database, 501, group="north")
    await enrol(database, 502, group="north")
    meeting_id = await make_meeting(database, groups=["north"])
    await mark_reminded(database, meeting_id, sam.id)
    async with database.transaction() as session:
        meeting = await session.get_one(Meeting, meeting_id)
        assert (
            await meetings.cancel_meeting(session, PROTOCOL, PROMPTS, meeting, by_person_id=None)
            == 1
        )
        with pytest.raises(MeetingError, match="cancelled"):
            await meetings.cancel_meeting(session, PROTOCOL, PROMPTS, meeting)
        with pytest.raises(MeetingError, match="cancelled"):
            await meetings.change_meeting(session, PROTOCOL, PROMPTS, meeting, title="x")
    [note] = await outbox_rows(database)
    assert note.person_id == sam.id
    assert note.idempotency_key == f"mt:{meeting_id}:v1:cancelled:{sam.id}"
    assert "cancel" in note.payload["text"] or "called off" in note.payload["text"]
    assert "reply_markup" not in note.payload
    async with database.sessions() as session:
        statuses = (
            await session.execute(
                select(Occurrence.status).where(
                    Occurrence.meeting_id == meeting_id, Occurrence.key.not_like("test:%")
                )
            )
        ).scalars()
        assert set(statuses) == {OccurrenceStatus.CANCELLED}


async def test_attendance_keeps_hours_and_brings_back_a_skipped_followup(database):
    sam = await enrol(database, 601, group="north")
    meeting_id = await make_meeting(database, groups=["north"], length_minutes=120)
    async with database.transaction() as session:
        meeting = await session.get_one(Meeting, meeting_id)
        with pytest.raises(MeetingError, match="not_started"):
            await meetings.mark_attendance(session, meeting, sam, True, None)
    async with database.transaction() as session:
        meeting = await session.get_one(Meeting, meeting_id)
        end = meeting_end(meeting)
        followup = await the_followup(session, meeting_id)
        followup.status, followup.reason = OccurrenceStatus.SKIPPED, "not_coming"
        later = end + timedelta(minutes=5)
        assert followup.window_ends_at > later
        involvement = await meetings.mark_attendance(session, meeting, sam, True, 99, now=later)
        assert (involvement.attended, involvement.minutes) == (True, 120)
        assert involvement.occurred_at == meeting.starts_at and involvement.kind == "meeting"
        assert (followup.status, followup.reason) == (OccurrenceStatus.PLANNED, None)
        again = await meetings.mark_attendance(session, meeting, sam, False, 99, now=later)
        assert again.id == involvement.id and (again.attended, again.minutes) == (False, 0)
        sheet = await meetings.attendance_sheet(session, meeting)
        assert [(r.person_id, r.attended) for r in sheet] == [(sam.id, False)]
    async with database.sessions() as session:
        rows = (await session.execute(select(Involvement))).scalars().all()
        assert len(rows) == 1
        marks = (
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.action == "meeting.attendance")
                )
            )
            .scalars()
            .all()
        )
        assert [m.detail["attended"] for m in marks] == [True, False]
        assert marks[0].actor_person_id == 99


async def test_a_skipped_followup_past_its_window_stays_skipped(database):
    sam = await enrol(database, 701, group="north")
    meeting_id = await make_meeting(database, groups=["north"])
    async with database.transaction() as session:
        meeting = await session.get_one(Meeting, meeting_id)
        followup = await the_followup(session, meeting_id)
        followup.status, followup.reason = OccurrenceStatus.SKIPPED, "not_coming"
        too_late = followup.window_ends_at + timedelta(minutes=1)
        await meetings.mark_attendance(session, meeting, sam, True, None, now=too_late)
        assert followup.status == OccurrenceStatus.SKIPPED


def test_reminder_message_speaks_in_the_partners_zone_with_three_buttons():
    meeting = Meeting(
        id=42,
        title="Team <meeting>",
        starts_at=utcnow() + timedelta(hours=48),
        length_minutes=90,
        timezone="Europe/London",
        place="Room 2",
        groups=[],
    )
    tokyo = ZoneInfo("Asia/Tokyo")
    text, markup = meetings.reminder_message(
        PROMPTS, meeting, name="Sam", zone=tokyo, answer="yes", hours_before=48
    )
    local = meeting.starts_at.astimezone(tokyo)
    assert time_words(PROMPTS, local.time()) in text
    assert day_words(PROMPTS, meeting.starts_at, tokyo) in text
    assert "in 2 days" in text and "1 hour 30 minutes" in text and "Room 2" in text
    assert "Team &lt;meeting&gt;" in text
    assert "You said: I&#39;ll be there" in text
    labels = [b.text for row in markup.inline_keyboard for b in row]
    assert labels == ["\u2713 I'll be there", "I can't make it", "Not sure yet"]
    for row in markup.inline_keyboard:
        for button in row:
            assert len((button.callback_data or "").encode()) <= CALLBACK_DATA_LIMIT
    # Sent late (after downtime), it says how long there really is.
    meeting.starts_at = utcnow() + timedelta(hours=5)
    late, _ = meetings.reminder_message(
        PROMPTS, meeting, name="", zone=tokyo, answer=None, hours_before=48
    )
    assert "in 5 hours" in late and "Can you come?" in late
    meeting.starts_at = utcnow() + timedelta(minutes=30)
    soon, _ = meetings.reminder_message(
        PROMPTS, meeting, name="Sam", zone=tokyo, answer=None, hours_before=0
    )
    assert "in less than an hour" in soon


async def test_drafts_are_one_per_person_and_forgotten_after_a_day(database):
    staff = await enrol(database, 801, role=Role.CONNECTOR, group=None)
    now = utcnow()
    async with database.transaction() as session:
        draft = await meetings.start_draft(session, staff.id, "groups", {"groups": []}, now=now)
        meetings.save_draft(draft, "title", now=now, groups=["north"])
    async with database.transaction() as session:
        draft = await meetings.get_draft(session, staff.id, now=now + timedelta(hours=2))
        assert draft is not None and (draft.step, draft.data["groups"]) == ("title", ["north"])
        again = await meetings.start_draft(session, staff.id, "groups", {}, now=now)
        assert again.data == {}
    async with database.transaction() as session:
        assert await meetings.get_draft(session, staff.id, now=now + timedelta(days=2)) is None
    async with database.transaction() as session:
        assert await meetings.drop_draft(session, staff.id) is False
