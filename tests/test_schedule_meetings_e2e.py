"""Meetings on the schedule, end to end: reminders at the protocol's offsets sent by the
scheduler through the sandbox, answers kept, a change after the reminders, the reflection
after the meeting for those who came, and a restart after the bot was off across a meeting
and a check-in."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot import meetings
from bot.schedule.planner import weekly_times
from prompts import Prompts
from storage.clock import CLOCK, utcnow
from storage.models import (
    Meeting,
    MeetingResponse,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
)
from tests.factories import enrol
from tests.support import buttons, running_companion, settle, weekly_only_protocol

LONDON = ZoneInfo("Europe/London")
PROTOCOL = weekly_only_protocol()
PROMPTS = Prompts()
AMIRA, BEN = 9401, 9402
TITLE = "Planning day"


def next_local(weekday: int, hhmm: str, days_ahead: int = 3) -> datetime:
    """The first ``weekday`` at ``hhmm`` London time at least ``days_ahead`` days from now."""
    start = utcnow() + timedelta(days=days_ahead)
    [when] = weekly_times(weekday, hhmm, "Europe/London", start, start + timedelta(days=8))[:1]
    return when


def texts(sandbox, chat_id: int) -> list[str]:
    """What the bot sent to a chat."""
    return [m.get("text") or "" for m in sandbox.sent_to(chat_id)]


async def occurrence_states(database, kind: str) -> list[tuple[int, str, str | None]]:
    """(person, status, reason) of every occurrence of ``kind``, by due time."""
    async with database.sessions() as session:
        rows = await session.execute(
            select(Occurrence.person_id, Occurrence.status, Occurrence.reason)
            .where(Occurrence.kind == kind)
            .order_by(Occurrence.due_at, Occurrence.person_id)
        )
        return [(p, s, r) for p, s, r in rows]


async def add_meeting(database, starts_at: datetime) -> int:
    """A 90-minute meeting for everyone, as a connector would arrange it."""
    async with database.transaction() as session:
        meeting = await meetings.create_meeting(
            session,
            PROTOCOL,
            title=TITLE,
            starts_at=starts_at,
            length_minutes=90,
            place="The library",
            timezone="Europe/London",
        )
        return meeting.id


async def test_reminders_answers_a_change_and_the_reflection_after(
    sandbox, database, database_url, tmp_path
):
    amira = await enrol(database, AMIRA, name="Amira", checkin_weekday=None)
    ben = await enrol(database, BEN, name="Ben", group="south", checkin_weekday=None)
    start = next_local(3, "14:00")  # a Thursday afternoon, at least three days away
    async with running_companion(sandbox, database_url, tmp_path, PROTOCOL) as companion:
        user = sandbox.user(AMIRA, "Amira")
        sandbox.user(BEN, "Ben")
        meeting_id = await add_meeting(database, start)
        companion.scheduler.request_plan()

        # Two days before: both are reminded, with the three answer buttons.
        await companion.scheduler.advance_to(start - timedelta(hours=48, minutes=-1))
        await settle(companion, sandbox)
        for chat in (AMIRA, BEN):
            [reminder] = sandbox.sent_to(chat)
            assert TITLE in reminder["text"] and "2pm" in reminder["text"]
            assert [label for label, _ in buttons(reminder)] == [
                "I'll be there",
                "I can't make it",
                "Not sure yet",
            ]
        [reminder] = sandbox.sent_to(AMIRA)
        user.press(reminder, dict(buttons(reminder))["I'll be there"])
        await settle(companion, sandbox)
        async with database.sessions() as session:
            answers = (await session.execute(select(MeetingResponse.answer))).scalars().all()
        assert answers == ["yes"]

        # The meeting moves an hour later after the first reminders: both are told.
        async with database.transaction() as session:
            meeting = await session.get(Meeting, meeting_id)
            assert meeting is not None
            await meetings.change_meeting(
                session,
                PROTOCOL,
                PROMPTS,
                meeting,
                starts_at=start + timedelta(hours=1),
            )
        companion.sender.wake()
        await settle(companion, sandbox)
        for chat in (AMIRA, BEN):
            assert "3pm" in texts(sandbox, chat)[-1], texts(sandbox, chat)[-1]
        told = {chat: len(sandbox.sent_to(chat)) for chat in (AMIRA, BEN)}

        # Two hours before the new time: the second reminder, Amira's answer still ticked.
        new_start = start + timedelta(hours=1)
        await companion.scheduler.advance_to(new_start - timedelta(hours=2, minutes=-1))
        await settle(companion, sandbox)
        for chat in (AMIRA, BEN):
            assert len(sandbox.sent_to(chat)) == told[chat] + 1, texts(sandbox, chat)
        second = sandbox.sent_to(AMIRA)[-1]
        assert any(label.startswith("\u2713") for label, _ in buttons(second))

        # After it ends, the reflection goes to Amira, who said she would come, not to Ben.
        await companion.scheduler.advance_to(new_start + timedelta(minutes=91))
        await settle(companion, sandbox)
        assert "meeting" in texts(sandbox, AMIRA)[-1].lower()
        assert len(sandbox.sent_to(BEN)) == told[BEN] + 1
    followups = await occurrence_states(database, OccurrenceKind.MEETING_FOLLOWUP)
    assert sorted(followups) == sorted(
        [
            (amira.id, OccurrenceStatus.DONE, None),
            (ben.id, OccurrenceStatus.SKIPPED, "not_coming"),
        ]
    )


async def test_after_downtime_the_checkin_goes_once_and_the_late_reminder_is_missed(
    sandbox, database, database_url, tmp_path
):
    # Her check-in day is four days from today: its last one was three days ago, so nothing
    # of hers is due before the meeting's two-day reminder, whatever day the test runs.
    day = (utcnow().astimezone(LONDON).weekday() + 4) % 7
    amira = await enrol(database, AMIRA, name="Amira", checkin_weekday=day)
    sunday_18 = next_local(day, "18:00")  # called Sunday below
    meeting_start = sunday_18 - timedelta(hours=6)  # Sunday 12:00
    async with running_companion(sandbox, database_url, tmp_path, PROTOCOL) as companion:
        sandbox.user(AMIRA, "Amira")
        await add_meeting(database, meeting_start)
        companion.scheduler.request_plan()
        await companion.scheduler.advance_to(meeting_start - timedelta(hours=47))
        await settle(companion, sandbox)
        assert len(sandbox.sent_to(AMIRA)) == 1, "the two-day reminder"

    # The bot is off from Friday until Sunday 18:30: across the two-hour reminder, the
    # meeting itself and the 18:00 check-in.
    CLOCK.advance_to(sunday_18 + timedelta(minutes=30))
    async with running_companion(sandbox, database_url, tmp_path, PROTOCOL) as companion:
        await companion.scheduler.pass_once()
        await settle(companion, sandbox)
        await companion.scheduler.pass_once()
        await settle(companion, sandbox)
    got = texts(sandbox, AMIRA)
    assert len(got) == 2 and "weekly check-in" in got[1], got
    reminders = await occurrence_states(database, OccurrenceKind.MEETING_REMINDER)
    assert reminders == [
        (amira.id, OccurrenceStatus.DONE, None),
        (amira.id, OccurrenceStatus.MISSED, "late"),
    ]
    async with database.sessions() as session:
        weekly = (
            await session.execute(
                select(Occurrence.status).where(
                    Occurrence.kind == OccurrenceKind.CHECKIN,
                    Occurrence.due_at == sunday_18,
                )
            )
        ).scalar_one()
    assert weekly == OccurrenceStatus.DONE
