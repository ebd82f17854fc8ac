"""Fault injection: HTTP errors, dropped connections, "timed out but delivered", latency."""

from __future__ import annotations

import asyncio

import pytest
import telegram
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.sandbox import SandboxTelegram
from tests.sandbox.conftest import make_bot


async def test_fail_next_maps_like_telegram(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42)
    sandbox.faults.fail_next(2, status=502)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(42, "x")
    sandbox.faults.fail_next(1, status=500, method="sendMessage")
    with pytest.raises(NetworkError):
        await bot.send_message(42, "x")
    sandbox.faults.fail_next(1, status=400, description="Bad Request: injected")
    with pytest.raises(BadRequest, match=r"(?i)injected"):
        await bot.send_message(42, "x")
    await bot.send_message(42, "finally")
    assert [m["text"] for m in sandbox.sent_to(42)] == ["finally"]
    assert [r.status for r in sandbox.requests_for("sendMessage")] == [502, 502, 500, 400, 200]


async def test_fail_next_method_filter_and_getupdates(
    sandbox: SandboxTelegram, bot: telegram.Bot
) -> None:
    sandbox.user(42)
    sandbox.faults.fail_next(1, status=500, method="sendDocument")
    sandbox.faults.fail_next(1, status=502)  # None: anything but getUpdates
    assert await bot.get_updates(timeout=0) == ()
    with pytest.raises(NetworkError):
        await bot.get_me()
    await bot.send_message(42, "fine")
    with pytest.raises(NetworkError):
        await bot.send_document(42, b"doc", filename="a.txt")


async def test_network_drop(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42)
    sandbox.faults.network_drop_next(1)
    with pytest.raises(NetworkError):
        await bot.send_message(42, "lost")
    assert sandbox.sent_to(42) == []
    assert sandbox.requests[-1].status == 0
    await bot.send_message(42, "next one works")
    assert len(sandbox.sent_to(42)) == 1


async def test_hang_after_accept_times_out_but_delivers(sandbox: SandboxTelegram) -> None:
    sandbox.user(42)
    async with make_bot(sandbox, read_timeout=0.3) as bot:
        sandbox.faults.hang_after_accept(1, seconds=3, method="sendMessage")
        with pytest.raises(TimedOut):
            await bot.send_message(42, "did it arrive?")
        assert [m["text"] for m in sandbox.sent_to(42)] == ["did it arrive?"]
        await bot.send_message(42, "second")  # later calls are normal again


async def test_slow_seconds(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    loop = asyncio.get_running_loop()
    sandbox.faults.slow_seconds = 0.3
    started = loop.time()
    await bot.get_me()
    assert loop.time() - started >= 0.3
    sandbox.faults.clear()
    assert sandbox.faults.slow_seconds == 0
