"""Meetings end to end through the sandbox: a connector plans one with /meeting, partners answer
with buttons and see /meetings, a change or a cancellation tells those reminded, attendance is
kept (and brings back a skipped reflection), and the guards hold."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot import meetings
from bot.protocol import load_protocol
from prompts import DEFAULT_STUDY_PATH
from storage.clock import utcnow
from storage.models import (
    AuditEvent,
    Involvement,
    Meeting,
    MeetingResponse,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    PartnerProfile,
    Person,
    StaffDraft,
)
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import (
    buttons,
    count,
    data_for,
    mark_reminded,
    running_companion,
    settle,
)

PROTOCOL = load_protocol(DEFAULT_STUDY_PATH)
LONDON = ZoneInfo("Europe/London")
SAM, ALI, KIM = 8301, 8302, 8303
TICK = "\u2713 "
ROOT = Path(__file__).resolve().parents[1]


def london(days: int, hour: int = 18) -> datetime:
    """``hour`` o'clock London time, ``days`` days from now (UTC)."""
    day = (utcnow() + timedelta(days=days)).astimezone(LONDON).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=LONDON).astimezone(UTC)


def typed(moment: datetime) -> str:
    """``moment`` the way a connector would type it: ``3 Dec 18:00`` (London time)."""
    local = moment.astimezone(LONDON)
    return f"{local.day} {local:%b} {local:%H:%M}"


async def partner(database, user_id: int, name: str, group: str = "north") -> Person:
    """A partner with no weekly check-in (the schedule sends nothing of its own during these
    tests) and no quiet hours (notices go out whatever the time of day the tests run)."""
    person = await enrol(database, user_id, name=name, group=group, checkin_weekday=None)
    async with database.transaction() as session:
        profile = await session.get_one(PartnerProfile, person.id)
        profile.quiet_start = profile.quiet_end = "00:00"
    return person


async def make_meeting(database, *, days: int = 10, groups=("north",), title="Team meeting"):
    async with database.transaction() as session:
        meeting = await meetings.create_meeting(
            session,
            PROTOCOL,
            title=title,
            starts_at=london(days),
            length_minutes=90,
            place="Room 2",
            groups=list(groups),
        )
        return meeting.id


def toast(sandbox, update) -> str | None:
    answer = sandbox.callback_answers.get(update["callback_query"]["id"])
    assert answer is not None, "every button press is answered"
    return answer.get("text")


def current(sandbox, chat_id: int, message) -> dict:
    """The message as it is now (edits applied)."""
    return next(m for m in sandbox.sent_to(chat_id) if m["message_id"] == message["message_id"])


