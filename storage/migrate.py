"""Alembic, driven from code: upgrade a database and tell whether it is up to date.

There is no ``alembic.ini`` to find at run time: the script location is this package's
``migrations`` folder, so ``companion db upgrade`` works from any directory and from the wheel.

Alembic itself (about 10 MB resident with Mako and its dialect modules) is imported only to
migrate: telling whether a database is up to date, which ``companion run`` does at every start,
reads the revision each migration file declares and the one the database holds without it.
"""

from __future__ import annotations

import ast
import asyncio
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import String, column, inspect, select, table
from sqlalchemy.engine import Connection, make_url

from storage.db import create_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and at ``url``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", make_url(url).render_as_string(hide_password=False))
    return config


def _declared_revision(path: Path) -> tuple[str, set[str]]:
    """The revision a migration file declares and those it revises (read, never imported)."""
    declared: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            for target in targets:
                if isinstance(target, ast.Name):
                    with suppress(ValueError):  # not a literal: nothing Alembic reads
                        declared[target.id] = ast.literal_eval(node.value)
    down = declared.get("down_revision")
    revises = down if isinstance(down, tuple | list) else [down] if down else []
    return str(declared["revision"]), {str(d) for d in revises}


def head_revision() -> str:
    """The newest migration shipped with this code: the one no other migration revises."""
    declared = [_declared_revision(p) for p in (MIGRATIONS_DIR / "versions").glob("*.py")]
    revised = set().union(*(down for _, down in declared))
    heads = {revision for revision, _ in declared} - revised
    if len(heads) != 1:  # pragma: no cover - the package always ships one line of migrations
        raise RuntimeError(f"expected one newest migration, found {sorted(heads) or 'none'}")
    return heads.pop()


def _stored_revision(sync_conn: Connection) -> str | None:
    """The revision recorded in the database behind ``sync_conn`` (None: never migrated)."""
    if not inspect(sync_conn).has_table(VERSION_TABLE):
        return None
    query = select(column("version_num", String)).select_from(table(VERSION_TABLE))
    versions = sync_conn.execute(query).scalars().all()
    if len(versions) > 1:  # pragma: no cover - our migrations have one line
        raise RuntimeError(f"the database is on several revisions: {versions}")
    return versions[0] if versions else None


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is on, or None when it has never been migrated."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_stored_revision)
    finally:
        await engine.dispose()


def sqlite_revision_read_only(path: Path) -> str | None:
    """The revision of the existing SQLite file at ``path``, read without writing anything.

    For ``companion check-config``, which must change nothing on disk. While no process has
    the file open (there is no ``-wal`` file beside it) it is opened immutable, so SQLite does
    not even make its ``-wal`` and ``-shm`` files; otherwise read-only, next to the ones the
    running process made.
    """
    from sqlalchemy import create_engine as create_sync_engine

    wal = path.with_name(f"{path.name}-wal")
    mode = "mode=ro" if wal.exists() else "immutable=1"
    engine = create_sync_engine(f"sqlite:///{path.resolve().as_uri()}?{mode}&uri=true")
    try:
        with engine.connect() as conn:
            return _stored_revision(conn)
    finally:
        engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (the newest by default)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:

            def _run(sync_conn: Connection) -> None:
                from alembic import command

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
