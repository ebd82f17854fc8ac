"""Broadcasts end to end through the sandbox: /broadcast step by step, the preview, quiet
hours, the progress message and the report, cancelling mid-way, the command line with
--json, and bad input that sends nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.connector import broadcast as broadcasts
from bot.protocol import load_protocol
from bot.transport.outbox import enqueue_new
from prompts import DEFAULT_STUDY_PATH, Prompts
from storage.clock import utcnow
from storage.models import (
    AuditEvent,
    Broadcast,
    InboxStatus,
    InboxUpdate,
    OutboxMessage,
    PartnerProfile,
    PersonStatus,
    StaffDraft,
)
from storage.queries.broadcasts import delivery_counts
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import count, data_for, running_companion, wait_until

PROTOCOL = load_protocol(DEFAULT_STUDY_PATH)
ROOT = Path(__file__).resolve().parents[1]
SAM, ALI, KIM, BO, WYN, UMA = 8401, 8402, 8403, 8404, 8405, 8406


async def settle(bot, sandbox, *, within: float = 8.0) -> None:
    """Like tests.support.settle, but copies held for quiet hours may stay queued."""
    await support_settle_inbox(bot, sandbox, within=within)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        async with bot.db.sessions() as session:
            due = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.status.in_(["pending", "sending"]),
                    OutboxMessage.next_attempt_at <= utcnow(),
                )
            )
        if not due and not bot.sender._tasks:
            return
        assert loop.time() < deadline, f"{due} messages still due"
        await asyncio.sleep(0.05)


async def support_settle_inbox(bot, sandbox, *, within: float) -> None:
    """Every stored update processed and its after-commit calls made."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if sandbox.pending_updates == 0:
            pending = await count(bot.db, InboxUpdate, InboxUpdate.status == InboxStatus.PENDING)
            if pending == 0:
                break
        await asyncio.sleep(0.05)
    await bot.worker.calls_done(timeout=within)


async def partner(database, user_id: int, name: str, group: str = "north", **extra):
    """A partner (in the sandbox too) with no weekly check-in and no quiet hours (unless
    ``quiet`` is given)."""
    quiet = extra.pop("quiet", ("00:00", "00:00"))
    paused = extra.pop("paused", False)
    person = await enrol(database, user_id, name=name, group=group, checkin_weekday=None, **extra)
    partner.sandbox.user(user_id, name)
    async with database.transaction() as session:
        profile = await session.get_one(PartnerProfile, person.id)
        profile.quiet_start, profile.quiet_end = quiet
        if paused:
            profile.paused_until = utcnow() + timedelta(days=7)
    return person


@pytest.fixture(autouse=True)
def _partners_in(sandbox) -> None:
    """``partner()`` makes each partner's chat in this test's sandbox."""
    partner.sandbox = sandbox  # type: ignore[attr-defined]


def quiet_now() -> tuple[str, str]:
    """Quiet hours (London) that hold right now: from an hour ago to an hour ahead."""
    local = utcnow().astimezone(ZoneInfo("Europe/London"))
    return f"{local - timedelta(hours=1):%H:%M}", f"{local + timedelta(hours=1):%H:%M}"


def texts(sandbox, chat_id: int) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in sandbox.sent_to(chat_id)]