async def test_a_connector_plans_a_meeting_step_by_step(sandbox, database, database_url, tmp_path):
    sam = await partner(database, SAM, "Sam", "north")
    kim = await partner(database, KIM, "Kim", "south")
    when = london(9)
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        staff = sandbox.user(CONNECTOR_ID, "Priya")

        shift = 0  # messages from partners relayed to the connector meanwhile

        async def step(number: int) -> dict:
            total = number + shift
            return (await sandbox.wait_for_messages(CONNECTOR_ID, total, timeout=10))[-1]

        staff.send_command("meeting")
        menu = await step(1)
        assert "No meetings are planned yet" in menu["text"]
        staff.press(menu, data_for(menu, "New meeting"))
        groups = await step(2)
        assert "Who is it for?" in groups["text"]
        too_soon = staff.press(groups, "mc:gd")
        staff.press(groups, "mc:g:north")
        await settle(companion, sandbox)
        assert "Choose at least one group" in toast(sandbox, too_soon)
        assert (TICK + "North West", "mc:g:north") in buttons(
            current(sandbox, CONNECTOR_ID, groups)
        )
        staff.press(groups, "mc:gd")
        assert "What is the meeting called?" in (await step(3))["text"]

        # A partner's text meanwhile is not taken as the connector's answer, and /meeting is
        # not for partners.
        sandbox.user(SAM, "Sam").send_command("meeting")
        [not_for_sam] = await sandbox.wait_for_messages(SAM, 1, timeout=10)
        assert "only for the study team" in not_for_sam["text"]
        sandbox.user(SAM, "Sam").send_text("Room 2")
        [_, fallback] = await sandbox.wait_for_messages(SAM, 2, timeout=10)
        assert "What is the meeting called?" not in fallback["text"]
        assert (await step(4))["text"].startswith("💬 Sam"), "it is relayed to the connector"
        shift = 1

        staff.send_text("Autumn   team meeting")
        ask_start = await step(4)
        assert "UK (London) time" in ask_start["text"]
        staff.send_text("sometime next week")
        assert "could not read" in (await step(5))["text"]
        staff.send_text("1 Jan 2020 18:00")
        assert "already passed" in (await step(6))["text"]
        staff.send_text(typed(when))
        ask_length = await step(7)
        assert [label for label, _ in buttons(ask_length)] == [
            "1 hour",
            "1 hour 30 minutes",
            "2 hours",
            "Cancel",
        ]
        staff.send_text("Room 2")  # a button question: typing gets a pointer to the buttons
        assert "use the buttons" in (await step(8))["text"]
        staff.press(ask_length, "mc:len:45")  # not offered: out of date, nothing changes
        staff.press(ask_length, "mc:len:90")
        assert "Where is it?" in (await step(9))["text"]
        staff.send_text("Room 2, Town Hall")
        summary = await step(10)
        assert "Autumn team meeting" in summary["text"]
        assert "North West" in summary["text"] and "South West" not in summary["text"]
        assert "1 partner will get reminders 2 days and 2 hours before" in summary["text"]
        staff.press(summary, data_for(summary, "Create it"))
        created = await step(11)
        assert "is planned for" in created["text"]
        stale = staff.press(summary, "mc:ok")  # a double tap after it was made
        await settle(companion, sandbox)
        assert "out of date" in toast(sandbox, stale)
        assert len(sandbox.sent_to(CONNECTOR_ID)) == 11 + shift

    async with database.sessions() as session:
        [meeting] = (await session.execute(select(Meeting))).scalars().all()
        assert (meeting.title, meeting.place, meeting.groups) == (
            "Autumn team meeting",
            "Room 2, Town Hall",
            ["north"],
        )
        assert (meeting.starts_at, meeting.length_minutes, meeting.timezone) == (
            when,
            90,
            "Europe/London",
        )
        assert meeting.created_by_person_id is not None
        planned = (
            await session.execute(
                select(Occurrence.person_id).where(Occurrence.meeting_id == meeting.id)
            )
        ).scalars()
        assert set(planned) == {sam.id}
        assert kim.id != sam.id
        assert (await session.execute(select(StaffDraft))).scalars().all() == []
    assert await count(database, AuditEvent, AuditEvent.action == "meeting.created") == 1


async def test_partners_answer_with_buttons_and_see_their_meetings(
    sandbox, database, database_url, tmp_path
):
    sam = await partner(database, SAM, "Sam", "north")
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        user = sandbox.user(SAM, "Sam")
        user.send_command("meetings")
        [nothing] = await sandbox.wait_for_messages(SAM, 1, timeout=10)
        assert "no meetings planned" in nothing["text"]

        first = await make_meeting(database, days=10, groups=["north"], title="North meeting")
        second = await make_meeting(database, days=12, groups=[], title="Everyone meeting")
        other = await make_meeting(database, days=11, groups=["south"], title="South meeting")
        user.send_command("meetings")
        [_, one, two] = await sandbox.wait_for_messages(SAM, 3, timeout=10)
        assert "Here are your next 2 meetings" in one["text"] and "North meeting" in one["text"]
        assert "Everyone meeting" in two["text"] and "South meeting" not in two["text"]
        assert buttons(one) == [
            ("I'll be there", f"mt:{first}:yes"),
            ("I can't make it", f"mt:{first}:no"),
            ("Not sure yet", f"mt:{first}:maybe"),
        ]
        presses = {
            "yes": user.press(one, f"mt:{first}:yes"),
        }
        await settle(companion, sandbox)
        assert buttons(current(sandbox, SAM, one))[0][0] == TICK + "I'll be there"
        presses["no"] = user.press(one, f"mt:{first}:no")
        presses["again"] = user.press(one, f"mt:{first}:no")
        presses["maybe"] = user.press(two, f"mt:{second}:maybe")
        presses["not invited"] = user.press(two, f"mt:{other}:yes")
        presses["unknown"] = user.press(two, "mt:999999:yes")
        presses["forged"] = user.press(two, "mt:abc:yes")
        presses["bad answer"] = user.press(two, f"mt:{first}:perhaps")
        await settle(companion, sandbox)
        assert toast(sandbox, presses["yes"]) == "Lovely, see you there!"
        assert toast(sandbox, presses["no"]) == "Thank you for letting us know."
        assert toast(sandbox, presses["again"]) == "Got it, thank you."
        assert "change your answer" in toast(sandbox, presses["maybe"])
        assert "not for your group" in toast(sandbox, presses["not invited"])
        for key in ("unknown", "forged", "bad answer"):
            assert "does not work any more" in toast(sandbox, presses[key]), key
        assert buttons(current(sandbox, SAM, one))[1][0] == TICK + "I can't make it"

        user.send_command("meetings")
        [*_, one_again, two_again] = await sandbox.wait_for_messages(SAM, 5, timeout=10)
        assert "You said: I can't make it" in one_again["text"]
        assert "You said: Not sure yet" in two_again["text"]
        assert buttons(two_again)[2][0] == TICK + "Not sure yet"
        await settle(companion, sandbox)
        assert len(sandbox.sent_to(SAM)) == 5, "button presses send no extra messages"

    async with database.sessions() as session:
        rows = (await session.execute(select(MeetingResponse))).scalars().all()
        assert sorted((r.meeting_id, r.person_id, r.answer) for r in rows) == [
            (first, sam.id, "no"),
            (second, sam.id, "maybe"),
        ]


