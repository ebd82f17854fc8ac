"""One leader on SQLite: one process per database file, and a second one says why it refuses."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from bot.runtime import Companion
from bot.schedule.leader import AlreadyRunningError, FileLock, Leadership, lock_file_for
from tests.conftest import free_port, make_settings

REFUSAL = "Another companion is already running on the database file"


@pytest.fixture
def sqlite_file(tmp_path: Path, sqlite_template: Path) -> Path:
    """A migrated SQLite file of this test's own (whatever TEST_DATABASE_URL says)."""
    path = tmp_path / "companion.db"
    shutil.copy(sqlite_template, path)
    return path


def test_the_lock_file_sits_next_to_the_database_and_is_exclusive(tmp_path: Path) -> None:
    database = tmp_path / "data" / "companion.db"
    first, second = FileLock(database), FileLock(database)
    first.acquire()
    assert lock_file_for(database.resolve()).exists()
    assert lock_file_for(database).name == "companion.db.lock"
    with pytest.raises(AlreadyRunningError) as refused:
        second.acquire()
    assert REFUSAL in str(refused.value)
    assert str(database.resolve()) in str(refused.value)
    assert "PostgreSQL" in str(refused.value)
    first.release()
    second.acquire()
    assert second.held
    second.release()


async def test_in_memory_sqlite_needs_no_lock() -> None:
    first = Leadership("sqlite+aiosqlite://")
    second = Leadership("sqlite+aiosqlite:///:memory:")
    first.claim_file()
    second.claim_file()
    assert await first.try_lead() and await second.try_lead()
    await first.release()
    await second.release()


async def test_a_second_companion_on_the_same_file_refuses_until_the_first_stops(
    sandbox, sqlite_file: Path, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{sqlite_file}"
    port = free_port()
    first = Companion(make_settings(sandbox, url, companion_data_dir=tmp_path / "data"))  # type: ignore[arg-type]
    await first.start(health_port=port)
    try:
        async with httpx.AsyncClient() as client:
            health = (await client.get(f"http://127.0.0.1:{port}/healthz")).json()
        assert health["leader"] is True
        second = Companion(make_settings(sandbox, url, companion_data_dir=tmp_path / "data"))  # type: ignore[arg-type]
        with pytest.raises(AlreadyRunningError, match=REFUSAL):
            await second.start()
        await second.db.dispose()
    finally:
        await first.stop()
    third = Companion(make_settings(sandbox, url, companion_data_dir=tmp_path / "data"))  # type: ignore[arg-type]
    await third.start()
    try:
        assert third.leadership.is_leader
        sandbox.user(900_001, "Jo").send_command("help")
        [reply] = await sandbox.wait_for_messages(900_001, 1, timeout=10)
        assert reply["text"].startswith("Here is what you can do")
    finally:
        await third.stop()


async def test_companion_run_refuses_in_one_plain_sentence(
    sandbox, sqlite_file: Path, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{sqlite_file}"
    running = Companion(make_settings(sandbox, url, companion_data_dir=tmp_path / "data"))  # type: ignore[arg-type]
    await running.start()
    try:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": sandbox.token,
            "TELEGRAM_API_BASE_URL": sandbox.base_url,
            "DATABASE_URL": url,
            "COMPANION_DATA_DIR": str(tmp_path / "data"),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        await running.stop()
    assert process.returncode == 1
    lines = stderr.decode().strip().splitlines()
    assert lines == [lines[-1]], f"one sentence, no traceback: {lines}"
    assert lines[0].startswith(REFUSAL)
    assert str(sqlite_file) in lines[0]
    assert "PostgreSQL" in lines[0]
    assert stdout == b""
