"""The schedule end to end: the running bot, the sandbox Telegram, the real database, and
the one clock moved forward through each due moment (``Scheduler.advance_to``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.schedule.planner import weekly_times
from storage.clock import utcnow
from storage.models import (
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    PartnerProfile,
    Person,
    PersonStatus,
    Role,
)
from tests.factories import enrol
from tests.support import buttons, running_companion, settle, weekly_only_protocol

LONDON = ZoneInfo("Europe/London")
WEEKLY_ONLY = weekly_only_protocol()
SUNDAY = 6
PARTNER = 9301
CONNECTOR = 9302
WEEKLY_INTRO = "Here is your weekly check-in"


def next_sunday_at(hhmm: str, after: datetime | None = None) -> datetime:
    """The next Sunday at ``hhmm`` London time after ``after`` (default now)."""
    start = after or utcnow()
    [when] = weekly_times(SUNDAY, hhmm, "Europe/London", start, start + timedelta(days=8))[:1]
    return when


async def weekly_statuses(database, person_id: int) -> list[tuple[str, str | None]]:
    """(status, reason) of the partner's weekly check-in occurrences that fell due."""
    async with database.sessions() as session:
        rows = await session.execute(
            select(Occurrence.status, Occurrence.reason)
            .where(
                Occurrence.person_id == person_id,
                Occurrence.kind == OccurrenceKind.CHECKIN,
                Occurrence.checkin_key == "weekly",
                Occurrence.status != OccurrenceStatus.PLANNED,
            )
            .order_by(Occurrence.due_at)
        )
        return [(status, reason) for status, reason in rows]


def texts(sandbox, chat_id: int) -> list[str]:
    """Everything the bot sent to a chat, as text."""
    return [m.get("text") or m.get("caption") or "" for m in sandbox.sent_to(chat_id)]


async def test_the_weekly_checkin_arrives_when_its_time_comes_and_is_answered(
    sandbox, database, database_url, tmp_path
):
    sam = await enrol(database, PARTNER, checkin_weekday=SUNDAY)
    async with running_companion(sandbox, database_url, tmp_path, WEEKLY_ONLY) as companion:
        user = sandbox.user(PARTNER, "Sam")
        sunday = next_sunday_at("18:00")
        await companion.scheduler.advance_to(sunday - timedelta(minutes=1))
        await settle(companion, sandbox)
        assert texts(sandbox, PARTNER) == [], "nothing before its time"
        await companion.scheduler.advance_to(sunday + timedelta(seconds=1))
        await settle(companion, sandbox)
        [first] = sandbox.sent_to(PARTNER)
        assert WEEKLY_INTRO in first["text"]
        assert [label for label, _ in buttons(first)][:5] == ["1", "2", "3", "4", "5"]
        user.press(first, dict(buttons(first))["4"])
        await settle(companion, sandbox)
        assert "views count" in texts(sandbox, PARTNER)[-1], "the next question follows"
        # A day later: it was answered, so no reminder.
        await companion.scheduler.advance_to(sunday + timedelta(days=1, minutes=5))
        await settle(companion, sandbox)
        assert not any("gentle reminder" in t for t in texts(sandbox, PARTNER))
    assert await weekly_statuses(database, sam.id) == [(OccurrenceStatus.DONE, None)]


async def test_an_unanswered_checkin_gets_one_reminder_through_the_sandbox(
    sandbox, database, database_url, tmp_path
):
    await enrol(database, PARTNER, checkin_weekday=SUNDAY)
    async with running_companion(sandbox, database_url, tmp_path, WEEKLY_ONLY) as companion:
        sandbox.user(PARTNER, "Sam")
        sunday = next_sunday_at("18:00")
        await companion.scheduler.advance_to(sunday + timedelta(days=1, hours=1))
        await settle(companion, sandbox)
        got = texts(sandbox, PARTNER)
        assert len(got) == 2, got
        assert WEEKLY_INTRO in got[0] and "gentle reminder" in got[1]
        # The reminder repeats the question with its buttons, so one tap answers it.
        assert [label for label, _ in buttons(sandbox.sent_to(PARTNER)[1])][:5] == [
            "1",
            "2",
            "3",
            "4",
            "5",
        ]


async def test_quiet_hours_hold_the_checkin_until_they_end(
    sandbox, database, database_url, tmp_path
):
    sam = await enrol(database, PARTNER, checkin_weekday=SUNDAY)
    async with database.transaction() as session:
        await session.execute(
            update(PartnerProfile)
            .where(PartnerProfile.person_id == sam.id)
            .values(quiet_start="17:00", quiet_end="18:30")
        )
    async with running_companion(sandbox, database_url, tmp_path, WEEKLY_ONLY) as companion:
        sandbox.user(PARTNER, "Sam")
        sunday = next_sunday_at("18:00")
        await companion.scheduler.advance_to(sunday + timedelta(minutes=29))
        await settle(companion, sandbox)
        assert texts(sandbox, PARTNER) == [], "nothing in quiet hours"
        await companion.scheduler.advance_to(sunday + timedelta(minutes=31))
        await settle(companion, sandbox)
        [first] = texts(sandbox, PARTNER)
        assert WEEKLY_INTRO in first


