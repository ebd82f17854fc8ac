"""Flood limits: 429 with retry_after, and violations when a client ignores it."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import telegram
from telegram.error import RetryAfter

from bot.sandbox import FloodLimits, SandboxTelegram
from bot.sandbox.limits import FloodController
from tests.sandbox.conftest import make_bot


def _retry_after(sb: SandboxTelegram) -> int:
    refused = [r for r in sb.requests if r.status == 429]
    assert refused, "no 429 recorded"
    assert refused[-1].description is not None
    return int(refused[-1].description.rsplit(" ", 1)[1])


async def test_per_chat_limit_and_violation(limited_sandbox: SandboxTelegram) -> None:
    sb = limited_sandbox
    sb.user(42)
    async with make_bot(sb) as bot:
        await bot.send_message(42, "one")
        with pytest.raises(RetryAfter) as refused:
            await bot.send_message(42, "two")
        retry_after = refused.value.retry_after
        assert isinstance(retry_after, dt.timedelta)  # PTB_TIMEDELTA is on in these tests
        assert retry_after.total_seconds() == 1
        assert sb.flood_violations == []
        with pytest.raises(RetryAfter):
            await bot.send_message(42, "three")  # ignores the retry_after it was given
        assert len(sb.flood_violations) == 1
        assert "chat 42" in sb.flood_violations[0]
        assert sb.count_status(429) == 2
        assert _retry_after(sb) == 1
        assert [m["text"] for m in sb.sent_to(42)] == ["one"]
        # another chat is not affected by chat 42's limit
        sb.user(43)
        await bot.send_message(43, "other chat")


async def test_waiting_out_retry_after_is_fine(limited_sandbox: SandboxTelegram) -> None:
    sb = limited_sandbox
    sb.user(42)
    async with make_bot(sb) as bot:
        await bot.send_message(42, "one")
        with pytest.raises(RetryAfter):
            await bot.send_message(42, "two")
        await asyncio.sleep(_retry_after(sb) + 0.05)
        await bot.send_message(42, "two, later")
    assert sb.flood_violations == []
    assert len(sb.sent_to(42)) == 2


async def test_global_limit() -> None:
    limits = FloodLimits(enforce=True, global_per_second=5)
    async with SandboxTelegram(limits=limits) as sb, make_bot(sb) as bot:
        for uid in range(1, 8):
            sb.user(uid)
        for uid in range(1, 6):
            await bot.send_message(uid, "hi")
        with pytest.raises(RetryAfter):
            await bot.send_message(6, "hi")
        with pytest.raises(RetryAfter):
            await bot.send_message(7, "hi")  # a different chat, but the global limit is in force
        assert len(sb.flood_violations) == 1
        assert "global" in sb.flood_violations[0]


async def test_group_limit_twenty_per_minute(limited_sandbox: SandboxTelegram) -> None:
    sb = limited_sandbox
    sb.limits.global_per_second = 100
    group = sb.group(-500)
    async with make_bot(sb) as bot:
        for i in range(20):
            await bot.send_message(group.id, f"g{i}")
        with pytest.raises(RetryAfter):
            await bot.send_message(group.id, "one too many")
    assert 55 <= _retry_after(sb) <= 60
    assert len(group.messages) == 20
    assert sb.flood_violations == []


async def test_limits_off_by_default(sandbox: SandboxTelegram, bot: telegram.Bot) -> None:
    sandbox.user(42)
    for i in range(5):
        await bot.send_message(42, str(i))
    assert sandbox.count_status(429) == 0


def test_sliding_window_is_half_open() -> None:
    now = [100.0]
    ctl = FloodController(FloodLimits(enforce=True), clock=lambda: now[0])
    assert ctl.check("sendMessage", 1, False) is None
    ctl.record("sendMessage", 1)
    now[0] = 100.999
    refusal = ctl.check("sendMessage", 1, False)
    assert refusal is not None and refusal.retry_after == 1 and refusal.violation is None
    now[0] = 102.0  # retry_after (1 s from 100.999) has passed and the window (t-1, t] is free
    assert ctl.check("sendMessage", 1, False) is None
    assert ctl.check("getMe", 1, False) is None
