"""One leader: only one process polls, plans and sends.

On SQLite only one process may run at all: ``Leadership.claim_file`` takes an exclusive,
non-blocking ``flock`` on ``<database file>.lock`` and holds it for the life of the process, so a
second process fails at once with :class:`AlreadyRunningError` (an in-memory database needs no
lock). On PostgreSQL several replicas may run: the leader is whoever holds a session-level
advisory lock on one dedicated connection (``pg_try_advisory_lock`` with :data:`LOCK_KEY`).
The lock dies with that connection, so when the leader's process dies the database frees it and
a standby, retrying every ``retry_seconds``, takes over. The leader checks its connection every
half period and stops its loops if it is lost; a standby that wins the lock waits long enough
for such a leader to notice before it starts its own loops, so two never run at once.
Every replica still receives webhooks (they only commit to the durable inbox); only the leader
processes, plans and sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from prompts import default_prompts
from storage.db import is_sqlite, sqlite_path

log = logging.getLogger(__name__)

LOCK_NAME = "involvement-companion:leader"
# pg_try_advisory_lock takes a signed 64-bit key; deriving it from a name keeps it stable
# across versions and unlikely to collide with another application's locks.
LOCK_KEY = int.from_bytes(
    hashlib.blake2b(LOCK_NAME.encode(), digest_size=8).digest(), "big", signed=True
)
APPLICATION_NAME = "companion-leader"
DB_TIMEOUT = 10.0  # seconds for one statement on the lock connection before it counts as lost

Callback = Callable[[], Awaitable[None]]


class AlreadyRunningError(RuntimeError):
    """Another companion holds the lock on this SQLite database file."""

    def __init__(self, database: Path) -> None:
        self.database = database
        super().__init__(default_prompts().text("cli/already_running", path=database))


def lock_file_for(database: Path) -> Path:
    """The lock file that sits next to an SQLite database file."""
    return database.with_name(database.name + ".lock")


class FileLock:
    """An exclusive, non-blocking ``flock`` on the file next to an SQLite database."""

    def __init__(self, database: Path) -> None:
        self.database = database.resolve()
        self.path = lock_file_for(self.database)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock now, or raise :class:`AlreadyRunningError` if another holds it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise AlreadyRunningError(self.database) from exc
        # The pid is for a person wondering who holds it; the flock is what counts.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (the file stays: removing it would race with a new holder)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on one dedicated connection."""

    def __init__(self, url: URL, key: int = LOCK_KEY) -> None:
        self.key = key
        # AUTOCOMMIT: the connection must not sit "idle in transaction" for days.
        self._engine: AsyncEngine = create_async_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"server_settings": {"application_name": APPLICATION_NAME}},
        )
        self._conn: AsyncConnection | None = None
        self.held = False

    async def try_acquire(self) -> bool:
        """Try once, without waiting; True when this process now holds the lock."""
        if self.held:
            return True
        if self._conn is None:
            self._conn = await asyncio.wait_for(self._engine.connect(), DB_TIMEOUT)
        got = await asyncio.wait_for(
            self._conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}),
            DB_TIMEOUT,
        )
        self.held = bool(got)
        return self.held

    async def alive(self, timeout: float = DB_TIMEOUT) -> bool:
        """Whether the connection (and so the lock, when held) answers within ``timeout``."""
        if self._conn is None:
            return False
        try:
            await asyncio.wait_for(self._conn.scalar(text("SELECT 1")), timeout)
        except Exception as exc:
            log.debug("leader lock connection check failed: %s", type(exc).__name__)
            return False
        return True

    async def drop(self) -> None:
        """Forget the connection (after an error); the server frees the lock with it."""
        conn, self._conn = self._conn, None
        self.held = False
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.invalidate(), DB_TIMEOUT)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), DB_TIMEOUT)

    async def release(self) -> None:
        """Unlock and close the connection, so a standby can take over at once."""
        if self._conn is not None and self.held:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._conn.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key}),
                    DB_TIMEOUT,
                )
        conn, self._conn = self._conn, None
        self.held = False
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), DB_TIMEOUT)
        await self._engine.dispose()