async def test_a_connector_broadcasts_to_a_group_and_sees_the_report(
    sandbox, database, database_url, tmp_path
) -> None:
    await partner(database, SAM, "Sam")
    await partner(database, ALI, "Ali", quiet=quiet_now())
    await partner(database, KIM, "Kim", paused=True)
    await partner(database, BO, "Bo", status=PersonStatus.WITHDRAWN)
    await partner(database, WYN, "Wyn", status=PersonStatus.UNREACHABLE)
    await partner(database, UMA, "Uma", group="south")
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    async with running_companion(sandbox, database_url, tmp_path / "data") as bot:
        bot.broadcasts.interval = 0.2
        connector.send_command("broadcast")
        await settle(bot, sandbox)
        menu = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert "No broadcasts yet" in menu["text"]
        connector.press(menu, data_for(menu, "New broadcast"))
        await settle(bot, sandbox)
        ask = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert "who is it for" in ask["text"]
        connector.press(ask, data_for(ask, "North West"))
        await settle(bot, sandbox)
        connector.press(ask, data_for(ask, "Done"))
        await settle(bot, sandbox)
        assert "Now send me the message" in sandbox.sent_to(CONNECTOR_ID)[-1]["text"]
        assert "2 people right now" in sandbox.sent_to(CONNECTOR_ID)[-1]["text"]

        connector.send_text("Hello {name}, we changed the leaflet because of what you said.")
        await settle(bot, sandbox)
        preview, confirm = sandbox.sent_to(CONNECTOR_ID)[-2:]
        assert preview["text"] == "Hello Sam, we changed the leaflet because of what you said."
        assert "It will reach 2 people" in confirm["text"]
        assert "1 on a break" in confirm["text"] and "1 withdrawn" in confirm["text"]
        assert "1 not reachable" in confirm["text"]
        assert "1 of them is in their quiet hours" in confirm["text"]
        assert texts(sandbox, SAM) == [], "nothing goes out before Send"

        connector.press(confirm, data_for(confirm, "Send"))
        await settle(bot, sandbox)
        assert texts(sandbox, SAM) == [
            "Hello Sam, we changed the leaflet because of what you said."
        ]
        for quiet_or_left_out in (ALI, KIM, BO, WYN, UMA):
            assert texts(sandbox, quiet_or_left_out) == []
        await wait_until(
            lambda: any("the report" in t for t in texts(sandbox, CONNECTOR_ID)), 5, "a report"
        )
        report = next(t for t in texts(sandbox, CONNECTOR_ID) if "the report" in t)
        assert "Delivered: 1 of 2" in report
        assert "Waiting for quiet hours to end: 1" in report
        assert "Unknown (interrupted mid-send, never sent twice): 0" in report
        progress = next(t for t in texts(sandbox, CONNECTOR_ID) if "is going out" in t)
        assert "Broadcast #1" in progress

        connector.send_command("broadcast")
        await settle(bot, sandbox)
        menu = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert "1 of 2 delivered, 1 waiting for quiet hours" in menu["text"]
        # The copy held for quiet hours can still be cancelled, and the report says so.
        connector.press(menu, data_for(menu, "Cancel broadcast #1"))
        await settle(bot, sandbox)
        assert "1 copy that had not left yet will not be sent" in texts(sandbox, CONNECTOR_ID)[-1]

    async with database.sessions() as session:
        current = await broadcasts.report(session, 1, now=utcnow())
        audit = (
            (await session.execute(select(AuditEvent).where(AuditEvent.action.like("broadcast%"))))
            .scalars()
            .all()
        )
    assert current is not None
    assert (current.counts.delivered, current.counts.cancelled, current.counts.total) == (1, 1, 2)
    assert [a.action for a in audit] == ["broadcast.sent", "broadcast.cancelled"]
    assert audit[0].detail["recipients"] == 2 and audit[0].detail["left_out"]["paused"] == 1
    assert "leaflet" not in json.dumps([a.detail for a in audit]), "the audit keeps no text"
    assert await count(database, StaffDraft) == 0


async def test_urgent_asks_once_more_and_ignores_quiet_hours(
    sandbox, database, database_url, tmp_path
) -> None:
    await partner(database, ALI, "Ali", quiet=quiet_now())
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    async with running_companion(sandbox, database_url, tmp_path / "data") as bot:
        connector.send_command("broadcast")
        await settle(bot, sandbox)
        menu = sandbox.sent_to(CONNECTOR_ID)[-1]
        connector.press(menu, data_for(menu, "New broadcast"))
        await settle(bot, sandbox)
        ask = sandbox.sent_to(CONNECTOR_ID)[-1]
        connector.press(ask, data_for(ask, "Everyone"))
        await settle(bot, sandbox)
        connector.send_photo(caption="The room has moved, {name}")
        await settle(bot, sandbox)
        preview, confirm = sandbox.sent_to(CONNECTOR_ID)[-2:]
        assert preview["caption"] == "The room has moved, Ali" and preview.get("photo")
        connector.press(confirm, data_for(confirm, "urgent"))
        await settle(bot, sandbox)
        again = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert "even to people in their quiet hours" in again["text"]
        assert sandbox.sent_to(ALI) == [], "urgent asks once more before anything goes"
        connector.press(again, data_for(again, "Yes, send now"))
        await settle(bot, sandbox)
        (got,) = sandbox.sent_to(ALI)
        assert got["caption"] == "The room has moved, Ali" and got.get("photo")


async def test_bad_input_in_telegram_gets_one_sentence_and_sends_nothing(
    sandbox, database, database_url, tmp_path
) -> None:
    await partner(database, SAM, "Sam")
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    async with running_companion(sandbox, database_url, tmp_path / "data") as bot:
        connector.send_command("broadcast")
        await settle(bot, sandbox)
        menu = sandbox.sent_to(CONNECTOR_ID)[-1]
        connector.press(menu, data_for(menu, "New broadcast"))
        await settle(bot, sandbox)
        ask = sandbox.sent_to(CONNECTOR_ID)[-1]
        connector.press(ask, "bc:m:999")  # a meeting that does not exist
        await settle(bot, sandbox)
        assert (
            texts(sandbox, CONNECTOR_ID)[-1] == "There is no meeting number 999. Nothing was sent."
        )
        connector.press(ask, data_for(ask, "Everyone"))
        await settle(bot, sandbox)
        connector.send_text("x" * 4100)
        await settle(bot, sandbox)
        assert "please cut about 4 characters" in texts(sandbox, CONNECTOR_ID)[-1]
        connector.send_photo(caption="y" * 1030)
        await settle(bot, sandbox)
        last = texts(sandbox, CONNECTOR_ID)[-1]
        assert "1024 characters at most under a photo" in last and "cut about 6" in last
        connector.send_sticker()
        await settle(bot, sandbox)
        assert "I can only send text, a photo or a document" in texts(sandbox, CONNECTOR_ID)[-1]
    assert sandbox.sent_to(SAM) == []
    assert await count(database, Broadcast) == 0


