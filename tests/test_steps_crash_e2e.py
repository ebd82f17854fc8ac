"""No conversation left hanging: `companion run` is killed (SIGKILL) while a check-in's next
question is on its way to Telegram, and restarted.

Killed before Telegram accepted it, the partner gets the question once, after the restart;
killed after (Telegram delivered it but the bot never heard back), they get it twice at most:
one doubled message for the crash, and nobody has to type /checkin again. The answer they
then give is stored once. A broadcast copy caught in flight at the same moment stays
``unknown`` and is never sent again.
"""

from __future__ import annotations

import asyncio
import signal

import pytest
from sqlalchemy import select, update

from bot.connector import broadcast as broadcasts
from bot.protocol import load_protocol
from prompts import DEFAULT_STUDY_PATH, Prompts
from storage.clock import utcnow
from storage.models import Answer, OutboxMessage, OutboxStatus
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import data_for, settle, start_companion_process, wait_until

PARTNER = 720_001
OTHER = 720_002
NEXT_QUESTION = "views count"
BROADCAST = "News for the whole team"
pytestmark = pytest.mark.slow


def questions(sandbox) -> list[dict]:
    """The messages the partner got that ask the check-in's second question."""
    return [m for m in sandbox.sent_to(PARTNER) if NEXT_QUESTION in (m.get("text") or "")]


def sent(sandbox) -> list[dict]:
    """Every message the partner got."""
    return sandbox.sent_to(PARTNER)


async def answer_and_go_on(sandbox, sam, question: dict) -> None:
    """Sam answers 3 to ``question``; the check-in's next question must follow."""
    sam.press(question, data_for(question, "3"))
    await wait_until(
        lambda: any("part of the team" in (m.get("text") or "") for m in sent(sandbox)),
        30,
        "the question after the answer",
    )


def in_flight(sandbox, chat_id: int, words: str) -> bool:
    """Whether the bot has made a sendMessage call to ``chat_id`` whose text has ``words``."""
    return any(
        str(r.params.get("chat_id")) == str(chat_id) and words in str(r.params.get("text", ""))
        for r in sandbox.requests_for("sendMessage")
    )


@pytest.mark.parametrize("accepted", [False, True], ids=["before-accept", "after-accept"])
async def test_a_checkin_question_caught_by_a_kill_is_sent_again_a_broadcast_is_not(
    sandbox, database, database_url, tmp_path, accepted: bool
):
    person = await enrol(database, PARTNER, name="Sam")
    await enrol(database, OTHER, name="Kit", group="south")
    sam = sandbox.user(PARTNER, "Sam")
    sandbox.user(OTHER, "Kit")
    log_path = tmp_path / "companion.log"

    def start() -> asyncio.Future:
        return start_companion_process(sandbox, database_url, log_path)

    process = await start()
    try:
        sam.send_command("checkin")
        await wait_until(lambda: len(sandbox.sent_to(PARTNER)) == 1, 30, "the first question")
        first = sandbox.sent_to(PARTNER)[0]
        # The next two sends (the broadcast copy and the next question) hang at Telegram.
        hold = sandbox.faults.hang_after_accept if accepted else sandbox.faults.hang_before_accept
        hold(2, seconds=60.0, method="sendMessage")
        async with database.transaction() as session:
            await broadcasts.send(
                session,
                load_protocol(DEFAULT_STUDY_PATH),
                Prompts(),
                audience=broadcasts.Audience(groups=("south",)),
                content=broadcasts.Content("text", BROADCAST),
                urgent=True,
                by_person_id=None,
                now=utcnow(),
            )
        await wait_until(lambda: in_flight(sandbox, OTHER, BROADCAST), 30, "the broadcast send")
        sam.press(first, data_for(first, "4"))
        await wait_until(
            lambda: in_flight(sandbox, PARTNER, NEXT_QUESTION), 30, "the next question's send"
        )
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    sandbox.faults.clear()
    assert len(questions(sandbox)) == (1 if accepted else 0)

    process = await start()
    try:
        await wait_until(
            lambda: len(questions(sandbox)) == (2 if accepted else 1), 30, "the question again"
        )
        await asyncio.sleep(1.5)  # time for anything else the restart might (wrongly) send
        asked = questions(sandbox)
        assert len(asked) == (2 if accepted else 1), "at most one doubled message per crash"
        await answer_and_go_on(sandbox, sam, asked[-1])
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 20)

    async with database.sessions() as session:
        answers = (
            (await session.execute(select(Answer).where(Answer.person_id == person.id)))
            .scalars()
            .all()
        )
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    stored = sorted((a.value_number, a.question_key) for a in answers)
    assert len(stored) == len({key for _, key in stored}) == 2, "each answer stored once"
    assert [value for value, _ in stored] == [3, 4]
    (copy,) = [r for r in rows if r.kind == broadcasts.KIND]
    assert copy.status == OutboxStatus.UNKNOWN, "a broadcast caught mid-send is never resent"
    got = [m for m in sandbox.sent_to(OTHER) if BROADCAST in (m.get("text") or "")]
    assert len(got) == (1 if accepted else 0)
    (step,) = [r for r in rows if NEXT_QUESTION in str(r.payload.get("text", ""))]
    assert step.status == OutboxStatus.SENT and not step.conversation_step, "sent again once"


