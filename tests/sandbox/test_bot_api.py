"""The sandbox speaks the Bot API to a real python-telegram-bot ``Bot`` over HTTP."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import telegram
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken

from bot.sandbox import SandboxTelegram
from bot.sandbox.users import TINY_PNG
from tests.sandbox.conftest import make_bot

KB = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="ans:yes")]])


async def test_get_me(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot
    assert me.username == "companion_sandbox_bot"
    assert me.id == 123456
    assert sandbox.requests[0].method == "getMe"


async def test_wrong_token_and_unknown_method(sandbox: SandboxTelegram) -> None:
    wrong = telegram.Bot("999:wrong", base_url=sandbox.base_url)
    with pytest.raises(InvalidToken):
        await wrong.initialize()
    await wrong.shutdown()
    async with httpx.AsyncClient() as client:
        resp = await client.post(f"{sandbox.base_url}{sandbox.token}/noSuchMethod")
        assert resp.status_code == 404
        assert resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        resp = await client.get(f"{sandbox.base_url}{sandbox.token}/GETME")
        assert resp.json()["ok"] is True
        resp = await client.get(f"{sandbox.base_url}bad/getMe")
        assert resp.status_code == 401
        assert resp.json()["description"] == "Unauthorized"


async def test_send_message_html_and_keyboard(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42, "Ann")
    msg = await bot.send_message(
        42, "<b>Hello</b> &amp; <i>welcome</i> 😀", parse_mode="HTML", reply_markup=KB
    )
    assert msg.text == "Hello & welcome 😀"
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [
        ("bold", 0, 5),
        ("italic", 8, 7),
    ]
    assert msg.message_id == 1
    assert msg.from_user is not None and msg.from_user.is_bot
    sent = sandbox.sent_to(42)
    assert sent[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ans:yes"
    assert isinstance(sent[0]["date"], int)
    second = await bot.send_message(42, "again")
    assert second.message_id == 2


async def test_reply_keyboard_and_removal(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42)
    msg = await bot.send_message(42, "pick", reply_markup=ReplyKeyboardMarkup([["A", "B"]]))
    assert msg.reply_markup is None  # Telegram only echoes inline keyboards
    assert sandbox.reply_keyboard(42) == {"keyboard": [[{"text": "A"}, {"text": "B"}]]}
    await bot.send_message(42, "done", reply_markup=ReplyKeyboardRemove())
    assert sandbox.reply_keyboard(42) is None


async def test_text_limits(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42)
    await bot.send_message(42, "x" * 4096)
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(42, "x" * 4097)
    # UTF-16: an emoji is two code units
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(42, "😀" * 2049)
    # markup does not count
    await bot.send_message(42, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)empty"):
        await bot.send_message(42, "   ")


async def test_callback_data_too_long(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42)
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="é" * 32)]])
    await bot.send_message(42, "fits in 64 bytes", reply_markup=ok)
    bad = InlineKeyboardMarkup([[InlineKeyboardButton("no", callback_data="x" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(42, "too long", reply_markup=bad)
    assert len(sandbox.sent_to(42)) == 1


@pytest.mark.parametrize(
    "markup",
    ["<b>open", "<blink>x</blink>", "a < b", "<b>x</i>", "</b>", '<span class="x">s</span>'],
)
async def test_bad_html(sandbox: SandboxTelegram, bot: telegram.Bot, markup: str) -> None:
    sandbox.user(42)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(42, markup, parse_mode="HTML")


async def test_unknown_chat(bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(777, "hi")


async def test_get_updates_offset_limit(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    user = sandbox.user(42)
    for i in range(5):
        user.send_text(f"m{i}")
    assert sandbox.pending_updates == 5
    first = await bot.get_updates(limit=2)
    assert [u.message.text for u in first if u.message] == ["m0", "m1"]
    rest = await bot.get_updates(offset=first[-1].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["m2", "m3", "m4"]
    assert sandbox.pending_updates == 3
    empty = await bot.get_updates(offset=rest[-1].update_id + 1, timeout=0)
    assert empty == ()
    assert sandbox.pending_updates == 0


async def test_long_poll_returns_on_new_update(
    sandbox: SandboxTelegram, bot: telegram.Bot
) -> None:
    user = sandbox.user(42)
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    user.send_text("wake up")
    updates = await asyncio.wait_for(poll, 3)
    assert updates[0].message is not None and updates[0].message.text == "wake up"
    assert loop.time() - started < 2


async def test_concurrent_get_updates_conflict(
    sandbox: SandboxTelegram, bot: telegram.Bot
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    async with make_bot(sandbox) as other_instance:  # a second bot process with the same token
        assert await other_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
        await asyncio.wait_for(first, 3)


async def test_allowed_updates_are_remembered(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    user = sandbox.user(42)
    await bot.get_updates(allowed_updates=["callback_query"], timeout=0)
    user.send_text("ignored")
    msg = await bot.send_message(42, "q", reply_markup=KB)
    user.press(msg.message_id, "ans:yes")
    updates = await bot.get_updates(timeout=0)  # no allowed_updates: the filter stays
    assert [u.callback_query is not None for u in updates] == [True]


async def test_press_and_answer_callback(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    user = sandbox.user(42)
    await bot.send_message(42, "Question?", reply_markup=KB)
    message = sandbox.sent_to(42)[0]
    update = user.press(message, "forged:data")
    (received,) = await bot.get_updates()
    query = received.callback_query
    assert query is not None
    assert query.data == "forged:data"
    assert query.id == update["callback_query"]["id"]
    assert query.message is not None and query.message.message_id == message["message_id"]
    assert await query.answer("Thanks")
    assert sandbox.callback_answers[query.id]["text"] == "Thanks"
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(BadRequest, match=r"(?i)query ID is invalid"):
        await bot.answer_callback_query("12345")


async def test_edit_and_delete(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42)
    msg = await bot.send_message(42, "v1", reply_markup=KB)
    edited = await bot.edit_message_text("<b>v2</b>", 42, msg.message_id, parse_mode="HTML")
    assert isinstance(edited, telegram.Message)
    current = sandbox.sent_to(42)[0]
    assert current["text"] == "v2"
    assert current["entities"][0]["type"] == "bold"
    assert "reply_markup" not in current  # editing text without markup drops the keyboard
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("<b>v2</b>", 42, msg.message_id, parse_mode="HTML")
    await bot.edit_message_reply_markup(42, msg.message_id, reply_markup=KB)
    assert sandbox.sent_to(42)[0]["reply_markup"] == KB.to_dict()
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(42, msg.message_id, reply_markup=KB)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", 42, 99)
    assert await bot.delete_message(42, msg.message_id)
    assert sandbox.sent_to(42) == []
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(42, msg.message_id)


async def test_document_and_photo_round_trip(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42)
    payload = bytes(range(256)) * 40
    doc_msg = await bot.send_document(42, payload, filename="export.csv", caption="Export")
    assert doc_msg.document is not None
    assert doc_msg.document.file_size == len(payload)
    assert doc_msg.document.file_name == "export.csv"
    file = await bot.get_file(doc_msg.document.file_id)
    assert bytes(await file.download_as_bytearray()) == payload
    again = await bot.send_document(42, doc_msg.document.file_id)
    assert again.document is not None
    assert again.document.file_unique_id == doc_msg.document.file_unique_id

    photo_msg = await bot.send_photo(42, TINY_PNG, caption="<i>pic</i>", parse_mode="HTML")
    assert photo_msg.photo[-1].width == 1
    assert photo_msg.caption == "pic"
    photo_file = await bot.get_file(photo_msg.photo[-1].file_id)
    assert bytes(await photo_file.download_as_bytearray()) == TINY_PNG
    with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(42, b"not an image")
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_document(42, "no-such-file-id")
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nope")


async def test_voice_note_downloadable(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    user = sandbox.user(42)
    raw = user.send_voice(duration=3)
    assert raw["message"]["voice"]["duration"] == 3
    (update,) = await bot.get_updates()
    assert update.message is not None and update.message.voice is not None
    voice = update.message.voice
    file = await voice.get_file()
    data = bytes(await file.download_as_bytearray())
    assert data.startswith(b"OggS")
    assert len(data) == voice.file_size


async def test_user_message_kinds(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    user = sandbox.user(42, "Ann", username="ann_p")
    user.send_command("start", "CODE123")
    user.send_sticker()
    user.send_photo(caption="look")
    sent = user.send_text("typo")
    user.edit(sent["message"]["message_id"], "fixed")
    updates = await bot.get_updates()
    start = updates[0].message
    assert start is not None
    assert start.text == "/start CODE123"
    assert start.entities[0].type == "bot_command"
    assert start.entities[0].length == len("/start")
    assert updates[1].message is not None and updates[1].message.sticker is not None
    assert updates[2].message is not None and updates[2].message.photo
    assert updates[4].edited_message is not None
    assert updates[4].edited_message.text == "fixed"
    assert start.from_user is not None and start.from_user.username == "ann_p"


async def test_block_gives_forbidden_and_member_update(
    sandbox: SandboxTelegram, bot: telegram.Bot
) -> None:
    user = sandbox.user(42)
    await bot.send_message(42, "before")
    user.block()
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(42, "after")
    (update,) = await bot.get_updates()
    assert update.my_chat_member is not None
    assert update.my_chat_member.new_chat_member.status == "kicked"
    user.unblock()
    await bot.send_message(42, "welcome back")
    assert [m["text"] for m in user.messages] == ["before", "welcome back"]


async def test_commands_chat_action_get_chat(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42, "Ann")
    assert await bot.set_my_commands([("start", "Start here"), ("help", "Help")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert [c["command"] for c in sandbox.commands] == ["start", "help"]
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([("Bad-Command", "x")])
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    assert await bot.send_chat_action(42, "typing")
    chat = await bot.get_chat(42)
    assert chat.first_name == "Ann"
    group = sandbox.group(-100, "Partners")
    assert (await bot.get_chat(-100)).title == "Partners"
    await bot.send_message(-100, "hello group")
    assert group.messages[0]["text"] == "hello group"


async def test_wait_for_messages(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42)

    async def later() -> None:
        await asyncio.sleep(0.1)
        await bot.send_message(42, "one")
        await bot.send_message(42, "two")

    task = asyncio.create_task(later())
    messages = await sandbox.wait_for_messages(42, 2, timeout=3)
    await task
    assert [m["text"] for m in messages] == ["one", "two"]
    with pytest.raises(TimeoutError, match=r"(?i)expected 3"):
        await sandbox.wait_for_messages(42, 3, timeout=0.1)


async def test_json_and_query_string_params(sandbox: SandboxTelegram) -> None:
    sandbox.user(42)
    base = f"{sandbox.base_url}{sandbox.token}"
    async with httpx.AsyncClient() as client:
        resp = await client.post(
            f"{base}/sendMessage",
            json={"chat_id": 42, "text": "json", "reply_markup": KB.to_dict()},
        )
        assert resp.json()["result"]["reply_markup"] == KB.to_dict()
        resp = await client.get(f"{base}/sendMessage", params={"chat_id": "42", "text": "q"})
        assert resp.json()["result"]["text"] == "q"
        resp = await client.post(f"{base}/sendMessage", data={"chat_id": "42", "text": "form"})
        assert resp.json()["result"]["message_id"] == 3
    assert sandbox.requests[-1].params == {"chat_id": 42, "text": "form"}


async def test_text_that_looks_like_json_stays_text(sandbox: SandboxTelegram) -> None:
    sandbox.user(42)
    async with httpx.AsyncClient() as client:
        resp = await client.post(
            f"{sandbox.base_url}{sandbox.token}/sendMessage",
            data={"chat_id": "42", "text": "[1, 2]", "reply_markup": '{"remove_keyboard": true}'},
        )
    assert resp.json()["result"]["text"] == "[1, 2]"
    assert sandbox.requests[-1].params["reply_markup"] == {"remove_keyboard": True}
