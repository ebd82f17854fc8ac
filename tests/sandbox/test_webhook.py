"""Webhook delivery: POSTs with the secret header, retries until 2xx, 409 for getUpdates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import telegram
from aiohttp import web
from telegram.error import Conflict

from bot.sandbox import SandboxTelegram


class Receiver:
    """A tiny webhook endpoint that fails the first ``failures`` deliveries."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, Any], str | None]] = []
        self.attempts = 0
        self.url = ""
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500)
        body = await request.json()
        self.received.append((body, request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        self.arrived.set()
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(failures=2)
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield rec
    await runner.cleanup()


async def test_webhook_delivery_with_secret_and_retries(
    sandbox: SandboxTelegram, bot: telegram.Bot, receiver: Receiver
) -> None:
    user = sandbox.user(42)
    user.send_text("queued before the webhook")
    assert await bot.set_webhook(receiver.url, secret_token="s3cret-token")
    info = await bot.get_webhook_info()
    assert info.url == receiver.url
    with pytest.raises(Conflict, match=r"(?i)webhook is active"):
        await bot.get_updates()
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    body, secret = receiver.received[0]
    assert secret == "s3cret-token"
    assert body["message"]["text"] == "queued before the webhook"
    assert receiver.attempts == 3  # two 500s, then delivered
    assert sandbox.webhook_deliveries[0]["ok"] is False
    receiver.arrived.clear()
    user.send_text("second")
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    assert receiver.received[1][0]["message"]["text"] == "second"
    assert sandbox.pending_updates == 0
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 0
    assert info.last_error_message is not None and "500" in info.last_error_message
    assert await bot.delete_webhook()
    assert sandbox.webhook["url"] == ""
    user.send_text("polling again")
    (update,) = await bot.get_updates()
    assert update.message is not None and update.message.text == "polling again"


async def test_pending_count_while_receiver_down(
    sandbox: SandboxTelegram, bot: telegram.Bot
) -> None:
    user = sandbox.user(42)
    await bot.set_webhook("http://127.0.0.1:9/unreachable")
    user.send_text("one")
    user.send_text("two")
    await asyncio.sleep(0.2)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 2
    assert info.last_error_date is not None
    await bot.set_webhook("", drop_pending_updates=True)
    assert sandbox.pending_updates == 0
