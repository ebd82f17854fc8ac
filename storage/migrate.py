"""Alembic, driven from code: upgrade a database and tell whether it is up to date.

There is no ``alembic.ini`` to find at run time: the script location is this package's
``migrations`` folder, so ``companion db upgrade`` works from any directory and from the wheel.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

from storage.db import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", make_url(url).render_as_string(hide_password=False))
    return config


def head_revision() -> str:
    """The newest migration shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations found")
    return head


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is on, or None when it has never been migrated."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def _read(sync_conn: Connection) -> str | None:
                return MigrationContext.configure(sync_conn).get_current_revision()

            return await conn.run_sync(_read)
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (the newest by default)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:

            def _run(sync_conn: Connection) -> None:
                config = alembic_config(url)
                config.attributes["connection"] = sync_conn
                command.upgrade(config, revision)

            await conn.run_sync(_run)
    finally:
        await engine.dispose()


async def is_up_to_date(url: str) -> bool:
    """Whether the database is on the newest migration."""
    return await current_revision(url) == head_revision()


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Blocking wrapper for the command line."""
    asyncio.run(upgrade(url, revision))