async def test_a_change_and_a_cancellation_tell_those_reminded(
    sandbox, database, database_url, tmp_path
):
    sam = await partner(database, SAM, "Sam", "north")
    await partner(database, ALI, "Ali", "north")
    meeting_id = await make_meeting(database, days=10, groups=["north"])
    await mark_reminded(database, meeting_id, sam.id)
    new_time = london(11, hour=10)
    sandbox.user(SAM, "Sam"), sandbox.user(ALI, "Ali")  # their chats with the bot exist
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        staff = sandbox.user(CONNECTOR_ID, "Priya")

        async def step(number: int) -> dict:
            return (await sandbox.wait_for_messages(CONNECTOR_ID, number, timeout=10))[-1]

        staff.send_command("meeting")
        menu = await step(1)
        assert "Team meeting" in menu["text"]
        staff.press(menu, f"mc:m:{meeting_id}")
        manage = await step(2)
        assert "0 coming" in manage["text"]
        staff.press(manage, data_for(manage, "Change the time"))
        assert "new date and time" in (await step(3))["text"]
        staff.send_text(typed(new_time))
        confirm = await step(4)
        assert "The 1 partner who already know" in confirm["text"]
        staff.press(confirm, data_for(confirm, "Yes, change it"))
        changed = await step(5)
        assert "is now on" in changed["text"] and "1 partner who knew" in changed["text"]

        [notice] = await sandbox.wait_for_messages(SAM, 1, timeout=10)
        assert "has changed" in notice["text"] and "10am" in notice["text"]
        assert [d for _, d in buttons(notice)] == [
            f"mt:{meeting_id}:yes",
            f"mt:{meeting_id}:no",
            f"mt:{meeting_id}:maybe",
        ]
        sandbox.user(SAM, "Sam").press(notice, f"mt:{meeting_id}:yes")
        await settle(companion, sandbox)
        assert sandbox.sent_to(ALI) == [], "Ali was never reminded, so is not told"

        staff.send_command("meeting")
        menu = await step(6)
        staff.press(menu, f"mc:m:{meeting_id}")
        manage = await step(7)
        assert "1 coming" in manage["text"]
        staff.press(manage, data_for(manage, "Cancel the meeting"))
        confirm = await step(8)
        assert "kind note" in confirm["text"]
        staff.press(confirm, f"mc:xy:{meeting_id}")
        assert "is cancelled" in (await step(9))["text"]
        [_, note] = await sandbox.wait_for_messages(SAM, 2, timeout=10)
        assert "called off" in note["text"] and not buttons(note)

        late = sandbox.user(SAM, "Sam").press(notice, f"mt:{meeting_id}:no")
        again = staff.press(confirm, f"mc:xy:{meeting_id}")
        await settle(companion, sandbox)
        assert "cancelled" in toast(sandbox, late)
        assert "already cancelled" in toast(sandbox, again)
        assert len(sandbox.sent_to(SAM)) == 2
        assert sandbox.sent_to(ALI) == []

    async with database.sessions() as session:
        meeting = await session.get_one(Meeting, meeting_id)
        assert meeting.cancelled_at is not None and meeting.version == 2
        assert meeting.starts_at == new_time
        answer = await meetings.answer_of(session, meeting_id, sam.id)
        assert answer == "yes", "a button of a cancelled meeting changes nothing"
        actions = (await session.execute(select(AuditEvent.action))).scalars().all()
        assert {"meeting.changed", "meeting.cancelled"} <= set(actions)


