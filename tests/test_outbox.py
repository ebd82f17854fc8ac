"""The outbox: enqueue, error classification and the sender against the sandbox Telegram."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp.client_reqrep import ConnectionKey
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from tenacity.wait import wait_exponential_jitter

from bot.partners.reachability import mark_reachable, mark_unreachable, unreachable_handler
from bot.transport import receipts as receipts_module
from bot.transport.delivery_errors import Outcome, classify
from bot.transport.http import AiohttpRequest
from bot.transport.outbox import OutboxPayloadError, enqueue
from bot.transport.ratelimit import SendLimiter
from bot.transport.receipts import Receipts
from bot.transport.sender import OutboxSender
from prompts import Prompts
from storage.clock import utcnow
from storage.db import Database
from storage.models import AuditEvent, OutboxMessage, OutboxStatus, Person, PersonStatus

STAFF_CHAT = 900
SECRET_TEXT = "secret-words-never-logged"


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
async def sb() -> AsyncIterator[Any]:
    """A sandbox Telegram that enforces Telegram's flood limits and checks the spec."""
    from bot.sandbox import BotApiSpec, FloodLimits, SandboxTelegram, find_spec_path

    spec_path = find_spec_path()
    spec = BotApiSpec.load(spec_path) if spec_path else None
    async with SandboxTelegram(spec=spec, limits=FloodLimits(enforce=True)) as sandbox:
        sandbox.user(STAFF_CHAT, "Connector")
        yield sandbox
        assert sandbox.spec_errors == []


@pytest.fixture(params=["httpx", "aiohttp"])
async def bot(sb: Any, request: pytest.FixtureRequest) -> AsyncIterator[Bot]:
    """A Bot on python-telegram-bot's own transport, and on ours (the companion's sender)."""
    transport = HTTPXRequest if request.param == "httpx" else AiohttpRequest
    tg = Bot(
        token=sb.token,
        base_url=sb.base_url,
        base_file_url=sb.base_file_url,
        request=transport(connection_pool_size=32, read_timeout=0.5, connect_timeout=2.0),
    )
    async with tg:
        yield tg


async def staff_chats(session: AsyncSession) -> list[int]:
    return [STAFF_CHAT]


@pytest.fixture
def make_sender(database: Database, bot: Bot, tmp_path: Path) -> Callable[..., OutboxSender]:
    def factory(**kwargs: Any) -> OutboxSender:
        limiter = kwargs.pop("limiter", None) or SendLimiter(30, 1, 20)
        options: dict[str, Any] = {
            "on_unreachable": unreachable_handler(Prompts(), staff_chats=staff_chats),
            "poll_interval": 0.2,
            "retry_wait": wait_exponential_jitter(multiplier=0.05, max=0.3, jitter=0.05),
            "data_dir": tmp_path,
        }
        options.update(kwargs)
        return OutboxSender(database, bot, limiter, **options)

    return factory


@asynccontextmanager
async def running(sender: OutboxSender) -> AsyncIterator[OutboxSender]:
    task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def add_person(db: Database, pseudonym: str, status: str = PersonStatus.ACTIVE) -> int:
    async with db.transaction() as session:
        person = Person(pseudonym=pseudonym, role="partner", status=status)
        session.add(person)
        await session.flush()
        return person.id


async def queue(db: Database, *messages: dict[str, Any]) -> list[int | None]:
    async with db.transaction() as session:
        return [await enqueue(session, **m) for m in messages]


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.sessions() as session:
        return list(
            (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        )


async def waiting_for_a_lock(db: Database, within: float = 10.0) -> None:
    """Until another transaction waits for a row lock (PostgreSQL); on SQLite, where a second
    writer waits in the process itself, a moment."""
    if db.is_sqlite:
        await asyncio.sleep(0.3)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        async with db.sessions() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no transaction came to wait for a lock")


def texts(sb: Any, chat_id: int) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in sb.sent_to(chat_id)]


def send_requests(sb: Any) -> list[Any]:
    return [r for r in sb.requests if r.method.startswith("send")]


# -- enqueue ----------------------------------------------------------------------------


async def test_enqueue_same_key_twice_gives_one_row(database: Database) -> None:
    async with database.transaction() as session:
        first = await enqueue(session, key="k1", chat_id=1, text="a")
        second = await enqueue(session, key="k1", chat_id=1, text="b")
        # the caller's transaction is still usable after the duplicate
        third = await enqueue(session, key="k2", chat_id=1, text="c")
    assert isinstance(first, int)
    assert second is None
    assert isinstance(third, int)
    async with database.transaction() as session:
        assert await enqueue(session, key="k1", chat_id=2, text="again") is None
    stored = await rows(database)
    assert [(r.idempotency_key, r.payload["text"]) for r in stored] == [("k1", "a"), ("k2", "c")]