async def test_a_question_telegram_answered_is_not_sent_again_when_the_kill_beat_the_database(
    sandbox, database, database_url, tmp_path
):
    """Killed after Telegram answered but before the database recorded the send (held up here
    by another writer): the receipt written the moment the answer came settles it at the
    restart, so the partner sees the question once and goes on without a nudge."""
    await enrol(database, PARTNER, name="Sam")
    sam = sandbox.user(PARTNER, "Sam")
    log_path = tmp_path / "companion.log"

    def start() -> asyncio.Future:
        return start_companion_process(sandbox, database_url, log_path)

    def receipts() -> str:
        return "".join(p.read_text() for p in (tmp_path / "data").glob("outbox-receipts-*.log"))

    process = await start()
    try:
        sam.send_command("checkin")
        await wait_until(lambda: len(sandbox.sent_to(PARTNER)) == 1, 30, "the first question")
        first = sandbox.sent_to(PARTNER)[0]
        sandbox.faults.hang_before_accept(1, seconds=2.0, method="sendMessage")
        sam.press(first, data_for(first, "4"))
        await wait_until(
            lambda: in_flight(sandbox, PARTNER, NEXT_QUESTION), 30, "the next question's send"
        )
        # While Telegram holds the question, keep the bot from recording it: another writer
        # holds the row (PostgreSQL) or the database's write lock (SQLite).
        async with database.transaction() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.SENDING)
                .values(attempts=OutboxMessage.attempts)
            )
            await wait_until(lambda: len(questions(sandbox)) == 1, 30, "Telegram's delivery")
            await wait_until(lambda: receipts() != "", 30, "the receipt")
            process.send_signal(signal.SIGKILL)
            await process.wait()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
    sandbox.faults.clear()
    step = await newest(database, PARTNER)
    assert step.status == OutboxStatus.SENDING, "the kill came before the database heard"

    process = await start()
    try:
        await wait_until(lambda: receipts() == "", 30, "the receipts applied")
        await asyncio.sleep(1.5)  # time for anything the restart might (wrongly) send again
        (asked,) = questions(sandbox)
        await answer_and_go_on(sandbox, sam, asked)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 20)
    async with database.sessions() as session:
        step = await session.get(OutboxMessage, step.id)
    assert step is not None and step.status == OutboxStatus.SENT
    assert step.tg_message_id == asked["message_id"]
    assert "found delivered by their receipts" in log_path.read_text()


async def newest(database, chat_id: int) -> OutboxMessage:
    async with database.sessions() as session:
        return (
            await session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.chat_id == chat_id)
                .order_by(OutboxMessage.id.desc())
                .limit(1)
            )
        ).scalar_one()


async def test_what_a_conversation_waits_on_is_a_step_and_nothing_else_is(
    companion, sandbox, database
):
    """Onboarding, /log, a partner's message (its "sent"), /meeting, /broadcast and /yousaid
    wait on the bot's next message: each is a conversation step. /help is an answer, not a
    step, and the copy of a partner's message to the connector is never sent twice."""
    newcomer = 720_011
    await enrol(database, newcomer, name="Ada", onboarded=False)
    await enrol(database, PARTNER, name="Sam")
    staff = sandbox.user(CONNECTOR_ID, "Jo")
    staff.send_command("help")
    await settle(companion, sandbox)
    assert not (await newest(database, CONNECTOR_ID)).conversation_step

    sandbox.user(newcomer, "Ada").send_text("hello")
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_command("log")
    await settle(companion, sandbox)
    assert (await newest(database, newcomer)).conversation_step, "onboarding"
    assert (await newest(database, PARTNER)).conversation_step, "/log"
    sam.send_text("Could we meet somewhere quieter?")
    await settle(companion, sandbox)
    sent = await newest(database, PARTNER)
    assert sent.conversation_step and "Sent to" in sent.payload["text"]
    copy = await newest(database, CONNECTOR_ID)
    assert copy.kind == "relay" and not copy.conversation_step

    for command in ("meeting", "broadcast", "yousaid"):
        staff.send_command(command)
        await settle(companion, sandbox)
        assert (await newest(database, CONNECTOR_ID)).conversation_step, command
