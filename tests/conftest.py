"""Shared fixtures: a real database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set)
and a running sandbox Telegram that checks itself against the Bot API spec."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.clock import CLOCK
from storage.db import Database, is_sqlite
from storage.migrate import upgrade
from storage.models import Base


def _database_of_this_worker(url: str | None) -> str | None:
    """Under pytest-xdist, each worker gets a PostgreSQL database of its own (``test_gw0``,
    ``test_gw1``, ... beside the one named), made afresh, so that workers never truncate each
    other's tables. The environment is updated too, for tests that read it themselves."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or is_sqlite(url) or not worker:
        return url
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker}"

    async def recreate() -> None:
        server = base.set(drivername="postgresql")  # asyncpg's own URL form
        conn = await asyncpg.connect(server.render_as_string(hide_password=False))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    own = base.set(database=name).render_as_string(hide_password=False)
    os.environ["TEST_DATABASE_URL"] = own
    return own


TEST_DATABASE_URL = _database_of_this_worker(os.environ.get("TEST_DATABASE_URL"))
_pg_migrated = False


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy (migrations run for real)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """The URL of a fresh, migrated, empty database for this test."""
    if TEST_DATABASE_URL and not is_sqlite(TEST_DATABASE_URL):
        return TEST_DATABASE_URL
    path = tmp_path / "companion.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


async def _reset_postgres(url: str) -> None:
    global _pg_migrated
    if not _pg_migrated:
        await upgrade(url)
        _pg_migrated = True
    db = Database(url)
    try:
        async with db.transaction() as session:
            names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
            await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            await session.execute(text("SELECT pg_advisory_unlock_all()"))
    finally:
        await db.dispose()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A Database on a fresh schema; disposed after the test."""
    if not is_sqlite(database_url):
        await _reset_postgres(database_url)
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def sandbox() -> AsyncIterator[object]:
    """A running sandbox Telegram; fails the test if anything broke the Bot API spec."""
    from bot.sandbox.server import SandboxTelegram
    from bot.sandbox.spec import BotApiSpec, find_spec_path

    spec_path = find_spec_path()
    spec = BotApiSpec.load(spec_path) if spec_path else None
    async with SandboxTelegram(spec=spec) as sb:
        yield sb
        assert sb.spec_errors == [], "the bot or the sandbox broke the Bot API spec"


CONNECTOR_ID = 900_001


def make_settings(sb: object, database_url: str, **overrides: object) -> object:
    """Settings for a bot that talks to the sandbox ``sb`` and the test database."""
    from bot.settings import Settings

    values: dict[str, object] = {
        "telegram_bot_token": sb.token,  # type: ignore[attr-defined]
        "telegram_api_base_url": sb.base_url,  # type: ignore[attr-defined]
        "database_url": database_url,
        "companion_connector_ids": [CONNECTOR_ID],
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def companion(
    sandbox: object, database: Database, database_url: str, tmp_path: Path
) -> AsyncIterator[object]:
    """The whole bot, long-polling the sandbox, on the test database (see tests.support), with
    office hours that never close so that no test depends on the time of day it runs at."""
    from tests.support import always_open_protocol, running_companion

    protocol = always_open_protocol()
    async with running_companion(sandbox, database_url, tmp_path / "data", protocol) as bot:
        yield bot


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: ``COMPANION_TEST_START=2026-12-06T22:30:00+00:00`` starts every test's clock there instead
#: of now (in this process only): a way to look for tests that pass only at some hours.
_TEST_START = os.environ.get("COMPANION_TEST_START")


@pytest.fixture(autouse=True)
def _system_time() -> Iterator[None]:
    """Every test starts and ends on system time (the demo and some tests move the clock)."""
    CLOCK.reset()
    if _TEST_START:
        from datetime import datetime

        CLOCK.advance_to(datetime.fromisoformat(_TEST_START))
    yield
    CLOCK.reset()