class Leadership:
    """Decides whether this process leads, and keeps deciding while it runs.

    ``claim_file()`` first (SQLite: fail fast), then ``try_lead()`` once, then ``watch()``
    with what to do on winning and on losing the lead; ``release()`` at the end.
    """

    def __init__(self, url: str | URL, *, retry_seconds: float = 10.0) -> None:
        self.url = make_url(url)
        self.retry_seconds = retry_seconds
        self.is_leader = False
        self._file: FileLock | None = None
        self._advisory: AdvisoryLock | None = None
        self._watch_task: asyncio.Task[None] | None = None
        if is_sqlite(self.url):
            path = sqlite_path(self.url)
            self._file = FileLock(path) if path is not None else None
        else:
            self._advisory = AdvisoryLock(self.url)

    def claim_file(self) -> None:
        """On an SQLite file, take its lock or raise :class:`AlreadyRunningError`."""
        if self._file is not None:
            self._file.acquire()

    async def try_lead(self) -> bool:
        """Try once to become the leader; on SQLite this process is the only one."""
        if self._advisory is None:
            self.claim_file()
            self.is_leader = True
            return True
        try:
            self.is_leader = await self._advisory.try_acquire()
        except Exception as exc:
            log.error("cannot reach the database to take the leader lock (%s)", type(exc).__name__)
            await self._advisory.drop()
            self.is_leader = False
        if not self.is_leader:
            log.info(
                "another companion leads; standing by (retrying every %.0f s)", self.retry_seconds
            )
        return self.is_leader

    def watch(self, on_elected: Callback, on_deposed: Callback) -> None:
        """On PostgreSQL, keep watching the lock: take over when it is free, stop if lost."""
        if self._advisory is None or self._watch_task is not None:
            return
        self._watch_task = asyncio.create_task(
            self._watch(self._advisory, on_elected, on_deposed), name="leader-watch"
        )

    @property
    def check_seconds(self) -> float:
        """How often, and how long at most, the leader checks its lock connection."""
        return max(self.retry_seconds / 2, 1.0)

    @property
    def takeover_grace(self) -> float:
        """How long a standby that won the lock waits before it starts its loops.

        A leader whose connection the server dropped (freeing the lock) notices within one
        check period plus one check timeout and stops; waiting that long after winning means
        two processes never poll, plan or send at the same time.
        """
        return 2 * self.check_seconds

    async def _watch(self, lock: AdvisoryLock, on_elected: Callback, on_deposed: Callback) -> None:
        while True:
            if self.is_leader:
                await asyncio.sleep(self.check_seconds)
                if await lock.alive(self.check_seconds):
                    continue
                log.error(
                    "lost the database connection that holds the leader lock; stopping "
                    "polling, planning and sending, and standing by"
                )
                self.is_leader = False
                await on_deposed()
                await lock.drop()
                continue
            await asyncio.sleep(self.retry_seconds)
            try:
                won = await lock.try_acquire()
            except Exception as exc:
                log.warning("leader lock attempt failed (%s); retrying", type(exc).__name__)
                await lock.drop()
                continue
            if not won:
                continue
            await asyncio.sleep(self.takeover_grace)
            if not await lock.alive(self.check_seconds):
                await lock.drop()
                continue
            log.info("took over as the leader")
            self.is_leader = True
            try:
                await on_elected()
            except Exception:
                log.exception("could not start leading; letting go of the lock and retrying")
                self.is_leader = False
                await on_deposed()
                await lock.drop()

    async def stop_watching(self) -> None:
        """Stop taking over or stepping down (first thing when shutting down)."""
        task, self._watch_task = self._watch_task, None
        # The callbacks wait for the loops' tasks and suppress their cancellation, which can
        # swallow this one too; ask again until the watch really ends.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("the leader watch had failed", exc_info=task.exception())

    async def release(self) -> None:
        """Stop watching and let go of every lock this process holds (last thing)."""
        await self.stop_watching()
        self.is_leader = False
        if self._advisory is not None:
            await self._advisory.release()
        if self._file is not None:
            self._file.release()
