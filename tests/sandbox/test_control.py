"""The control HTTP API, used by the demo page and out-of-process tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib

import httpx
import telegram

from bot.sandbox import BotApiSpec, SandboxTelegram


async def test_user_actions_over_http(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        resp = await client.post(
            "/control/users/7/command", json={"command": "start", "payload": "ABC"}
        )
        assert resp.status_code == 200
        assert resp.json()["update"]["message"]["text"] == "/start ABC"
        resp = await client.post(
            "/control/users/7/text", json={"text": "hello", "first_name": "Jo"}
        )
        assert resp.json()["update"]["message"]["chat"]["id"] == 7
        await client.post("/control/users/7/sticker", json={})
        await client.post("/control/users/7/photo", json={"caption": "pic"})
        voice = base64.b64encode(b"OggS-test").decode()
        resp = await client.post(
            "/control/users/7/voice", json={"duration": 2, "data_base64": voice}
        )
        file_id = resp.json()["update"]["message"]["voice"]["file_id"]
        assert bytes(await (await bot.get_file(file_id)).download_as_bytearray()) == b"OggS-test"
        msg = await bot.send_message(7, "Q?")
        resp = await client.post(
            "/control/users/7/press", json={"message_id": msg.message_id, "data": "x"}
        )
        assert resp.json()["update"]["callback_query"]["data"] == "x"
        sent_id = (await client.post("/control/users/7/text", json={"text": "tpyo"})).json()
        resp = await client.post(
            "/control/users/7/edit",
            json={"message_id": sent_id["update"]["message"]["message_id"], "text": "typo"},
        )
        assert resp.json()["update"]["edited_message"]["text"] == "typo"
        resp = await client.post("/control/users/7/block", json={})
        assert resp.json()["update"]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
        await client.post("/control/users/7/unblock")
        resp = await client.post("/control/users/7/text", json={})
        assert resp.status_code == 400 and "text" in resp.json()["error"]
        resp = await client.post("/control/updates", json={"message": {"bogus": True}})
        assert resp.json()["update_id"] > 0
        state = (await client.get("/control/state")).json()
        assert state["pending_updates"] == 11
        assert state["requests_by_method"]["sendMessage"] == 1


async def test_long_poll_messages_and_snapshot(
    sandbox: SandboxTelegram, bot: telegram.Bot
) -> None:
    sandbox.user(7)
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        first = await bot.send_message(7, "one")
        poll = asyncio.create_task(
            client.get("/control/chats/7/messages", params={"after": first.message_id, "wait": 5})
        )
        await asyncio.sleep(0.2)
        assert not poll.done()
        await bot.send_message(7, "two")
        resp = await asyncio.wait_for(poll, 3)
        assert [m["text"] for m in resp.json()] == ["two"]
        snap = (await client.get("/control/chats/7/snapshot")).json()
        assert [m["text"] for m in snap["messages"]] == ["one", "two"]
        waiter = asyncio.create_task(
            client.get("/control/chats/7/snapshot", params={"version": snap["version"], "wait": 5})
        )
        await asyncio.sleep(0.1)
        await bot.edit_message_text("uno", chat_id=7, message_id=first.message_id)
        newer = (await asyncio.wait_for(waiter, 3)).json()
        assert newer["version"] > snap["version"]
        assert newer["messages"][0]["text"] == "uno"
        empty = await client.get("/control/chats/7/messages", params={"after": 99, "wait": 0.1})
        assert empty.json() == []


async def test_faults_limits_and_groups_over_http(
    sandbox: SandboxTelegram, bot: telegram.Bot
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        resp = await client.post(
            "/control/faults",
            json={
                "fail_next": {"n": 2, "status": 502},
                "slow_seconds": 0.01,
                "limits": {"enforce": True, "per_chat_per_second": 2},
            },
        )
        assert resp.json()["limits"]["enforce"] is True
        assert sandbox.limits.per_chat_per_second == 2
        assert len(sandbox.faults.to_dict()["failures"]) == 1
        await client.post("/control/faults", json={"clear": True, "limits": {"enforce": False}})
        assert sandbox.faults.to_dict()["failures"] == []
        resp = await client.post("/control/groups/-42", json={"title": "Partners"})
        assert resp.json() == {"id": -42, "type": "group", "title": "Partners"}
        resp = await client.post("/control/groups/-42/text", json={"user_id": 5, "text": "hi all"})
        assert resp.json()["update"]["message"]["chat"]["id"] == -42
        await bot.send_message(-42, "hello group")
        rows = (await client.get("/control/requests", params={"method": "sendMessage"})).json()
        assert rows[0]["params"]["chat_id"] == -42


async def test_answered_counts_successes_and_waits_for_more(
    sandbox: SandboxTelegram, bot: telegram.Bot
) -> None:
    """Benchmarks wait on the sandbox instead of polling it: the wait ends at the count."""
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        params: dict[str, str | int | float] = {"method": "sendMessage"}
        assert (await client.get("/control/answered", params=params)).json() == {"count": 0}
        await client.post("/control/users/8/text", json={"text": "hi"})
        await bot.send_message(8, "one")
        with contextlib.suppress(telegram.error.TelegramError):
            await bot.send_message(8, "x" * 5000)  # refused: not counted
        assert (await client.get("/control/answered", params=params)).json() == {"count": 1}

        waiting = asyncio.create_task(
            client.get("/control/answered", params={**params, "at_least": 3, "wait": 10})
        )
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await bot.send_message(8, "two")
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await bot.send_message(8, "three")
        assert (await asyncio.wait_for(waiting, 5)).json() == {"count": 3}

        timed_out = await client.get(
            "/control/answered", params={**params, "at_least": 9, "wait": 0.1}
        )
        assert timed_out.json() == {"count": 3}
        assert (await client.get("/control/answered")).status_code == 400


async def test_a_forwarded_message_over_http_is_spec_shaped(
    sandbox: SandboxTelegram, bot: telegram.Bot, api_spec: BotApiSpec
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        hidden = await client.post(
            "/control/users/7/forward", json={"text": "news", "author": "Paper"}
        )
        known = await client.post(
            "/control/users/7/forward", json={"voice": 3, "author": "Alex", "author_id": 42}
        )
        bad = await client.post("/control/users/7/forward", json={})
    assert bad.status_code == 400
    first = telegram.Update.de_json(hidden.json()["update"], bot).message
    second = telegram.Update.de_json(known.json()["update"], bot).message
    assert isinstance(first.forward_origin, telegram.MessageOriginHiddenUser)
    assert first.forward_origin.sender_user_name == "Paper" and first.text == "news"
    assert isinstance(second.forward_origin, telegram.MessageOriginUser)
    assert second.forward_origin.sender_user.id == 42 and second.voice is not None
    for update in (hidden.json()["update"], known.json()["update"]):
        update.setdefault("update_id", 1)
        assert api_spec.check_object("Update", update, "Update") == []