async def test_enqueue_payload_round_trip(database: Database) -> None:
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Yes", callback_data="a:1"),
                InlineKeyboardButton("No", callback_data="a:0"),
            ]
        ]
    )
    later = utcnow() + timedelta(hours=1)
    async with database.transaction() as session:
        outbox_id = await enqueue(
            session,
            key="p1",
            chat_id=-1001,
            text="<b>Hi</b>",
            reply_markup=markup,
            payload={"disable_notification": True},
            kind="prompt",
            not_before=later,
        )
        doc_id = await enqueue(
            session,
            key="d1",
            chat_id=5,
            method="sendDocument",
            text="Your export",
            payload={"document": {"path": "exports/a.csv", "filename": "a.csv"}},
        )
    async with database.sessions() as session:
        row = await session.get(OutboxMessage, outbox_id)
        doc = await session.get(OutboxMessage, doc_id)
    assert row is not None and doc is not None
    assert row.payload == {
        "text": "<b>Hi</b>",
        "parse_mode": "HTML",
        "disable_notification": True,
        "reply_markup": markup.to_dict(),
    }
    assert InlineKeyboardMarkup.de_json(row.payload["reply_markup"], None) == markup
    assert row.chat_id == -1001 and row.kind == "prompt" and row.method == "sendMessage"
    assert row.status == OutboxStatus.PENDING and row.attempts == 0
    assert row.next_attempt_at == later
    assert row.next_attempt_at.tzinfo is not None
    assert doc.payload["caption"] == "Your export"
    assert doc.payload["document"] == {"path": "exports/a.csv", "filename": "a.csv"}


async def test_enqueue_refuses_what_could_never_be_sent(database: Database) -> None:
    async with database.transaction() as session:
        with pytest.raises(OutboxPayloadError):
            await enqueue(session, key="x", chat_id=1)
        with pytest.raises(OutboxPayloadError):
            await enqueue(session, key="y", chat_id=1, text="t", method="sendSticker")
        with pytest.raises(OutboxPayloadError):
            await enqueue(session, key="z", chat_id=1, text="t", method="sendDocument")


# -- classification ---------------------------------------------------------------------


def _connector_error() -> aiohttp.ClientConnectorError:
    key = ConnectionKey("127.0.0.1", 9, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))


def _caused(exc: TelegramError, cause: BaseException) -> TelegramError:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (RetryAfter(3), Outcome.RETRY_AFTER),
        (NetworkError("Bad Gateway"), Outcome.RETRY),
        (
            _caused(NetworkError("Bad Gateway"), TelegramError("Invalid server response")),
            Outcome.RETRY,
        ),
        (
            _caused(NetworkError("httpx.ConnectError"), httpx.ConnectError("refused")),
            Outcome.RETRY,
        ),
        (_caused(TimedOut(), httpx.ConnectTimeout("slow")), Outcome.RETRY),
        (_caused(TimedOut("Pool timeout"), httpx.PoolTimeout("busy")), Outcome.RETRY),
        (_caused(TimedOut(), httpx.ReadTimeout("late")), Outcome.UNKNOWN),
        (_caused(TimedOut(), httpx.WriteTimeout("late")), Outcome.UNKNOWN),
        (TimedOut(), Outcome.UNKNOWN),
        (
            _caused(NetworkError("httpx.RemoteProtocolError"), httpx.RemoteProtocolError("gone")),
            Outcome.UNKNOWN,
        ),
        (_caused(NetworkError("httpx.ReadError"), httpx.ReadError("reset")), Outcome.UNKNOWN),
        (_caused(NetworkError("refused"), _connector_error()), Outcome.RETRY),
        (_caused(TimedOut(), aiohttp.ConnectionTimeoutError("slow")), Outcome.RETRY),
        (_caused(TimedOut(), aiohttp.SocketTimeoutError("late")), Outcome.UNKNOWN),
        (_caused(TimedOut(), TimeoutError()), Outcome.UNKNOWN),
        (_caused(NetworkError("gone"), aiohttp.ServerDisconnectedError()), Outcome.UNKNOWN),
        (_caused(NetworkError("reset"), aiohttp.ClientOSError()), Outcome.UNKNOWN),
        (Forbidden("Forbidden: bot was blocked by the user"), Outcome.UNREACHABLE),
        (BadRequest("Bad Request: chat not found"), Outcome.REJECTED),
        (ChatMigrated(-1009), Outcome.MIGRATED),
        (InvalidToken(), Outcome.MISCONFIGURED),
        (RuntimeError("something odd"), Outcome.UNKNOWN),
    ],
)
def test_classify(exc: BaseException, outcome: Outcome) -> None:
    result = classify(exc)
    assert result.outcome == outcome
    assert len(result.description) <= 250


async def test_aiohttp_failures_keep_their_meaning() -> None:
    """Our transport's errors classify as httpx's do: refused is resendable, a hang is not."""
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the socket is closed
    async with AiohttpRequest(connect_timeout=2.0) as request:
        with pytest.raises(NetworkError) as refused:
            await request.post(f"http://127.0.0.1:{port}/bot1:x/sendMessage")
    assert classify(refused.value).outcome == Outcome.RETRY

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # the request arrives, the answer never does
        await asyncio.sleep(1)
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AiohttpRequest(read_timeout=0.3) as request:
            with pytest.raises(TimedOut) as late:
                await request.post(f"http://127.0.0.1:{port}/bot1:x/sendMessage")
        assert classify(late.value).outcome == Outcome.UNKNOWN
    finally:
        server.close()


def test_classify_details() -> None:
    assert classify(RetryAfter(timedelta(seconds=7))).retry_after == 7.0
    assert classify(ChatMigrated(-1009)).new_chat_id == -1009
    assert classify(BadRequest("Bad Request: chat not found")).description == (
        "Chat not found"  # PTB strips the "Bad Request: " prefix and capitalises
    )


