"""aiosqlite for SQLAlchemy with one thread hop per statement instead of three or four.

aiosqlite runs the sqlite3 connection on its own thread, and every call (make a cursor,
execute, fetch the rows, close the cursor) is one trip there and back through a queue and the
event loop. SQLAlchemy's stock adapter makes each of those calls separately, so a statement
costs three or four hand-offs; with the event loop busy each hand-off waits for the GIL, and
that waiting was the largest single cost of processing an update (bench/inbound.py).

The cursor here does the whole statement (cursor, execute, fetch, close) as one function on
aiosqlite's thread. The SQL, the transactions and the error translation are SQLAlchemy's own;
only the number of hand-offs changes. Server-side cursors (``stream()``) keep the stock
implementation.

It leans on private parts of aiosqlite (``Connection._execute``, ``Connection._conn``) and of
SQLAlchemy's adapter (``_connection``, ``_handle_exception``), whose versions pyproject.toml
pins exactly. Should a different version be installed anyway, :func:`one_hop_problem` notices
at the first connection and the stock adapter is used instead, with a warning: slower, never
wrong.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_only

log = logging.getLogger(__name__)


class _Outcome:
    """What one statement left behind, read on aiosqlite's thread."""

    __slots__ = ("description", "lastrowid", "rowcount", "rows")

    def __init__(self, cursor: sqlite3.Cursor, fetch: bool) -> None:
        self.description = cursor.description
        self.rows: list[Any] = cursor.fetchall() if fetch and self.description else []
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid


def _run(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        return _Outcome(cursor, fetch=not many)
    finally:
        cursor.close()


class OneHopCursor:
    """A DBAPI cursor whose ``execute`` is a single trip to aiosqlite's thread."""

    server_side = False
    arraysize = 1

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = cast(aiosqlite.Connection, adapt_connection._connection)
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    def _submit(self, operation: str, parameters: Any, many: bool) -> None:
        conn = self._connection
        try:
            outcome: _Outcome = await_only(
                conn._execute(lambda: _run(conn._conn, operation, parameters, many))
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self.description = outcome.description
        self._rows = deque(outcome.rows)
        self.rowcount = outcome.rowcount
        self.lastrowid = outcome.lastrowid

    def execute(self, operation: str, parameters: Any = None) -> None:
        """Run one statement (and fetch its rows) in one hand-off."""
        self._submit(operation, parameters, many=False)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        """Run one statement for many parameter sets in one hand-off."""
        self._submit(operation, seq_of_parameters, many=True)

    def setinputsizes(self, *_inputsizes: Any) -> None:
        """Not used by SQLite."""

    async def _async_soft_close(self) -> None:
        """Called by SQLAlchemy's asyncio layer: the rows are already fetched, nothing to do."""

    def close(self) -> None:
        """The sqlite3 cursor is already closed; drop what is left."""
        self._rows.clear()

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def fetchone(self) -> Any | None:
        """The next row, or None."""
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to ``size`` rows."""
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> list[Any]:
        """Every remaining row."""
        rows = list(self._rows)
        self._rows.clear()
        return rows


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection adapter, with :class:`OneHopCursor` for statements."""

    __slots__ = ()

    def cursor(self, server_side: bool = False) -> Any:
        """A one-hop cursor (server-side cursors keep SQLAlchemy's own)."""
        if server_side:
            return super().cursor(server_side=True)
        return OneHopCursor(self)


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI shim, handing out :class:`OneHopConnection` objects."""

    #: Why the one-hop cursor cannot be used here (checked at the first connection), or None.
    problem: str | None = None
    _checked = False

    def connect(self, *arg: Any, **kw: Any) -> Any:
        """Connect as SQLAlchemy does, then use the one-hop cursor (if this version allows)."""
        connection = super().connect(*arg, **kw)
        if not self._checked:  # once per engine: each engine has its own OneHopDBAPI
            self._checked = True
            self.problem = one_hop_problem(connection)
            if self.problem is not None:
                log.warning(
                    "SQLite: using the stock aiosqlite adapter (%s); the installed versions "
                    "differ from the ones pinned in pyproject.toml",
                    self.problem,
                )
        if self.problem is None:
            connection.__class__ = OneHopConnection
        return connection


def one_hop_problem(connection: Any) -> str | None:
    """Why the one-hop cursor cannot work with these aiosqlite/SQLAlchemy versions, or None."""
    inner = getattr(connection, "_connection", None)
    if inner is None:
        return "SQLAlchemy's adapter has no _connection"
    if not callable(getattr(connection, "_handle_exception", None)):
        return "SQLAlchemy's adapter has no _handle_exception"
    if not callable(getattr(inner, "_execute", None)):
        return "aiosqlite's Connection has no _execute"
    if not isinstance(getattr(inner, "_conn", None), sqlite3.Connection):
        return "aiosqlite's Connection has no _conn"
    return None


def one_hop_dbapi() -> OneHopDBAPI:
    """The DBAPI module to pass as ``module=`` to ``create_async_engine`` for aiosqlite URLs."""
    return OneHopDBAPI(aiosqlite, sqlite3)
