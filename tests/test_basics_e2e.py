"""End to end through the sandbox: outsiders, /help, bad input, failures and blocking."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, CommandHandler

from storage.models import (
    AuditEvent,
    InboxStatus,
    InboxUpdate,
    OutboxMessage,
    Person,
    PersonStatus,
    TelegramIdentity,
)
from tests.conftest import CONNECTOR_ID
from tests.support import count, raw_message, settle


async def test_outsider_gets_one_neutral_reply_and_nothing_is_stored(companion, sandbox, database):
    stranger = sandbox.user(5001, "Alex")
    stranger.send_command("start")
    [reply] = await sandbox.wait_for_messages(5001, 1)
    assert "invite link" in reply["text"]
    stranger.send_text("hello?")
    stranger.send_command("help")
    stranger.send_sticker()
    await settle(companion, sandbox)
    assert len(sandbox.sent_to(5001)) == 1, "an outsider is answered once, not every time"
    assert await count(database, Person) == 0
    assert await count(database, TelegramIdentity) == 0
    assert await count(database, OutboxMessage) == 0
    async with database.sessions() as session:
        payloads = (await session.execute(select(InboxUpdate.payload))).scalars().all()
    assert payloads and all(p is None for p in payloads), "raw updates are not kept"


async def test_allow_listed_connector_is_enrolled_and_gets_help(companion, sandbox, database):
    connector = sandbox.user(CONNECTOR_ID, "Jo")
    connector.send_command("help")
    [reply] = await sandbox.wait_for_messages(CONNECTOR_ID, 1)
    assert "/help" in reply["text"]
    assert "116 123" in reply["text"], "help says where to get help at any hour"
    async with database.sessions() as session:
        person = (await session.execute(select(Person))).scalar_one()
        assert person.role == "connector"
        audit = (await session.execute(select(AuditEvent))).scalar_one()
        assert audit.action == "role.granted"


async def test_bad_input_from_a_member_gets_a_kind_reply_and_no_crash(
    companion, sandbox, database
):
    connector = sandbox.user(CONNECTOR_ID, "Jo")
    connector.send_command("help")
    await sandbox.wait_for_messages(CONNECTOR_ID, 1)
    connector.send_command("no_such_command")
    connector.send_sticker()
    connector.send_photo()
    connector.send_text("x" * 4096)
    connector.edit(1, "edited text")
    await settle(companion, sandbox)
    texts = [m["text"] for m in sandbox.sent_to(CONNECTOR_ID)[1:]]
    assert len(texts) == 4 and all("/help" in t for t in texts)
    [message] = sandbox.sent_to(CONNECTOR_ID)[:1]
    sandbox.user(CONNECTOR_ID).press(message, "forged:data:1234")
    await settle(companion, sandbox)
    assert len(sandbox.callback_answers) == 1
    assert await count(database, InboxUpdate, InboxUpdate.status == InboxStatus.FAILED) == 0


async def test_a_failing_handler_is_recorded_and_does_not_block_the_next_update(
    companion, sandbox, database
):
    async def boom(update: Update, context) -> None:
        raise RuntimeError("handler bug")

    companion.application.add_handler(CommandHandler("boom", boom), group=1)
    connector = sandbox.user(CONNECTOR_ID, "Jo")
    connector.send_command("help")
    await sandbox.wait_for_messages(CONNECTOR_ID, 1)
    connector.send_command("boom")
    connector.send_command("help")
    await settle(companion, sandbox)
    failed = await count(database, InboxUpdate, InboxUpdate.status == InboxStatus.FAILED)
    assert failed == 1
    texts = [m["text"] for m in sandbox.sent_to(CONNECTOR_ID)]
    assert any("Reference: update-" in t and "RuntimeError" in t for t in texts), texts
    assert any("Sorry, something went wrong" in t for t in texts)
    assert texts[-1].startswith("Here is what you can do"), "the next update still works"
    assert all("handler bug" not in t for t in texts), "the alert carries no error text"


async def test_a_failure_mid_batch_redoes_only_what_is_safe_to_redo(
    companion, sandbox, database, monkeypatch
):
    """One batch: replies queued in the database are sent once each, however the batch is
    redone after a failure, and what a handler did through Telegram itself is never repeated."""
    import bot.transport.inbox
    from bot.transport.inbox import store_updates

    monkeypatch.setattr(
        bot.transport.inbox, "MAX_BATCH_SECONDS", 60.0
    )  # keep the burst in one batch

    async def poke(update: Update, context) -> None:
        await context.bot.send_message(chat_id=update.effective_chat.id, text="poked")
        await context.reply(update, "fallback/not_understood")

    async def boom(update: Update, context) -> None:
        await context.bot.send_message(chat_id=update.effective_chat.id, text="before boom")
        raise RuntimeError("handler bug")

    companion.application.add_handler(CommandHandler("poke", poke), group=1)
    companion.application.add_handler(CommandHandler("boom", boom), group=1)
    connector = sandbox.user(CONNECTOR_ID, "Jo")
    connector.send_command("help")
    await sandbox.wait_for_messages(CONNECTOR_ID, 1)
    await settle(companion, sandbox)

    burst = ["help", "poke", "help", "help", "boom", "help"]
    await store_updates(
        database,
        [raw_message(900_000 + i, CONNECTOR_ID, "Jo", f"/{c}") for i, c in enumerate(burst)],
    )
    companion.worker.wake()
    await settle(companion, sandbox)

    texts = [m["text"] for m in sandbox.sent_to(CONNECTOR_ID)[1:]]
    assert texts.count("poked") == 1
    assert texts.count("before boom") == 1
    helps = [t for t in texts if t.startswith("Here is what you can do")]
    assert len(helps) == 4, texts
    assert len([t for t in texts if "/help" in t and not t.startswith("Here is")]) >= 1
    failed = await count(database, InboxUpdate, InboxUpdate.status == InboxStatus.FAILED)
    assert failed == 1
    done = await count(
        database,
        InboxUpdate,
        InboxUpdate.status == InboxStatus.DONE,
        InboxUpdate.update_id.between(900_000, 900_099),
    )
    assert done == 5
    async with database.sessions() as session:
        keys = (await session.execute(select(OutboxMessage.idempotency_key))).scalars().all()
    assert len(keys) == len(set(keys))


class _LostLock(Exception):
    """What asyncpg raises when PostgreSQL picks this transaction to end a deadlock."""

    sqlstate = "40P01"


def _lost_lock() -> DBAPIError:
    return DBAPIError("UPDATE person SET status=...", {}, _LostLock("deadlock detected"))


@pytest.mark.parametrize(
    "case",
    [
        (1, False, 0),  # lost once: run again, kept, answered once
        (2, False, 0),
        (3, False, 1),  # lost every time: recorded as failed, as any other failure
        (1, True, 1),  # it had already called Telegram: never run twice
    ],
)
async def test_an_update_that_loses_a_deadlock_is_run_again_unless_it_called_telegram(
    companion, sandbox, database, case
):
    """PostgreSQL ends a deadlock by failing one of the two transactions. That is no fault of
    the update, so it runs again (its first try's rows rolled back) rather than being lost."""
    losses, calls_telegram, failed = case
    runs = 0

    async def contended(update: Update, context) -> None:
        nonlocal runs
        runs += 1
        await context.reply(update, "fallback/not_understood")  # a row that must appear once
        if calls_telegram:
            await context.bot.send_message(chat_id=update.effective_chat.id, text="direct")
        if runs <= losses:
            raise _lost_lock()

    companion.application.add_handler(CommandHandler("contended", contended), group=1)
    connector = sandbox.user(CONNECTOR_ID, "Jo")
    connector.send_command("help")
    await sandbox.wait_for_messages(CONNECTOR_ID, 1)
    connector.send_command("contended")
    await settle(companion, sandbox)

    texts = [m["text"] for m in sandbox.sent_to(CONNECTOR_ID)[1:]]
    assert runs == (1 if calls_telegram else min(losses + 1, 3))
    assert await count(database, InboxUpdate, InboxUpdate.status == InboxStatus.FAILED) == failed
    apologies = [t for t in texts if "Sorry, something went wrong" in t]
    replies = [t for t in texts if "/help" in t and t not in apologies]
    assert len(apologies) == failed
    # kept: the bot's own "not understood" and the handler's row, each once; failed: neither
    assert len(replies) == 2 * (1 - failed), texts
    assert texts.count("direct") == (1 if calls_telegram else 0)


async def test_blocking_the_bot_marks_the_person_unreachable(companion, sandbox, database):
    connector = sandbox.user(CONNECTOR_ID, "Jo")
    connector.send_command("help")
    await sandbox.wait_for_messages(CONNECTOR_ID, 1)
    connector.block()
    await settle(companion, sandbox)
    async with database.sessions() as session:
        person = (await session.execute(select(Person))).scalar_one()
    assert person.status == PersonStatus.UNREACHABLE
    connector.unblock()
    await settle(companion, sandbox)
    async with database.sessions() as session:
        person = (await session.execute(select(Person))).scalar_one()
    assert person.status == PersonStatus.ACTIVE


async def test_button_answers_are_made_after_the_commit_and_only_for_what_committed(
    companion, sandbox, database, monkeypatch
):
    """A batch of presses: each committed one gets its toast and its tick (a chat's in order),
    the one that failed gets no "saved", and one redone after the failure answers once."""
    import bot.transport.inbox
    from bot.transport.inbox import store_updates

    monkeypatch.setattr(
        bot.transport.inbox, "MAX_BATCH_SECONDS", 60.0
    )  # keep the presses in one batch
    seen_in_transaction: list[bool] = []

    async def tick(update: Update, context) -> None:
        query = update.callback_query
        # No press of this batch is answered while the batch's transaction is open.
        seen_in_transaction.append(
            not any(q.startswith("q9500") for q in sandbox.callback_answers)
        )
        value = query.data.split(":")[1]
        context.answer_button(update, f"saved {value}")
        context.edit_buttons(update, markup(chosen=value))
        if value == "boom":
            raise RuntimeError("handler bug")
        raise ApplicationHandlerStop

    def markup(chosen: str | None = None) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(("✓ " if v == chosen else "") + v, callback_data=f"t:{v}")
                    for v in ("1", "2", "boom")
                ]
            ]
        )

    companion.application.add_handler(CallbackQueryHandler(tick, pattern=r"^t:"), group=-10)
    connector = sandbox.user(CONNECTOR_ID, "Jo")
    connector.send_command("help")
    await sandbox.wait_for_messages(CONNECTOR_ID, 1)
    await settle(companion, sandbox)
    question = await companion.application.bot.send_message(
        CONNECTOR_ID, "pick", reply_markup=markup()
    )
    stored = next(m for m in sandbox.sent_to(CONNECTOR_ID) if m["text"] == "pick")

    def press(update_id: int, value: str) -> dict:
        query_id = f"q{update_id}"
        sandbox._register_callback(query_id)
        return {
            "update_id": update_id,
            "callback_query": {
                "id": query_id,
                "from": {"id": CONNECTOR_ID, "is_bot": False, "first_name": "Jo"},
                "message": stored,
                "chat_instance": "1",
                "data": f"t:{value}",
            },
        }

    presses = [press(950_000, "1"), press(950_001, "2"), press(950_002, "boom")]
    await store_updates(database, presses)
    companion.worker.wake()
    await settle(companion, sandbox)

    assert len(seen_in_transaction) == 5 and all(seen_in_transaction)  # 3, then 2 redone
    answers = sandbox.callback_answers
    assert answers["q950000"]["text"] == "saved 1"
    assert answers["q950001"]["text"] == "saved 2"
    assert answers["q950002"].get("text") is None, "a failed press: its spinner just stops"
    made = [r.params["callback_query_id"] for r in sandbox.requests_for("answerCallbackQuery")]
    assert made.count("q950000") == made.count("q950001") == 1, "redone, answered once"
    [now] = [m for m in sandbox.sent_to(CONNECTOR_ID) if m["message_id"] == question.message_id]
    labels = [b["text"] for b in now["reply_markup"]["inline_keyboard"][0]]
    assert labels == ["1", "✓ 2", "boom"], "the chat's edits were made in order"
    failed = await count(database, InboxUpdate, InboxUpdate.status == InboxStatus.FAILED)
    assert failed == 1

    # A press under a message too old to change: answered, its buttons left alone.
    edits = len(sandbox.requests_for("editMessageReplyMarkup"))
    gone = sandbox.user(CONNECTOR_ID).press(999_999, "t:1")
    await settle(companion, sandbox)
    assert answers[gone["callback_query"]["id"]]["text"] == "saved 1"
    assert len(sandbox.requests_for("editMessageReplyMarkup")) == edits