# -- the sender -------------------------------------------------------------------------


async def test_happy_path_sends_in_order_and_records(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    sb.user(101)
    person = await add_person(database, "P-happy")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("OK", callback_data="ok")]])
    await queue(
        database,
        {"key": "h1", "chat_id": 101, "text": f"<b>one</b> {SECRET_TEXT}", "person_id": person},
        {"key": "h2", "chat_id": 101, "text": "two", "reply_markup": markup},
        {"key": "h3", "chat_id": 101, "text": "three & more"},
    )
    sender = make_sender()
    async with running(sender):
        await sender.drain(10)
    assert texts(sb, 101) == [f"one {SECRET_TEXT}", "two", "three & more"]
    sent = sb.sent_to(101)
    assert sent[0]["entities"][0]["type"] == "bold"  # parse_mode HTML
    assert sent[1]["reply_markup"] == markup.to_dict()
    stored = await rows(database)
    assert [r.status for r in stored] == [OutboxStatus.SENT] * 3
    assert [r.tg_message_id for r in stored] == [m["message_id"] for m in sent]
    assert all(r.sent_at is not None and r.sent_at.tzinfo is not None for r in stored)
    assert all(r.attempts == 1 for r in stored)
    assert SECRET_TEXT not in caplog.text
    assert sb.token not in caplog.text