async def test_cancelling_mid_way_stops_what_has_not_left(
    sandbox, database, database_url, tmp_path
) -> None:
    people = 30
    for i in range(people):
        await partner(database, 8500 + i, f"P{i}")
    async with running_companion(
        sandbox, database_url, tmp_path / "data", companion_global_rate=5.0
    ) as bot:
        async with bot.db.transaction() as session:
            sent = await broadcasts.send(
                session,
                PROTOCOL,
                Prompts(),
                audience=broadcasts.Audience(),
                content=broadcasts.Content("text", "News for {name}"),
                urgent=False,
                by_person_id=None,
                now=utcnow(),
            )
        bot.sender.wake()
        delivered = lambda: sum(len(sandbox.sent_to(8500 + i)) for i in range(people))  # noqa: E731
        await wait_until(lambda: delivered() >= 5, 10, "some deliveries")
        async with bot.db.transaction() as session:
            stopped = await broadcasts.cancel(session, sent.id, by_person_id=None, now=utcnow())
        await settle(bot, sandbox)
        async with bot.db.sessions() as session:
            current = await broadcasts.report(session, sent.id, now=utcnow())
    assert current is not None and stopped is not None and stopped > 0
    assert current.counts.cancelled == stopped
    assert current.counts.delivered == delivered() == people - stopped
    assert current.counts.total == people


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "TELEGRAM_BOT_TOKEN": "1:x"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "broadcast", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


async def test_the_command_line_sends_reports_lists_and_cancels(
    sandbox, database, database_url, tmp_path
) -> None:
    await partner(database, SAM, "Sam")
    await partner(database, ALI, "Ali", quiet=quiet_now())
    await partner(database, UMA, "Uma", group="south")
    done = await asyncio.to_thread(
        cli, database_url, "send", "--text", "Hi {name}", "--group", "north", "--yes", "--json"
    )
    assert done.returncode == 0, done.stderr
    sent = json.loads(done.stdout)
    assert sent["recipients"] == 2 and isinstance(sent["id"], int)
    async with running_companion(sandbox, database_url, tmp_path / "data") as bot:
        await settle(bot, sandbox)
    assert texts(sandbox, SAM) == ["Hi Sam"] and texts(sandbox, UMA) == []
    shown = await asyncio.to_thread(cli, database_url, "report", str(sent["id"]), "--json")
    report = json.loads(shown.stdout)
    for field in ("delivered", "waiting", "unreachable", "failed", "unknown", "cancelled"):
        assert isinstance(report[field], int)
    assert (report["delivered"], report["waiting"]) == (1, 1)
    cancelled = await asyncio.to_thread(cli, database_url, "cancel", str(sent["id"]))
    assert cancelled.returncode == 0 and "1 copies" in cancelled.stdout
    listed = json.loads((await asyncio.to_thread(cli, database_url, "list", "--json")).stdout)
    assert [(r["id"], r["cancelled"], r["delivered"]) for r in listed] == [(sent["id"], 1, 1)]


async def test_bad_input_on_the_command_line_sends_nothing(database, database_url) -> None:
    await partner(database, SAM, "Sam")
    cases = [
        (["--text", "   "], "That message is empty"),
        (["--text", "z" * 5000], "please cut about 904 characters"),
        (["--text", "hi", "--group", "nowhere"], "There is no group called nowhere"),
        (["--text", "hi", "--meeting", "77"], "There is no meeting number 77"),
        (["--text", "hi", "--said-yes"], "--said-yes needs --meeting"),
    ]
    for args, sentence in cases:
        done = await asyncio.to_thread(cli, database_url, "send", *args, "--yes")
        assert done.returncode != 0 and sentence in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert await count(database, Broadcast) == 0
    assert await count(database, OutboxMessage) == 0


async def test_a_copy_queued_for_at_once_is_never_counted_as_waiting(database) -> None:
    """The report's clock can be read a moment before the broadcast's copies are made (the
    progress pass read it, then waited for the database). A copy queued for at once is then
    still going out, not "waiting for quiet hours", so the broadcast is not reported as done
    with nothing delivered; a copy held for quiet hours is waiting."""
    before = utcnow()
    async with database.transaction() as session:
        broadcast = Broadcast(recipients=2)
        session.add(broadcast)
        await session.flush()
        await enqueue_new(
            session,
            [
                {"key": "b:at-once", "chat_id": 1, "text": "Hello", "broadcast_id": broadcast.id},
                {
                    "key": "b:held",
                    "chat_id": 2,
                    "text": "Hello",
                    "broadcast_id": broadcast.id,
                    "not_before": utcnow() + timedelta(hours=8),
                },
            ],
        )
    async with database.sessions() as session:
        counts = await delivery_counts(session, broadcast.id, now=before)
        report = await broadcasts.report(session, broadcast.id, now=before)
    assert (counts.sending, counts.waiting) == (1, 1)
    assert report is not None and not report.done
