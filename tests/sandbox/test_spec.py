"""Every request the bot makes and every answer the sandbox gives match the Bot API spec."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bot.sandbox import BotApiSpec, SandboxTelegram, find_spec_path
from bot.sandbox.spec import ENV_VAR
from bot.sandbox.users import TINY_PNG
from tests.sandbox.conftest import make_bot

KB = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Yes", callback_data="y"),
            InlineKeyboardButton("No", callback_data="n"),
        ]
    ]
)


def test_find_spec_path_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "api.json"
    target.write_text('{"version": "x", "methods": {}, "types": {}}')
    monkeypatch.setenv(ENV_VAR, str(target))
    assert find_spec_path() == target
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing.json"))
    assert find_spec_path() is None


def test_check_object_rules(api_spec: BotApiSpec) -> None:
    user = {"id": 1, "is_bot": False, "first_name": "A"}
    assert api_spec.check_object("User", user) == []
    assert any(
        "missing required field 'first_name'" in e
        for e in api_spec.check_object("User", {"id": 1, "is_bot": False})
    )
    assert any(
        "unknown field 'nick'" in e for e in api_spec.check_object("User", {**user, "nick": "x"})
    )
    assert any(
        "expected Integer" in e for e in api_spec.check_object("User", {**user, "id": True})
    )
    assert any("expected Integer" in e for e in api_spec.check_object("User", {**user, "id": "1"}))
    assert api_spec.check_object("Array of User", [user, user]) == []
    member = {"status": "kicked", "user": user, "until_date": 0}
    assert api_spec.check_object("ChatMember", member) == []
    assert api_spec.check_object("ChatMember", {"status": "kicked", "user": user}) != []
    assert any(
        "unknown status" in e
        for e in api_spec.check_object("ChatMember", {"status": "boss", "user": user})
    )
    chat = {"id": 1, "type": "private"}
    inaccessible = {"chat": chat, "message_id": 3, "date": 0}
    assert api_spec.check_object("MaybeInaccessibleMessage", inaccessible) == []
    assert api_spec.check_object("Float", 1) == []
    assert api_spec.check_object("Float", 1.5) == []


def test_check_request_rules(api_spec: BotApiSpec) -> None:
    assert api_spec.check_request("sendMessage", {"chat_id": 1, "text": "x"}) == []
    assert api_spec.check_request("SENDMESSAGE", {"chat_id": "1", "text": "x"}) == []
    assert api_spec.check_request("sendMessage", {"chat_id": 1}) == [
        "sendMessage: missing required parameter 'text'"
    ]
    assert api_spec.check_request("sendMessage", {"chat_id": 1, "text": "x", "colour": 1}) == [
        "sendMessage: unknown parameter 'colour'"
    ]
    # form-encoded JSON strings are decoded for object-typed params
    assert (
        api_spec.check_request(
            "sendMessage", {"chat_id": 1, "text": "x", "reply_markup": '{"inline_keyboard": []}'}
        )
        == []
    )
    assert api_spec.check_request("noSuchMethod", {}) == ["noSuchMethod: unknown method"]
    assert api_spec.check_result("getMe", {"id": 1, "is_bot": True, "first_name": "B"}) == []
    assert api_spec.check_result("deleteMessage", True) == []
    assert api_spec.check_result("deleteMessage", "yes") != []


async def test_varied_session_has_no_spec_errors(api_spec: BotApiSpec) -> None:
    async with SandboxTelegram(spec=api_spec) as sb, make_bot(sb) as bot:
        user = sb.user(42, "Ann", username="ann_partner")
        group = sb.group(-100, "Connectors")
        group.add_bot(user)
        group.send_text(user, "hi @companion_sandbox_bot #team")
        group.send_command(user, "stats")
        user.send_command("start", "INVITE")
        user.send_text("hello https://example.org")
        user.send_voice(4, caption="voice")
        user.send_sticker()
        user.send_photo("photo")
        sent = user.send_text("tpyo")
        user.edit(sent["message"]["message_id"], "typo")
        await bot.set_my_commands([("start", "Start"), ("help", "Help")])
        await bot.get_my_commands()
        await bot.send_chat_action(42, "typing")
        question = await bot.send_message(
            42,
            "<b>How</b> are <i>you</i>? <a href='https://x.org'>link</a>",
            parse_mode="HTML",
            reply_markup=KB,
        )
        user.press(question.message_id, "y")
        user.press(999, "stale")
        updates = await bot.get_updates(timeout=0)
        for upd in updates:
            if upd.callback_query and upd.callback_query.message:
                await upd.callback_query.answer("Thanks")
            if upd.message and upd.message.voice:
                file = await upd.message.voice.get_file()
                await file.download_as_bytearray()
        await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
        await bot.edit_message_text("Thanks!", 42, question.message_id)
        await bot.edit_message_reply_markup(42, question.message_id, reply_markup=KB)
        await bot.send_message(42, "pick", reply_markup=ReplyKeyboardMarkup([["A", "B"]]))
        reply = await bot.send_message(
            42, "reply", reply_parameters=telegram.ReplyParameters(question.message_id)
        )
        assert reply.reply_to_message is not None
        await bot.delete_message(42, reply.message_id)
        doc = await bot.send_document(
            42, b"a,b\n1,2\n", filename="x.csv", caption="<b>csv</b>", parse_mode="HTML"
        )
        assert doc.document is not None
        await bot.get_file(doc.document.file_id)
        await bot.send_photo(42, TINY_PNG, caption="p")
        await bot.send_voice(42, b"OggS", duration=1)
        await bot.get_chat(42)
        await bot.get_chat(-100)
        await bot.send_message(-100, "group post")
        await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="abc")
        await bot.get_webhook_info()
        await bot.delete_webhook()
        await bot.delete_my_commands()
        user.block()
        with pytest.raises(Forbidden):
            await bot.send_message(42, "blocked")
        user.unblock()
        with pytest.raises(BadRequest):
            await bot.send_message(42, "<b>bad", parse_mode="HTML")
        await bot.get_updates(timeout=0)
        assert sb.spec_errors == []
        assert len(sb.requests) > 25


async def test_ptb_application_polling_session(api_spec: BotApiSpec) -> None:
    async with SandboxTelegram(spec=api_spec) as sb:
        user = sb.user(42)

        async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            assert update.effective_message is not None
            await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

        app = (
            Application.builder()
            .token(sb.token)
            .base_url(sb.base_url)
            .base_file_url(sb.base_file_url)
            .build()
        )
        app.add_handler(MessageHandler(filters.TEXT, echo))
        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=1)
            user.send_text("one")
            user.send_text("two")
            messages = await sb.wait_for_messages(42, 2, timeout=5)
            await app.updater.stop()
            await app.stop()
        assert [m["text"] for m in messages] == ["echo: one", "echo: two"]
        assert sb.pending_updates == 0
        assert sb.spec_errors == []


async def test_wrong_requests_are_reported(api_spec: BotApiSpec) -> None:
    async with SandboxTelegram(spec=api_spec) as sb, make_bot(sb) as bot:
        sb.user(42)
        await bot.send_message(42, "x", api_kwargs={"bogus_param": 1})
        assert sb.spec_errors == ["sendMessage: unknown parameter 'bogus_param'"]
        async with httpx.AsyncClient() as client:
            await client.post(f"{sb.base_url}{sb.token}/sendMessage", json={"chat_id": 42})
        assert "sendMessage: missing required parameter 'text'" in sb.spec_errors
        sb.push_update({"message": {"text": "no id, date or chat"}})
        assert any("Message is missing required field" in e for e in sb.spec_errors)
        await asyncio.sleep(0)
