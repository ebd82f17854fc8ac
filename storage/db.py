"""Engine and session factory for SQLite and PostgreSQL.

SQLite is tuned for a single process that must never lose an answer: WAL, ``synchronous=FULL``,
foreign keys on, a busy timeout, and every transaction started with ``BEGIN IMMEDIATE`` so a
read never has to be upgraded to a write halfway (the source of "database is locked" even with
a busy timeout). PostgreSQL goes through asyncpg.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary, WeakValueDictionary

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.sqlite_driver import one_hop_dbapi

SQLITE_BUSY_TIMEOUT_MS = 10_000


#: PostgreSQL's code for the transaction it failed to end a deadlock. (A serialisation failure,
#: 40001, is left out: it cannot happen under READ COMMITTED, which the companion uses, and
#: under a stricter level a savepoint run again keeps the snapshot that failed.)
_DEADLOCK = "40P01"


def lost_to_another_writer(error: BaseException) -> bool:
    """Whether ``error`` is PostgreSQL ending a deadlock with this transaction: no fault of
    the work, which run again (the other transaction through) can succeed."""
    if not isinstance(error, DBAPIError) or error.connection_invalidated:
        return False
    return getattr(error.orig, "sqlstate", None) == _DEADLOCK


def is_sqlite(url: str | URL) -> bool:
    """Whether a database URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind an SQLite URL, or None for an in-memory or non-SQLite database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _install_sqlite_pragmas(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


#: Connection options SQLAlchemy's asyncpg dialect keeps for itself (asyncpg would send them to
#: the server as settings, which it refuses).
_SQLALCHEMY_ASYNCPG_OPTIONS = (
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
    "async_creator_fn",
)


def create_engine(url: str | URL, *, echo: bool = False, for_writes: bool = True) -> AsyncEngine:
    """Create the async engine for ``url`` with the backend's reliability settings.

    On SQLite, ``for_writes`` engines start every transaction with ``BEGIN IMMEDIATE``; the
    read engine uses a plain (deferred) ``BEGIN`` so readers never queue for the write lock.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {}
        if parsed.get_driver_name() == "aiosqlite":
            options["module"] = one_hop_dbapi()  # one thread hand-off per statement
        engine = create_async_engine(
            parsed, echo=echo, hide_parameters=True, connect_args={"timeout": 30}, **options
        )
        _install_sqlite_pragmas(engine, immediate=for_writes)
        return engine
    return create_async_engine(
        parsed, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_size=5
    )


#: The write lock of each SQLite file, per event loop. Both levels are weak, so the map cannot
#: grow: a loop's entry goes with the loop, and a file's lock with the last transaction that
#: holds or awaits it (a lock nobody holds or awaits is as good as a new one).
_write_locks: WeakKeyDictionary[
    asyncio.AbstractEventLoop, WeakValueDictionary[str, asyncio.Lock]
] = WeakKeyDictionary()


def _sqlite_write_lock(url: URL) -> asyncio.Lock:
    """One lock per SQLite file and event loop, shared by every Database in the process.

    SQLite allows one writer at a time. Queuing writers on an asyncio lock is fair and wakes
    the next one the moment the lock is free; leaving it to SQLite's busy handler means
    sleeping in steps of up to 100 ms, which cut throughput tenfold under load.
    """
    loop = asyncio.get_running_loop()
    locks = _write_locks.get(loop)
    if locks is None:
        locks = _write_locks[loop] = WeakValueDictionary()
    key = str(sqlite_path(url) or url)
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    return lock


class Database:
    """The engines plus session factories; the caller owns each unit of work.

    ``transaction()`` is for writes (on SQLite: serialised in-process, ``BEGIN IMMEDIATE``);
    ``sessions()`` opens a session for reads (on SQLite: a deferred transaction that never
    waits for writers).
    """

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.engine = create_engine(self.url, echo=echo)
        self._write_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        if self.is_sqlite:
            self.read_engine: AsyncEngine = create_engine(self.url, echo=echo, for_writes=False)
        else:
            self.read_engine = self.engine
        self.sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """Whether this database is SQLite (one process only)."""
        return self.url.get_backend_name() == "sqlite"

    def plain_driver_target(self) -> tuple[str, Any] | None:
        """How another process reaches this database with its plain driver.

        ``("sqlite", file)``, or ``("postgresql", keywords)`` with what ``asyncpg.connect``
        takes, as SQLAlchemy works them out from the URL (``?ssl=require`` included, its own
        options such as ``prepared_statement_cache_size`` left out). The keywords hold the
        password: give them to that process on a pipe, never on its command line. None for an
        SQLite database in memory, which no other process can see.
        """
        if self.is_sqlite:
            path = sqlite_path(self.url)
            return None if path is None else ("sqlite", str(path.resolve()))
        _, keywords = self.engine.dialect.create_connect_args(self.url)
        for sqlalchemy_only in _SQLALCHEMY_ASYNCPG_OPTIONS:
            keywords.pop(sqlalchemy_only, None)
        return ("postgresql", keywords)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one write transaction: committed on success, rolled back on error."""
        if not self.is_sqlite:
            async with self._write_sessions() as session, session.begin():
                yield session
            return
        async with (
            _sqlite_write_lock(self.url),
            self._write_sessions() as session,
            session.begin(),
        ):
            yield session

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