async def test_pause_then_resume_through_the_sandbox(sandbox, database, database_url, tmp_path):
    sam = await enrol(database, PARTNER, checkin_weekday=SUNDAY)
    async with running_companion(sandbox, database_url, tmp_path, WEEKLY_ONLY) as companion:
        user = sandbox.user(PARTNER, "Sam")
        user.send_command("pause")
        [choose] = await sandbox.wait_for_messages(PARTNER, 1, timeout=10)
        user.press(choose, "pause:7")
        await sandbox.wait_for_messages(PARTNER, 2, timeout=10)
        await settle(companion, sandbox)
        before = len(texts(sandbox, PARTNER))
        sunday = next_sunday_at("18:00")
        await companion.scheduler.advance_to(sunday + timedelta(minutes=5))
        await settle(companion, sandbox)
        assert len(texts(sandbox, PARTNER)) == before, "paused: nothing is sent"
        user.send_command("resume")
        await settle(companion, sandbox)
        resumed = len(texts(sandbox, PARTNER))
        await companion.scheduler.advance_to(sunday + timedelta(days=7, minutes=5))
        await settle(companion, sandbox)
        after = texts(sandbox, PARTNER)[resumed:]
        assert any(WEEKLY_INTRO in t for t in after), after
    statuses = await weekly_statuses(database, sam.id)
    assert statuses[0] == (OccurrenceStatus.MISSED, "paused")
    assert statuses[1] == (OccurrenceStatus.DONE, None)


async def test_a_partner_who_blocked_the_bot_is_not_prompted_again(
    sandbox, database, database_url, tmp_path
):
    sam = await enrol(database, PARTNER, checkin_weekday=SUNDAY)
    await enrol(database, CONNECTOR, role=Role.CONNECTOR, name="Priya")
    async with running_companion(sandbox, database_url, tmp_path, WEEKLY_ONLY) as companion:
        user = sandbox.user(PARTNER, "Sam")
        sandbox.user(CONNECTOR, "Priya")
        user.block()
        await settle(companion, sandbox)
        assert any("can no longer be reached" in t for t in texts(sandbox, CONNECTOR))
        sunday = next_sunday_at("18:00")
        await companion.scheduler.advance_to(sunday + timedelta(minutes=1))
        await settle(companion, sandbox)
        async with database.sessions() as session:
            person = await session.get(Person, sam.id)
            assert person is not None and person.status == PersonStatus.UNREACHABLE
        assert texts(sandbox, PARTNER) == []
        await companion.scheduler.advance_to(sunday + timedelta(days=7, minutes=1))
        await settle(companion, sandbox)
    statuses = await weekly_statuses(database, sam.id)
    # The bot heard of the block at once (Telegram's my_chat_member update), so nothing was
    # even tried; without that update, the first send's 403 does the same (test_outbox).
    assert statuses == [(OccurrenceStatus.MISSED, "unreachable")] * 2


async def test_a_checkin_the_partner_asked_for_is_not_cut_off_by_the_weekly_one(
    sandbox, database, database_url, tmp_path
):
    """Sam types /checkin two minutes before the weekly check-in is due and has not pressed
    anything yet when it falls due: the weekly one waits, and Sam's first answer counts (it
    used to close Sam's check-in under them, and the press found it closed)."""
    sam = await enrol(database, PARTNER, checkin_weekday=SUNDAY)
    async with running_companion(sandbox, database_url, tmp_path, WEEKLY_ONLY) as companion:
        user = sandbox.user(PARTNER, "Sam")
        sunday = next_sunday_at("18:00")
        await companion.scheduler.advance_to(sunday - timedelta(minutes=2))
        user.send_command("checkin")
        await settle(companion, sandbox)
        [asked] = sandbox.sent_to(PARTNER)
        await companion.scheduler.advance_to(sunday + timedelta(seconds=1))
        await settle(companion, sandbox)
        assert len(sandbox.sent_to(PARTNER)) == 1, "the weekly one does not cut in"
        user.press(asked, dict(buttons(asked))["4"])
        await settle(companion, sandbox)
        assert "views count" in texts(sandbox, PARTNER)[-1], "the answer counted"
        async with database.sessions() as session:
            weekly = (
                await session.execute(
                    select(Occurrence.status, Occurrence.reason).where(
                        Occurrence.person_id == sam.id,
                        Occurrence.checkin_key == "weekly",
                        Occurrence.due_at <= sunday + timedelta(hours=1),
                    )
                )
            ).all()
        assert weekly == [(OccurrenceStatus.PLANNED, "busy")], "it waits its turn"
