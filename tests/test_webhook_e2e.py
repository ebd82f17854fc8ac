"""Webhook mode: the secret header is checked, and 200 means the update is committed."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from bot.runtime import Companion, WebhookOptions
from storage.models import InboxUpdate
from tests.conftest import CONNECTOR_ID, free_port, make_settings

SECRET = "s3cret-token_for-tests"


@pytest.fixture
async def webhook_bot(sandbox, database, database_url):
    port = free_port()
    bot = Companion(make_settings(sandbox, database_url))
    options = WebhookOptions(
        url=f"http://127.0.0.1:{port}",
        listen_host="127.0.0.1",
        listen_port=port,
        path="/telegram",
        secret_token=SECRET,
    )
    await bot.start(webhook=options)
    try:
        yield bot, f"http://127.0.0.1:{port}/telegram"
    finally:
        await bot.stop()


async def inbox_count(database) -> int:
    async with database.sessions() as session:
        return int(
            (await session.execute(select(func.count()).select_from(InboxUpdate))).scalar_one()
        )


async def test_updates_arrive_by_webhook_and_get_answered(webhook_bot, sandbox, database):
    assert sandbox.webhook["url"].endswith("/telegram")
    sandbox.user(CONNECTOR_ID, "Jo").send_command("help")
    [reply] = await sandbox.wait_for_messages(CONNECTOR_ID, 1, timeout=10)
    assert reply["text"].startswith("Here is what you can do")
    assert await inbox_count(database) == 1


async def test_a_wrong_or_missing_secret_is_refused_and_nothing_stored(webhook_bot, database):
    _bot, url = webhook_bot
    update = {
        "update_id": 999,
        "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}},
    }
    async with httpx.AsyncClient() as client:
        missing = await client.post(url, json=update)
        wrong = await client.post(
            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}
        )
        garbage = await client.post(
            url, content=b"not json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
    assert (missing.status_code, wrong.status_code, garbage.status_code) == (403, 403, 400)
    assert await inbox_count(database) == 0


async def test_200_is_only_answered_after_the_commit(webhook_bot, database):
    _bot, url = webhook_bot
    update = {"update_id": 4242, "my_chat_member": None}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        again = await client.post(
            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
    assert response.status_code == 200 and again.status_code == 200
    async with database.sessions() as session:
        row = await session.get(InboxUpdate, 4242)
    assert row is not None, "the update was committed before 200 was answered"
    assert await inbox_count(database) == 1, "a redelivered update is stored once"


async def test_health_endpoint(webhook_bot):
    _bot, url = webhook_bot
    async with httpx.AsyncClient() as client:
        response = await client.get(url.replace("/telegram", "/healthz"))
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_health_stays_on_the_health_port_in_webhook_mode(sandbox, database, database_url):
    """The image's health check asks 127.0.0.1:8080 (--health-port) whatever the mode."""
    listen, health = free_port(), free_port()
    bot = Companion(make_settings(sandbox, database_url))
    options = WebhookOptions(
        url=f"http://127.0.0.1:{listen}", listen_host="127.0.0.1", listen_port=listen
    )
    await bot.start(webhook=options, health_port=health)
    try:
        async with httpx.AsyncClient() as client:
            on_health = await client.get(f"http://127.0.0.1:{health}/healthz")
            hook = await client.post(f"http://127.0.0.1:{health}/telegram", json={})
        assert on_health.status_code == 200 and on_health.json()["status"] == "ok"
        assert hook.status_code == 404, "the health port serves health only"
    finally:
        await bot.stop()
