"""No hidden process-wide state, and a lean start: a running bot leaves the interpreter as it
found it, owns its throttles and its clock, the SQLite write locks cannot pile up, and
``companion run`` loads only what running needs."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import db as db_module
from storage.clock import CLOCK, Clock
from storage.db import Database
from tests.support import running_companion

#: Libraries and modules only some commands or features need (migrating, charts, QR codes,
#: the preview, the demo, reading ease, a webhook or health server, PostgreSQL's dialect), and
#: httpx's own command-line client with the syntax highlighting it brings (never needed).
ONLY_SOMETIMES = (
    "httpx._main",
    "pygments",
    "rich.syntax",
    "alembic",
    "mako",
    "matplotlib",
    "segno",
    "textstat",
    "aiohttp.web",
    "sqlalchemy.dialects.postgresql",
    "bot.tools.preview",
    "bot.tools.demo",
    "bot.tools.qr",
    "bot.sandbox",
)


def modules_loaded_by(imports: str) -> list[str]:
    """The modules a fresh interpreter holds after ``import <imports>``."""
    code = (
        f"import sys, {imports}; "
        "print(*sorted(n for n, m in sys.modules.items() if m is not None))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()


@pytest.mark.slow
def test_companion_run_imports_only_what_running_needs() -> None:
    loaded = modules_loaded_by("bot.tools.cli, bot.runtime")
    extra = [m for m in loaded if any(m == n or m.startswith(f"{n}.") for n in ONLY_SOMETIMES)]
    assert extra == []


@pytest.mark.slow
def test_companion_export_runs_without_python_telegram_bot_or_aiohttp() -> None:
    """Loading them would cost an export about 45 MB of its memory budget for nothing."""
    loaded = modules_loaded_by("bot.tools.cli, bot.research.export")
    assert [m for m in loaded if m.split(".")[0] in ("telegram", "aiohttp", "apscheduler")] == []


async def test_a_running_bot_owns_its_clock_throttle_switch_interval_and_collector(
    sandbox, database, database_url: str, tmp_path: Path
) -> None:
    interval = sys.getswitchinterval()
    frozen = gc.get_freeze_count()
    own = Clock()
    async with running_companion(sandbox, database_url, tmp_path / "a") as first:
        assert sys.getswitchinterval() == interval, "only `companion run` changes it"
        assert gc.get_freeze_count() == frozen, "only `companion run` freezes what is loaded"
        assert first.scheduler.clock is CLOCK, "the process clock unless told otherwise"
        assert first.services.outsider_replies.allow(5001)
    from bot.runtime import Companion
    from tests.conftest import make_settings

    second = Companion(make_settings(sandbox, database_url), clock=own)  # type: ignore[arg-type]
    try:
        assert second.scheduler.clock is own
        assert second.services.outsider_replies.allow(5001), "each bot has its own memory"
        own.advance(timedelta(hours=1))
        assert CLOCK.offset == timedelta(0), "moving a bot's own clock leaves the process's"
    finally:
        await second.db.dispose()


async def _write_once(url: str) -> None:
    database = Database(url)
    try:
        async with database.transaction() as session:
            await session.execute(text("SELECT 1"))
    finally:
        await database.dispose()


async def test_the_sqlite_write_lock_is_shared_while_in_use_and_then_let_go(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'one.db'}"
    first, second = Database(url), Database(url)
    try:
        async with first.transaction():
            assert db_module._sqlite_write_lock(second.url).locked(), "one writer per file"
        for n in range(20):
            await _write_once(f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}")
        gc.collect()
        assert len(db_module._write_locks[asyncio.get_running_loop()]) == 0
    finally:
        await first.dispose()
        await second.dispose()


def test_the_sqlite_write_locks_go_with_their_event_loops(tmp_path: Path) -> None:
    gc.collect()
    before = len(db_module._write_locks)
    for n in range(5):
        asyncio.run(_write_once(f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}"))
    gc.collect()
    assert len(db_module._write_locks) <= before


def test_companion_run_freezes_what_it_loaded_before_serving() -> None:
    """The objects alive at start-up are kept out of the collector's full passes (each one
    walked them all and held every send up for about 100 ms, bench/broadcast.py)."""
    probe = (
        "import gc, sys\n"
        "from bot.runtime import prepare_to_serve\n"
        "assert gc.get_freeze_count() == 0\n"
        "prepare_to_serve()\n"
        "assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()\n"
        "assert sys.getswitchinterval() <= 0.001\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