async def test_wake_sends_new_rows_before_the_next_poll(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    sb.user(102)
    sender = make_sender(poll_interval=30.0)
    async with running(sender):
        await asyncio.sleep(0.1)
        await queue(database, {"key": "w1", "chat_id": 102, "text": "now"})
        sender.wake()
        await sender.drain(3)
    assert texts(sb, 102) == ["now"]


async def test_retry_after_is_honoured_without_flood_violation(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    """The sender is configured faster than Telegram allows; the sandbox says 429 and we wait."""
    sb.user(103)
    await queue(database, *[{"key": f"r{i}", "chat_id": 103, "text": f"m{i}"} for i in range(4)])
    sender = make_sender(limiter=SendLimiter(30, 4, 20))
    async with running(sender):
        await sender.drain(20)
    assert texts(sb, 103) == ["m0", "m1", "m2", "m3"]
    assert sb.count_status(429) >= 1
    assert sb.flood_violations == []
    stored = await rows(database)
    assert all(r.status == OutboxStatus.SENT for r in stored)
    assert all(r.attempts == 1 for r in stored)  # a 429 is not a failed attempt


async def test_429s_from_two_chats_pause_every_chat(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    for chat in (104, 105, 106):
        sb.user(chat)
    sb.faults.fail_next(2, status=429, method="sendMessage", retry_after=2)
    await queue(database, *[{"key": f"g{c}", "chat_id": c, "text": "x"} for c in (104, 105, 106)])
    sender = make_sender()
    async with running(sender):
        await sender.drain(15)
    reqs = send_requests(sb)
    assert [r.status for r in reqs[:2]] == [429, 429]
    later = [r for r in reqs[2:] if r.ok]
    assert len(later) == 3
    # the third chat never got a 429 itself, but waited for the global pause
    assert min(r.time for r in later) - reqs[1].time >= 1.9
    assert sb.flood_violations == []


async def test_5xx_is_retried_then_delivered_once(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    sb.user(107)
    sb.faults.fail_next(2, status=502, method="sendMessage")
    await queue(database, {"key": "x1", "chat_id": 107, "text": "hello"})
    sender = make_sender()
    async with running(sender):
        await sender.drain(10)
    assert texts(sb, 107) == ["hello"]
    assert [r.status for r in send_requests(sb)] == [502, 502, 200]
    (row,) = await rows(database)
    assert row.status == OutboxStatus.SENT and row.attempts == 3


async def test_5xx_gives_up_after_max_attempts(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    sb.user(108)
    sb.faults.fail_next(3, status=500, method="sendMessage")
    await queue(database, {"key": "x2", "chat_id": 108, "text": "hello"})
    sender = make_sender(max_attempts=3)
    async with running(sender):
        await sender.drain(10)
    assert texts(sb, 108) == []
    (row,) = await rows(database)
    assert row.status == OutboxStatus.FAILED and row.attempts == 3
    assert row.last_error == "Internal Server Error"


async def test_dropped_connection_is_unknown_and_not_resent(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    sb.user(109)
    sb.faults.network_drop_next(1, method="sendMessage")
    await queue(
        database,
        {"key": "d1", "chat_id": 109, "text": "maybe"},
        {"key": "d2", "chat_id": 109, "text": "after"},
    )
    sender = make_sender()
    async with running(sender):
        await sender.drain(10)
        await asyncio.sleep(0.5)  # give a (wrong) resend the chance to happen
    first, second = await rows(database)
    assert first.status == OutboxStatus.UNKNOWN
    assert second.status == OutboxStatus.SENT  # later messages are not held back
    assert len([r for r in send_requests(sb) if r.params.get("text") == "maybe"]) == 1


async def test_timeout_after_accept_is_unknown_with_one_delivery(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], caplog: Any
) -> None:
    sb.user(110)
    sb.faults.hang_after_accept(1, seconds=2.0, method="sendMessage")
    await queue(database, {"key": "t1", "chat_id": 110, "text": SECRET_TEXT})
    sender = make_sender()
    with caplog.at_level(logging.WARNING, logger="bot.transport.sender"):
        async with running(sender):
            await sender.drain(10)
            await asyncio.sleep(0.5)
    (row,) = await rows(database)
    assert row.status == OutboxStatus.UNKNOWN
    assert row.tg_message_id is None
    assert texts(sb, 110) == [SECRET_TEXT]  # it was delivered: exactly once
    assert len(send_requests(sb)) == 1
    assert "unknown outcome" in caplog.text
    assert SECRET_TEXT not in caplog.text


async def test_forbidden_marks_person_unreachable_and_tells_staff(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    sb.user(111).block()
    person = await add_person(database, "P-blocked")
    await queue(
        database,
        {"key": "f1", "chat_id": 111, "text": "one", "person_id": person},
        {"key": "f2", "chat_id": 111, "text": "two", "person_id": person},
    )
    sender = make_sender()
    async with running(sender):
        await sender.drain(10)
        # a row queued later for them is not sent either
        await queue(database, {"key": "f3", "chat_id": 111, "text": "three", "person_id": person})
        sender.wake()
        await sender.drain(10)
    by_key = {r.idempotency_key: r for r in await rows(database)}
    assert by_key["f1"].status == OutboxStatus.FAILED
    assert by_key["f1"].last_error is not None and "blocked" in by_key["f1"].last_error
    assert by_key["f2"].status == OutboxStatus.FAILED and by_key["f2"].last_error == "unreachable"
    assert by_key["f3"].status == OutboxStatus.FAILED and by_key["f3"].last_error == "unreachable"
    notices = [r for r in by_key.values() if r.kind == "staff_notice"]
    assert len(notices) == 1
    assert notices[0].idempotency_key.startswith(f"unreachable:{person}:")
    assert notices[0].status == OutboxStatus.SENT
    assert len(texts(sb, STAFF_CHAT)) == 1
    assert "P-blocked" in texts(sb, STAFF_CHAT)[0]
    assert len(send_requests(sb)) == 2  # the 403 and the staff notice
    async with database.sessions() as session:
        stored = await session.get(Person, person)
        events = (await session.scalars(select(AuditEvent))).all()
    assert stored is not None and stored.status == PersonStatus.UNREACHABLE
    assert stored.status_changed_at is not None
    assert [e.action for e in events] == ["person.unreachable"]


async def test_a_slow_read_of_the_queue_neither_stalls_sending_nor_spins(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], monkeypatch: Any
) -> None:
    """Reading which chat is next can take a while on a long queue: the sender waits for it
    without turning the event loop over and over, and sends once it has it."""
    sb.user(170)
    await queue(database, {"key": "s", "chat_id": 170, "text": "after a slow read"})
    sender = make_sender()
    read, turns = sender._heads, 0
    start_ready = sender._start_ready

    async def slow_read() -> Any:
        await asyncio.sleep(0.6)
        return await read()

    def counted(heads: Any) -> float:
        nonlocal turns
        turns += 1
        return start_ready(heads)

    monkeypatch.setattr(sender, "_heads", slow_read)
    monkeypatch.setattr(sender, "_start_ready", counted)
    async with running(sender):
        await sender.drain(10)
    assert texts(sb, 170) == ["after a slow read"]
    assert turns < 50, f"{turns} turns of the dispatcher while it waited"


async def test_a_write_that_loses_a_deadlock_is_tried_again(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], caplog: Any
) -> None:
    """Another transaction deadlocked with the 403's commit once (PostgreSQL fails one of
    the two): the commit is tried again, rather than leaving the row ``sending`` (and the
    chat's later rows held) until the next start."""
    from sqlalchemy.exc import OperationalError

    sb.user(113).block()
    person = await add_person(database, "P-deadlock")
    await queue(database, {"key": "d1", "chat_id": 113, "text": "one", "person_id": person})
    handler = unreachable_handler(Prompts(), staff_chats=staff_chats)
    failures = [OperationalError("UPDATE person", {}, Exception("deadlock detected"))]

    async def deadlocks_once(session: AsyncSession, *args: Any) -> None:
        if failures:
            raise failures.pop()
        await handler(session, *args)

    sender = make_sender(on_unreachable=deadlocks_once)
    with caplog.at_level(logging.WARNING, logger="bot.transport.sender"):
        async with running(sender):
            await sender.drain(10)
    by_key = {r.idempotency_key: r for r in await rows(database)}
    assert by_key["d1"].status == OutboxStatus.FAILED
    assert "write failed (OperationalError), trying again" in caplog.text
    assert "delivery crashed" not in caplog.text
    async with database.sessions() as session:
        stored = await session.get(Person, person)
    assert stored is not None and stored.status == PersonStatus.UNREACHABLE


async def test_a_block_and_a_403_for_the_same_person_at_once_both_go_through(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], caplog: Any
) -> None:
    """An update saying they blocked the bot is being handled (it has their row) while the
    sender records a 403 for them: the sender waits for the person's row before touching
    their messages, so neither transaction deadlocks (on PostgreSQL one used to fail)."""
    sb.user(114)
    person = await add_person(database, "P-both")
    first, _ = await queue(
        database,
        {"key": "b1", "chat_id": 114, "text": "one", "person_id": person},
        {"key": "b2", "chat_id": 114, "text": "two", "person_id": person},
    )
    assert first is not None
    sender = make_sender()
    claimed = (await sender._claim_batch([first]))[0]
    assert claimed is not None
    with caplog.at_level(logging.WARNING, logger="bot.transport.sender"):
        async with database.transaction() as session:
            blocked = await session.get(Person, person)
            assert blocked is not None
            await session.refresh(blocked, ["status"], with_for_update=True)
            commit_403 = asyncio.create_task(sender._mark_unreachable_once(claimed, "blocked"))
            await waiting_for_a_lock(database)  # the sender's commit has started and waits
            assert await mark_unreachable(
                session, Prompts(), blocked, reason="blocked", staff_chats=staff_chats
            )
        assert await asyncio.wait_for(commit_403, 10) == 0  # b2 was already held
    by_key = {r.idempotency_key: r for r in await rows(database)}
    assert by_key["b1"].status == OutboxStatus.FAILED
    assert by_key["b2"].status == OutboxStatus.FAILED and by_key["b2"].last_error == "unreachable"
    assert len([r for r in by_key.values() if r.kind == "staff_notice"]) == 1
    async with database.sessions() as session:
        events = (await session.scalars(select(AuditEvent))).all()
        stored = await session.get(Person, person)
    assert [e.action for e in events] == ["person.unreachable"]
    assert stored is not None and stored.status == PersonStatus.UNREACHABLE


async def test_a_block_handled_after_a_403_committed_sees_it_and_does_nothing_twice(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    """A batch of updates loaded the person before the sender's 403 for them committed; its
    "blocked" update then finds them unreachable already: one notice, one audit line."""
    if database.is_sqlite:
        pytest.skip("SQLite has one writer at a time: the two cannot overlap")
    sb.user(115)
    person = await add_person(database, "P-later")
    [first] = await queue(
        database, {"key": "l1", "chat_id": 115, "text": "one", "person_id": person}
    )
    assert first is not None
    sender = make_sender()
    claimed = (await sender._claim_batch([first]))[0]
    assert claimed is not None
    async with database.transaction() as session:
        loaded = await session.get(Person, person)  # read at the batch's start: still active
        assert loaded is not None and loaded.status == PersonStatus.ACTIVE
        await sender._mark_unreachable_once(claimed, "blocked")
        assert not await mark_unreachable(
            session, Prompts(), loaded, reason="blocked", staff_chats=staff_chats
        )
    async with database.sessions() as session:
        events = (await session.scalars(select(AuditEvent))).all()
    assert [e.action for e in events] == ["person.unreachable"]
    assert len([r for r in await rows(database) if r.kind == "staff_notice"]) == 1


async def test_an_unblock_handled_after_a_403_committed_makes_them_reachable_again(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    """They unblocked the bot just after a 403 for them committed, in a batch that had loaded
    them as reachable: the unblock sees the 403 and undoes it, so they are not left cut off."""
    if database.is_sqlite:
        pytest.skip("SQLite has one writer at a time: the two cannot overlap")
    sb.user(116)
    person = await add_person(database, "P-back")
    [first] = await queue(
        database, {"key": "u1", "chat_id": 116, "text": "one", "person_id": person}
    )
    assert first is not None
    sender = make_sender()
    claimed = (await sender._claim_batch([first]))[0]
    assert claimed is not None
    async with database.transaction() as session:
        loaded = await session.get(Person, person)  # read at the batch's start: still active
        assert loaded is not None and loaded.status == PersonStatus.ACTIVE
        await sender._mark_unreachable_once(claimed, "blocked")
        assert await mark_reachable(session, loaded)
    async with database.sessions() as session:
        stored = await session.get(Person, person)
        events = (await session.scalars(select(AuditEvent))).all()
    assert stored is not None and stored.status == PersonStatus.ACTIVE
    assert [e.action for e in events] == ["person.unreachable", "person.reachable"]


async def test_revoking_staff_while_a_403_for_them_is_recorded_does_not_deadlock(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], monkeypatch: Any
) -> None:
    """Ending a staff role cancels their queued messages; the sender's 403 for them fails
    those same messages. Both take the person's row first, so the second waits."""
    if database.is_sqlite:
        pytest.skip("SQLite has one writer at a time: the two cannot overlap")
    from bot.partners import staff_roles

    sb.user(117)
    async with database.transaction() as session:
        staff = Person(pseudonym="C-leaving", role="connector", status=PersonStatus.ACTIVE)
        session.add(staff)
        await session.flush()
        person = staff.id
    first, _ = await queue(
        database,
        {"key": "r1", "chat_id": 117, "text": "one", "person_id": person},
        {"key": "r2", "chat_id": 117, "text": "two", "person_id": person},
    )
    assert first is not None
    sender = make_sender()
    claimed = (await sender._claim_batch([first]))[0]
    assert claimed is not None
    commit_403: list[asyncio.Task[int]] = []
    cancel = staff_roles.cancel_pending

    async def cancel_then_let_the_403_start(session: AsyncSession, **kwargs: Any) -> int:
        cancelled = await cancel(session, **kwargs)  # their queued messages are held now
        commit_403.append(asyncio.create_task(sender._mark_unreachable_once(claimed, "blocked")))
        await waiting_for_a_lock(database)
        return cancelled

    monkeypatch.setattr(staff_roles, "cancel_pending", cancel_then_let_the_403_start)
    async with database.transaction() as session:
        leaving = await session.get(Person, person)
        assert leaving is not None
        await staff_roles.revoke(session, leaving, by="cli", now=utcnow())
    await asyncio.wait_for(commit_403[0], 10)
    by_key = {r.idempotency_key: r for r in await rows(database)}
    assert by_key["r1"].status == OutboxStatus.FAILED
    assert by_key["r2"].status == OutboxStatus.CANCELLED


async def test_withdrawn_person_is_never_sent_anything(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    sb.user(112)
    person = await add_person(database, "P-gone", status=PersonStatus.WITHDRAWN)
    await queue(database, {"key": "g1", "chat_id": 112, "text": "hi", "person_id": person})
    sender = make_sender()
    async with running(sender):
        await sender.drain(5)
    (row,) = await rows(database)
    assert row.status == OutboxStatus.CANCELLED
    assert send_requests(sb) == []


async def test_unreachable_person_is_not_tried_again(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    sb.user(118)
    person = await add_person(database, "P-away", status=PersonStatus.UNREACHABLE)
    await queue(database, {"key": "u1", "chat_id": 118, "text": "hi", "person_id": person})
    sender = make_sender()
    async with running(sender):
        await sender.drain(5)
    (row,) = await rows(database)
    assert row.status == OutboxStatus.FAILED and row.last_error == "unreachable"
    assert send_requests(sb) == []


async def test_bad_request_fails_with_the_reason_not_the_text(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], caplog: Any
) -> None:
    await queue(database, {"key": "b1", "chat_id": 555_000, "text": SECRET_TEXT})  # no such chat
    sender = make_sender()
    with caplog.at_level(logging.ERROR, logger="bot.transport.sender"):
        async with running(sender):
            await sender.drain(5)
    (row,) = await rows(database)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error is not None and "chat not found" in row.last_error.lower()
    assert SECRET_TEXT not in row.last_error
    assert "rejected by Telegram" in caplog.text and SECRET_TEXT not in caplog.text


async def test_recover_turns_sending_into_unknown(
    database: Database, make_sender: Callable[..., OutboxSender], caplog: Any
) -> None:
    await queue(
        database,
        {"key": "s1", "chat_id": 1, "text": "a"},
        {"key": "s2", "chat_id": 2, "text": "b"},
    )
    async with database.transaction() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == "s1")
        )
        assert row is not None
        row.status = OutboxStatus.SENDING
    with caplog.at_level(logging.WARNING, logger="bot.transport.sender"):
        assert await make_sender().recover() == 1
    assert "1 interrupted" in caplog.text
    assert [r.status for r in await rows(database)] == [OutboxStatus.UNKNOWN, OutboxStatus.PENDING]
    assert await make_sender().recover() == 0


async def test_recover_sends_a_conversation_step_again_once(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    """A question someone is waiting on, caught mid-send by a crash, goes out again (once);
    a reminder caught the same way stays unknown."""
    sb.user(120)
    sb.user(121)
    await queue(
        database,
        {"key": "q1", "chat_id": 120, "text": "next question", "conversation_step": True},
        {"key": "r1", "chat_id": 121, "text": "a reminder"},
    )
    async with database.transaction() as session:
        for row in (await session.scalars(select(OutboxMessage))).all():
            row.status = OutboxStatus.SENDING  # both were in flight when the process died
    sender = make_sender()
    assert await sender.recover() == 2
    async with running(sender):
        await sender.drain(10)
    step, reminder = await rows(database)
    assert step.status == OutboxStatus.SENT and texts(sb, 120) == ["next question"]
    assert reminder.status == OutboxStatus.UNKNOWN and texts(sb, 121) == []
    assert not step.conversation_step, "sent again only once"


# -- receipts: a send Telegram accepted, noted before the database records it -------------


async def mark_sending(db: Database, key: str) -> int:
    """Leave row ``key`` as a killed process would: claimed (attempt 1) and in flight."""
    async with db.transaction() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == key)
        )
        assert row is not None
        row.status, row.attempts = OutboxStatus.SENDING, 1
        return row.id


async def test_a_send_with_a_receipt_is_recovered_as_sent_not_resent(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], tmp_path: Path
) -> None:
    """Killed after Telegram answered but before the database heard: the receipt settles it,
    so a conversation step is not sent twice and a reminder does not become unknown."""
    sb.user(130)
    sb.user(131)
    sb.user(132)
    await queue(
        database,
        {"key": "q", "chat_id": 130, "text": "next question", "conversation_step": True},
        {"key": "r", "chat_id": 131, "text": "a reminder"},
        {"key": "old", "chat_id": 132, "text": "sent again since", "conversation_step": True},
    )
    receipts = Receipts(tmp_path / "receipts.log")
    step, reminder, old = [await mark_sending(database, k) for k in ("q", "r", "old")]
    assert receipts.note(step, 1, 501) and receipts.note(reminder, 1, None)
    receipts.note(old, 2, 777)  # an attempt that is not the one in flight settles nothing
    with open(receipts.path, "ab") as torn:
        torn.write(b"99 1 5")  # a line the kill cut short
    receipts.close()

    sender = make_sender(receipts=Receipts(receipts.path))
    assert await sender.recover() == 1, "only the row without its receipt was interrupted"
    assert receipts.path.read_bytes() == b"", "applied receipts are not kept"
    async with running(sender):
        await sender.drain(10)
    first, second, third = await rows(database)
    assert (first.status, first.tg_message_id) == (OutboxStatus.SENT, 501)
    assert (second.status, second.tg_message_id) == (OutboxStatus.SENT, None)
    assert third.status == OutboxStatus.SENT and not third.conversation_step
    assert texts(sb, 130) == [] and texts(sb, 131) == [], "nothing sent twice"
    assert texts(sb, 132) == ["sent again since"]


async def test_receipts_are_written_as_sends_are_answered_and_emptied_once_recorded(
    database: Database,
    sb: Any,
    make_sender: Callable[..., OutboxSender],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(receipts_module, "ROLL_OVER_BYTES", 40)
    for chat in range(140, 146):
        sb.user(chat)
    receipts = Receipts(tmp_path / "data" / "receipts.log")
    written: list[str] = []
    note = receipts.note

    def spy(outbox_id: int, attempt: int, message_id: int | None) -> bool:
        written.append(f"{outbox_id} {attempt} {message_id}")
        return note(outbox_id, attempt, message_id)

    monkeypatch.setattr(receipts, "note", spy)
    await queue(database, *({"key": f"k{c}", "chat_id": c, "text": "hi"} for c in range(140, 146)))
    sender = make_sender(receipts=receipts)
    async with running(sender):
        await sender.drain(10)
    sent = {r.id: r.tg_message_id for r in await rows(database)}
    assert sorted(written) == sorted(f"{i} 1 {m}" for i, m in sent.items()), "one per send"
    assert receipts.path.stat().st_size < 40, "emptied once everything in it was recorded"
    receipts.close()


def test_a_receipt_whose_send_is_not_yet_recorded_survives_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database could not record send 1 (or not yet): however often the file is
    rewritten, its receipt stays for the next start; the recorded ones go."""
    monkeypatch.setattr(receipts_module, "ROLL_OVER_BYTES", 1)
    receipts = Receipts(tmp_path / "receipts.log")
    for outbox_id in (1, 2, 3):
        assert receipts.note(outbox_id, 1, 100 + outbox_id)
    receipts.recorded(2)
    receipts.recorded(3)
    assert receipts.read() == [receipts_module.Receipt(1, 1, 101)]
    receipts.note(4, 2, None)
    receipts.recorded(4)
    assert receipts.read() == [receipts_module.Receipt(1, 1, 101)]
    receipts.close()


async def test_recovery_copes_with_more_receipts_than_a_query_takes_parameters(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], tmp_path: Path
) -> None:
    """A clean stop keeps the file; a busy bot can leave tens of thousands of receipts in it
    (asyncpg refuses a query with more than 32,767 parameters)."""
    sb.user(160)
    await queue(database, {"key": "q", "chat_id": 160, "text": "hello", "conversation_step": True})
    step = await mark_sending(database, "q")
    receipts = Receipts(tmp_path / "receipts.log")
    for outbox_id in range(1_000_000, 1_040_000):  # sends long since recorded
        receipts.note(outbox_id, 1, outbox_id)
    receipts.note(step, 1, 42)
    receipts.close()
    assert await make_sender(receipts=Receipts(receipts.path)).recover() == 0
    (row,) = await rows(database)
    assert (row.status, row.tg_message_id) == (OutboxStatus.SENT, 42)
    assert texts(sb, 160) == []


async def test_a_receipt_that_cannot_be_written_costs_only_its_protection(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], tmp_path: Path
) -> None:
    sb.user(150)
    (tmp_path / "not-a-dir").write_text("")
    receipts = Receipts(tmp_path / "not-a-dir" / "receipts.log")
    await queue(database, {"key": "x", "chat_id": 150, "text": "still sent"})
    sender = make_sender(receipts=receipts)
    async with running(sender):
        await sender.drain(10)
    (row,) = await rows(database)
    assert row.status == OutboxStatus.SENT and texts(sb, 150) == ["still sent"]
    assert receipts.read() == []


async def test_a_conversation_step_whose_outcome_is_unknown_is_sent_once_more(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    """A timeout after Telegram accepted it: the step is sent once more (seen twice at worst),
    and a second unknown outcome is recorded, never a loop."""
    sb.user(122)
    sb.faults.hang_after_accept(2, seconds=2.0, method="sendMessage")
    await queue(
        database, {"key": "q2", "chat_id": 122, "text": "next question", "conversation_step": True}
    )
    sender = make_sender()
    async with running(sender):
        await sender.drain(15)
        await asyncio.sleep(0.5)
    (row,) = await rows(database)
    assert row.status == OutboxStatus.UNKNOWN
    assert texts(sb, 122) == ["next question", "next question"], "twice, never more"


async def test_per_chat_order_survives_retries(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    sb.user(113)
    sb.user(114)
    sb.faults.fail_next(1, status=502, method="sendMessage")  # hits the very first send
    messages = []
    for i in range(4):
        messages.append({"key": f"o113-{i}", "chat_id": 113, "text": f"a{i}"})
        messages.append({"key": f"o114-{i}", "chat_id": 114, "text": f"b{i}"})
    await queue(database, *messages)
    sender = make_sender()
    async with running(sender):
        await sender.drain(20)
    assert texts(sb, 113) == ["a0", "a1", "a2", "a3"]
    assert texts(sb, 114) == ["b0", "b1", "b2", "b3"]
    assert sb.flood_violations == []
    assert sb.count_status(429) == 0


async def test_not_before_is_respected(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    sb.user(115)
    await queue(
        database,
        {
            "key": "n1",
            "chat_id": 115,
            "text": "later",
            "not_before": utcnow() + timedelta(seconds=2.0),
        },
    )
    sender = make_sender()
    async with running(sender):
        await asyncio.sleep(0.3)
        assert texts(sb, 115) == []
        await sender.drain(5)
    assert texts(sb, 115) == ["later"]


async def test_send_document_from_the_data_folder(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender], tmp_path: Path
) -> None:
    sb.user(116)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "log.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    await queue(
        database,
        {
            "key": "doc1",
            "chat_id": 116,
            "method": "sendDocument",
            "text": "Your <b>export</b>",
            "payload": {"document": {"path": "exports/log.csv"}},
        },
        {
            "key": "doc2",
            "chat_id": 116,
            "method": "sendDocument",
            "payload": {"document": {"path": "../outside.csv"}},
        },
        {
            "key": "doc3",
            "chat_id": 116,
            "method": "sendDocument",
            "payload": {"document": {"path": "exports/missing.csv"}},
        },
    )
    sender = make_sender()
    async with running(sender):
        await sender.drain(10)
    first, outside, missing = await rows(database)
    assert first.status == OutboxStatus.SENT
    (message,) = sb.sent_to(116)
    assert message["document"]["file_name"] == "log.csv"
    assert message["caption"] == "Your export"
    assert outside.status == OutboxStatus.FAILED and "leaves the data folder" in (
        outside.last_error or ""
    )
    assert missing.status == OutboxStatus.FAILED and missing.last_error == (
        "unsendable: FileNotFoundError"
    )


async def test_cancelling_run_lets_in_flight_sends_finish(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    sb.user(117)
    sb.faults.slow_seconds = 0.3
    await queue(database, {"key": "c1", "chat_id": 117, "text": "slow"})
    sender = make_sender()
    async with running(sender):
        await asyncio.sleep(0.15)  # the request is on its way
    (row,) = await rows(database)
    assert row.status == OutboxStatus.SENT
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


# -- quoted words ----------------------------------------------------------------------------


async def test_quoted_words_are_cleared_once_sent_and_never_reach_telegram_as_a_field(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    """A row marked as quoting someone keeps its method and chat but loses its text once sent
    (or failed); an ordinary row keeps its text; the mark itself is never sent."""
    sb.user(130)
    await queue(
        database,
        {"key": "w1", "chat_id": 130, "text": SECRET_TEXT, "quotes": True},
        {"key": "w2", "chat_id": 130, "text": "an ordinary reply"},
        {"key": "w3", "chat_id": 555_001, "text": SECRET_TEXT, "quotes": True},  # no such chat
    )
    sender = make_sender()
    async with running(sender):
        await sender.drain(10)
    quoted, ordinary, failed = await rows(database)
    assert texts(sb, 130) == [SECRET_TEXT, "an ordinary reply"], "sent as usual"
    assert quoted.status == OutboxStatus.SENT and quoted.method == "sendMessage"
    assert quoted.chat_id == 130 and "text" not in quoted.payload
    assert failed.status == OutboxStatus.FAILED and "text" not in failed.payload
    assert ordinary.payload["text"] == "an ordinary reply"
    assert all("quotes_own_words" not in str(r.params) for r in send_requests(sb))


async def test_a_quoting_step_keeps_its_words_until_it_is_settled(
    database: Database, sb: Any, make_sender: Callable[..., OutboxSender]
) -> None:
    """Caught mid-send by a crash: a quoting conversation step keeps its text to be sent
    again (and loses it once sent); a quoting row that becomes unknown loses it at once."""
    sb.user(131)
    sb.user(132)
    await queue(
        database,
        {
            "key": "s131",
            "chat_id": 131,
            "text": "step " + SECRET_TEXT,
            "quotes": True,
            "conversation_step": True,
        },
        {"key": "u132", "chat_id": 132, "text": SECRET_TEXT, "quotes": True},
    )
    async with database.transaction() as session:
        for row in (await session.scalars(select(OutboxMessage))).all():
            row.status = OutboxStatus.SENDING
    sender = make_sender()
    assert await sender.recover() == 2
    step, unknown = await rows(database)
    assert step.status == OutboxStatus.PENDING and step.payload["text"].startswith("step")
    assert unknown.status == OutboxStatus.UNKNOWN and "text" not in unknown.payload
    async with running(sender):
        await sender.drain(10)
    (step, _) = await rows(database)
    assert texts(sb, 131) == ["step " + SECRET_TEXT]
    assert step.status == OutboxStatus.SENT and "text" not in step.payload
