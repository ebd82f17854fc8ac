"""Fixtures for the sandbox Telegram tests: a running sandbox and a real PTB ``Bot`` on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import telegram
from telegram.request import HTTPXRequest

from bot.sandbox import BotApiSpec, FloodLimits, SandboxTelegram
from bot.sandbox.spec import expected_spec_location, find_spec_path


def make_bot(sb: SandboxTelegram, **request_kwargs: float) -> telegram.Bot:
    """A python-telegram-bot ``Bot`` talking to ``sb`` over real HTTP (default httpx)."""
    request = HTTPXRequest(**request_kwargs) if request_kwargs else None  # type: ignore[arg-type]
    return telegram.Bot(
        sb.token, base_url=sb.base_url, base_file_url=sb.base_file_url, request=request
    )


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in to PTB's timedelta durations: otherwise ``RetryAfter`` emits a deprecation warning
    (an error under ``filterwarnings = error``)."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
def api_spec() -> BotApiSpec:
    """The Bot API spec; skips the test when api.json is absent."""
    path = find_spec_path()
    if path is None:
        pytest.skip(
            f"Bot API api.json not found at {expected_spec_location()}; set COMPANION_BOT_API_SPEC"
        )
    return BotApiSpec.load(path)


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxTelegram]:
    """A started sandbox without spec checking or limits."""
    async with SandboxTelegram() as sb:
        yield sb


@pytest.fixture
async def limited_sandbox() -> AsyncIterator[SandboxTelegram]:
    """A started sandbox that enforces Telegram's flood limits."""
    async with SandboxTelegram(limits=FloodLimits(enforce=True)) as sb:
        yield sb


@pytest.fixture
async def bot(sandbox: SandboxTelegram) -> AsyncIterator[telegram.Bot]:
    """An initialised PTB ``Bot`` on ``sandbox``."""
    async with make_bot(sandbox) as ptb_bot:
        yield ptb_bot
