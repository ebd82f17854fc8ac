"""Big export tables read with the database's plain driver: ``sqlite3`` or ``asyncpg``.

The export's large tables (``responses.csv``, ``answer_history.csv`` and ``checkins.csv``)
run to a million rows. Read through SQLAlchemy's async session, a row costs about twice what
it costs read by the driver itself, so they are read here instead, from the statement
compiled to plain SQL, on a connection of their own: by the export for its own share and by
each helper process (:mod:`bot.research.shard`) for its part. This module is lean (the
standard library and, for PostgreSQL, ``asyncpg``) because the helpers import it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

BATCH = 1000

#: How another process reaches the database: ``("sqlite", file)`` or ``("postgresql",
#: asyncpg.connect keywords)``; see ``storage.db.Database.plain_driver_target``.
Target = tuple[str, Any]


def sqlite_batches(path: str, sql: str) -> Iterator[Sequence[Any]]:
    """The rows of ``sql`` from the SQLite file ``path``, read-only, a batch at a time."""
    # Read-only, as a URI: as_uri() escapes a "?" or "#" in the path.
    connection = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)
    try:
        cursor = connection.execute(sql)
        while batch := cursor.fetchmany(BATCH):
            yield batch
    finally:
        connection.close()


async def postgres_batches(keywords: dict[str, Any], sql: str) -> AsyncIterator[Sequence[Any]]:
    """The rows of ``sql`` from PostgreSQL, in a read-only transaction, a batch at a time."""
    import asyncio  # about 9 MB, with asyncpg, that an SQLite part does without

    import asyncpg

    connection = await asyncpg.connect(**keywords)
    try:
        async with connection.transaction(readonly=True):
            cursor = await connection.cursor(sql)
            ahead = asyncio.ensure_future(cursor.fetch(BATCH))
            try:
                while batch := await ahead:
                    # Ask for the next batch before formatting this one: the server reads it
                    # meanwhile, on another core.
                    ahead = asyncio.ensure_future(cursor.fetch(BATCH))
                    await asyncio.sleep(0)
                    yield batch
            finally:
                ahead.cancel()
    finally:
        await connection.close()


async def batches(target: Target, sql: str) -> AsyncIterator[Sequence[Any]]:
    """The rows of ``sql`` from the database ``target`` names, a batch at a time.

    SQLite is read in this thread: a running bot exports in a thread of its own.
    """
    driver, where = target
    if driver == "sqlite":
        for batch in sqlite_batches(where, sql):
            yield batch
    else:
        async for batch in postgres_batches(where, sql):
            yield batch


def plain_sql(statement: Any, dialect: Any) -> str:
    """A SQLAlchemy statement as plain SQL for ``dialect``, its parameters written in."""
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
