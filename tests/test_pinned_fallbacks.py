"""The private APIs we lean on are pinned; if other versions are installed anyway, the bot
notices and takes the stock path (slower, never wrong) instead of failing."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

from sqlalchemy import text
from telegram import Bot

import storage.sqlite_driver
from storage.db import Database


def test_the_self_check_names_what_is_missing() -> None:
    class Adapter:
        _connection = object()

        def _handle_exception(self, error: Exception) -> None:
            raise error

    assert storage.sqlite_driver.one_hop_problem(object()) is not None
    assert "_execute" in (storage.sqlite_driver.one_hop_problem(Adapter()) or "")


async def test_sqlite_falls_back_to_the_stock_adapter_with_a_warning(
    tmp_path: Any, monkeypatch: Any, caplog: Any
) -> None:
    monkeypatch.setattr(storage.sqlite_driver, "one_hop_problem", lambda _c: "changed")
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'fallback.db'}")
    try:
        with caplog.at_level(logging.WARNING, logger="storage.sqlite_driver"):
            async with db.transaction() as session:
                await session.execute(text("CREATE TABLE t (x INTEGER)"))
                await session.execute(text("INSERT INTO t VALUES (1), (2)"))
            async with db.sessions() as session:
                total = (await session.execute(text("SELECT sum(x) FROM t"))).scalar_one()
    finally:
        await db.dispose()
    assert total == 3
    assert "stock aiosqlite adapter (changed)" in caplog.text


def test_the_aiohttp_transport_needs_nothing_private_at_run_time() -> None:
    """In a fresh interpreter where importing python-telegram-bot's private modules fails."""
    probe = (
        "import sys, telegram, telegram.ext, telegram.request\n"
        "for name in ('telegram._utils.types', 'telegram._utils.defaultvalue',\n"
        "             'telegram.request._requestparameter'):\n"
        "    sys.modules[name] = None  # importing these now fails\n"
        "from bot.transport.http import AiohttpRequest\n"
        "import bot.transport.inbox as inbox\n"
        "assert inbox.RequestParameter is None\n"
        "print(AiohttpRequest(read_timeout=3.0).read_timeout)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3.0"


async def test_polling_works_without_the_private_request_parameter(
    sandbox: Any, database: Database, monkeypatch: Any
) -> None:
    from bot.transport import inbox

    monkeypatch.setattr(inbox, "RequestParameter", None)
    sandbox.user(4242, "Sam").send_text("hello")
    stored: list[int] = []
    async with Bot(sandbox.token, base_url=sandbox.base_url) as tg:
        poller = inbox.InboxPoller(
            database, tg, tg.request, on_stored=lambda: stored.append(1), timeout=0
        )
        assert await poller.poll_once() == 1
    assert stored == [1] and poller.offset is not None