async def test_marking_attendance_keeps_hours_and_brings_back_the_reflection(
    sandbox, database, database_url, tmp_path
):
    kim = await partner(database, KIM, "Kim", "north")
    sam = await partner(database, SAM, "Sam", "north")
    started = utcnow() - timedelta(hours=3)
    sandbox.user(KIM, "Kim"), sandbox.user(SAM, "Sam")
    async with database.transaction() as session:
        meeting = Meeting(
            title="Spring meeting",
            starts_at=started,
            length_minutes=60,
            timezone="Europe/London",
            place="Room 2",
            groups=["north"],
        )
        session.add(meeting)
        await session.flush()
        meeting_id = meeting.id
        session.add(
            Occurrence(
                key=f"mt:{meeting_id}:v1:after:{kim.id}",
                kind=OccurrenceKind.MEETING_FOLLOWUP,
                person_id=kim.id,
                meeting_id=meeting_id,
                checkin_key="after_meeting",
                due_at=started + timedelta(hours=1),
                window_ends_at=utcnow() + timedelta(days=1),
                status=OccurrenceStatus.SKIPPED,
                reason="not_coming",
                done_at=started + timedelta(hours=1),
            )
        )
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        staff = sandbox.user(CONNECTOR_ID, "Priya")
        staff.send_command("meeting")
        [menu] = await sandbox.wait_for_messages(CONNECTOR_ID, 1, timeout=10)
        assert "Spring meeting" in menu["text"]
        staff.press(menu, data_for(menu, "Who came"))
        [_, sheet] = await sandbox.wait_for_messages(CONNECTOR_ID, 2, timeout=10)
        assert "Who came to" in sheet["text"] and "1 hour" in sheet["text"]
        assert [label for label, _ in buttons(sheet)] == ["Kim", "Sam", "Done"]
        came = staff.press(sheet, f"mc:at:{meeting_id}:{kim.id}")
        await settle(companion, sandbox)
        assert toast(sandbox, came) == "Marked as came."
        assert buttons(current(sandbox, CONNECTOR_ID, sheet))[0][0] == TICK + "Kim"
        staff.press(sheet, f"mc:at:{meeting_id}:{sam.id}")
        await settle(companion, sandbox)
        undo = staff.press(sheet, f"mc:at:{meeting_id}:{sam.id}")
        forged = staff.press(sheet, f"mc:at:{meeting_id}:{CONNECTOR_ID}")
        await settle(companion, sandbox)
        assert toast(sandbox, undo) == "Marked as did not come."
        assert "out of date" in toast(sandbox, forged)
        labels = [label for label, _ in buttons(current(sandbox, CONNECTOR_ID, sheet))]
        assert labels == [TICK + "Kim", "Sam", "Done"]
        done = staff.press(sheet, "mc:done")
        await settle(companion, sandbox)
        assert toast(sandbox, done) == "Saved."
        assert buttons(current(sandbox, CONNECTOR_ID, sheet)) == []

    async with database.sessions() as session:
        rows = (await session.execute(select(Involvement).order_by(Involvement.person_id))).all()
        kept = {r.Involvement.person_id: r.Involvement for r in rows}
        assert (kept[kim.id].attended, kept[kim.id].minutes) == (True, 60)
        assert (kept[sam.id].attended, kept[sam.id].minutes) == (False, 0)
        assert kept[kim.id].occurred_at == started and kept[kim.id].kind == "meeting"
        followup = (
            await session.execute(
                select(Occurrence).where(Occurrence.kind == OccurrenceKind.MEETING_FOLLOWUP)
            )
        ).scalar_one()
        # Planned again (the scheduler may already have opened it, or held it for quiet hours).
        assert followup.status in (OccurrenceStatus.PLANNED, OccurrenceStatus.DONE)
        assert followup.reason != "not_coming"
    assert await count(database, AuditEvent, AuditEvent.action == "meeting.attendance") == 3


# -- the command line ----------------------------------------------------------------------------


def _cli(args: list[str], database_url: str):
    from typer.testing import CliRunner

    from bot.tools.cli import app

    env: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("TELEGRAM_", "COMPANION_"))
    }
    env["DATABASE_URL"] = database_url
    return CliRunner().invoke(app, ["meeting", *args], env=env, catch_exceptions=False)


