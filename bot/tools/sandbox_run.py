"""``companion sandbox-run``: the real bot against the built-in sandbox Telegram.

No token and no internet: the sandbox plays Telegram on 127.0.0.1, the bot long-polls it with a
throwaway SQLite database, and people are played through the sandbox's control API. A partner
invite is created so a new person can be enrolled straight away.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from pathlib import Path

from bot.runtime import Companion
from bot.sandbox.server import SandboxTelegram
from bot.settings import Settings
from prompts import default_prompts
from storage.models import Role

CONNECTOR_ID = 1001
PARTNER_ID = 2001


async def _create_invite(companion: Companion) -> str | None:
    """A partner invite code, when the invites feature is present."""
    try:
        from bot.partners.invites import create_invites
    except ImportError:  # pragma: no cover - older trees without invites
        return None
    async with companion.db.transaction() as session:
        created = await create_invites(session, companion.protocol, role=Role.PARTNER)
    return created[0].code


async def run_sandbox(port: int = 8081, data_dir: Path | None = None) -> None:
    """Start the sandbox and the bot, print how to use them, and run until interrupted."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with tempfile.TemporaryDirectory(prefix="companion-sandbox-") as tmp:
        folder = data_dir or Path(tmp)
        database = f"sqlite+aiosqlite:///{folder / 'sandbox.db'}"
        async with SandboxTelegram(port=port) as sandbox:
            settings = Settings(
                _env_file=None,
                telegram_bot_token=sandbox.token,
                telegram_api_base_url=sandbox.base_url,
                database_url=database,
                companion_data_dir=folder / "data",
                companion_connector_ids=[CONNECTOR_ID],
            )
            companion = Companion(settings)
            await companion.start()
            sandbox.user(CONNECTOR_ID, "Connie")
            sandbox.user(PARTNER_ID, "Pat")
            try:
                code = await _create_invite(companion)
                print(
                    default_prompts().text(
                        "cli/sandbox_run",
                        base_url=sandbox.base_url,
                        control_url=f"{sandbox.url}/control",
                        database=database,
                        connector_id=CONNECTOR_ID,
                        partner_id=PARTNER_ID,
                        invite_code=code,
                    ),
                    flush=True,
                )
                await stop.wait()
            finally:
                with contextlib.suppress(Exception):
                    await companion.stop()