async def cli(*args: str, database_url: str):
    """``companion meeting ...`` in this process (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(_cli, list(args), database_url)


async def test_the_command_line_adds_lists_changes_and_cancels(
    sandbox, database, database_url, tmp_path
):
    sam = await partner(database, SAM, "Sam", "north")
    await partner(database, KIM, "Kim", "south")
    start = typed(london(10))
    added = await cli(
        "add", "--title", "Planning day", "--start", start, "--place", "Room 2",
        "--group", "north", "--json", database_url=database_url,
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    made = json.loads(added.stdout)
    assert (made["title"], made["groups"], made["length_minutes"]) == (
        "Planning day",
        ["north"],
        90,
    )
    assert made["timezone"] == "Europe/London" and made["invitees"] == 1
    assert made["starts_at"] == london(10).isoformat()
    text = await cli(
        "add", "--title", "Online catch-up", "--start", "2099-06-01 09:30", "--length", "60",
        "--timezone", "Asia/Kolkata", "--place", "https://meet.example.org/x",
        database_url=database_url,
    )  # fmt: skip
    assert text.exit_code == 0, text.stderr
    assert "Meeting 2 added: Online catch-up, 2099-06-01 09:30 Asia/Kolkata" in text.stdout
    assert "for everyone" in text.stdout and "2 partners will get reminders" in text.stdout

    listed = await cli("list", "--json", database_url=database_url)
    assert listed.exit_code == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [made["id"], 2]
    assert rows[0]["answers"] == {"yes": 0, "no": 0, "maybe": 0} and rows[0]["attended"] == 0
    plain = await cli("list", database_url=database_url)
    assert "Planning day" in plain.stdout and "North West" in plain.stdout

    await mark_reminded(database, made["id"], sam.id)
    new_start = london(12, hour=11)
    changed = await cli(
        "change", str(made["id"]), "--start", typed(new_start), "--place", "Room 9",
        database_url=database_url,
    )  # fmt: skip
    assert changed.exit_code == 0, changed.stderr
    assert "changed: --start, --place" in changed.stdout
    assert "1 partner who knew about it" in changed.stdout
    cancelled = await cli("cancel", str(made["id"]), database_url=database_url)
    assert cancelled.exit_code == 0, cancelled.stderr
    assert "is cancelled" in cancelled.stdout and "1 partner" in cancelled.stdout

    listed = json.loads((await cli("list", "--json", database_url=database_url)).stdout)
    assert [r["id"] for r in listed] == [2], "a cancelled meeting is not upcoming"
    everything = json.loads(
        (await cli("list", "--all", "--json", database_url=database_url)).stdout
    )
    first = next(r for r in everything if r["id"] == made["id"])
    assert first["cancelled"] and first["place"] == "Room 9" and first["version"] == 2
    assert first["starts_at"] == new_start.isoformat()

    # Sam, who was reminded, is told about both once the bot runs.
    sandbox.user(SAM, "Sam")
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        [change_notice, cancel_note] = await sandbox.wait_for_messages(SAM, 2, timeout=10)
        await settle(companion, sandbox)
    assert "Room 9" in change_notice["text"] and "11am" in change_notice["text"]
    assert "called off" in cancel_note["text"]


async def test_the_command_line_explains_each_problem_in_one_sentence(database, database_url):
    async def problem(*args: str) -> tuple[int, str]:
        result = await cli(*args, database_url=database_url)
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1, result.stderr
        return result.exit_code, result.stderr

    place = ("--title", "T", "--place", "P")
    code, said = await problem("add", *place, "--start", "3 Dec 18:00", "--group", "west")
    assert code == 2 and "There is no group called west" in said and "north" in said
    code, said = await problem("add", *place, "--start", "next week")
    assert code == 2 and "could not be read" in said
    code, said = await problem("add", *place, "--start", "2020-01-01 10:00")
    assert code == 2 and "is in the past in Europe/London" in said
    code, said = await problem("add", *place, "--start", "2099-01-01 10:00", "--timezone", "Mars")
    assert code == 2 and "Mars is not a time zone" in said
    code, said = await problem("add", *place, "--start", "2099-01-01 10:00", "--length", "0")
    assert code == 2 and "length must be between 1 and" in said
    code, said = await problem("cancel", "77")
    assert code == 2 and "There is no meeting with the id 77" in said
    code, said = await problem("change", "77")
    assert code == 2 and "Nothing to change" in said
    code, said = await problem("change", "77", "--title", "New")
    assert code == 2 and "no meeting with the id 77" in said
    meeting_id = await make_meeting(database)
    code, said = await problem("change", str(meeting_id), "--start", "2020-01-01 10:00")
    assert code == 2 and "in the past" in said
    assert (await cli("cancel", str(meeting_id), database_url=database_url)).exit_code == 0
    code, said = await problem("cancel", str(meeting_id))
    assert code == 1 and "already cancelled" in said
    code, said = await problem("change", str(meeting_id), "--title", "New")
    assert code == 1 and "is cancelled" in said
    assert await count(database, Meeting) == 1


async def test_the_companion_command_has_meeting_list(database, database_url, tmp_path):
    """The real entry point, once: ``python -m bot meeting list``."""
    await make_meeting(database, title="Entry point meeting")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "COMPANION_"))}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "meeting", "list"],
        env={**clean, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Entry point meeting" in result.stdout
