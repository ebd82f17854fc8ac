"""Values the database formats itself, for exports of a million rows.

Parsing a stored time into a Python datetime and formatting it again costs a few microseconds,
seven times a row; the database does the same in C as it reads the row. Each construct here
compiles to its own SQL on SQLite and on PostgreSQL and gives the same text on both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String, case, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class _UtcText(FunctionElement[str]):
    """A time as ISO 8601 in UTC with a Z, to the second (``2025-01-06T18:01:30Z``)."""

    type = String()
    inherit_cache = True
    name = "utc_text"


@compiles(_UtcText, "sqlite")
def _utc_text_sqlite(element: _UtcText, compiler: SQLCompiler, **kw: Any) -> str:
    # The stored text is "YYYY-MM-DD HH:MM:SS.ffffff" in UTC (storage/types.py writes nothing
    # else), so the answer is a matter of cutting it: exact, and unlike strftime it never
    # rounds (newer SQLite rounds to the millisecond first, which can move 23:59:59.9996 on
    # the last days of a month to the wrong day).
    value = compiler.process(element.clauses, **kw)
    return f"(substr({value}, 1, 10) || 'T' || substr({value}, 12, 8) || 'Z')"


@compiles(_UtcText, "postgresql")
def _utc_text_postgresql(element: _UtcText, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"""to_char(({value}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


class _SecondsBetween(FunctionElement[int]):
    """Whole seconds from the second time to the first, cut towards zero, at least 0."""

    type = Integer()
    inherit_cache = True
    name = "seconds_between"


@compiles(_SecondsBetween, "sqlite")
def _seconds_sqlite(element: _SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"max(0, ({_microseconds(later)} - {_microseconds(earlier)}) / 1000000)"


def _microseconds(stored: str) -> str:
    # Whole seconds since 1970 and the six digits after the point of the stored
    # "YYYY-MM-DD HH:MM:SS.ffffff", added as integers: julianday's double is ~50 us coarse here,
    # enough to turn 29.9996 s into 30.
    seconds = f"CAST(strftime('%s', substr({stored}, 1, 19)) AS INTEGER)"
    return f"({seconds} * 1000000 + CAST(substr({stored}, 21, 6) AS INTEGER))"


@compiles(_SecondsBetween, "postgresql")
def _seconds_postgresql(element: _SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"GREATEST(0, CAST(trunc(EXTRACT(EPOCH FROM ({later}) - ({earlier}))) AS INTEGER))"


def utc_text(column: Any) -> Any:
    """``column`` (a stored time) as ``YYYY-MM-DDTHH:MM:SSZ``, NULL as NULL."""
    return _UtcText(column)


def seconds_between(later: Any, earlier: Any) -> Any:
    """Whole seconds from ``earlier`` to ``later`` (0 if negative); NULL if either is NULL."""
    # PostgreSQL's GREATEST skips a NULL, so the NULL is kept here, once for both databases.
    either_missing = or_(later.is_(None), earlier.is_(None))
    return case((either_missing, None), else_=_SecondsBetween(later, earlier))


def true_false(condition: Any) -> Any:
    """``'true'`` or ``'false'`` (never NULL) for a condition, as the export writes booleans."""
    return case((condition, "true"), else_="false")
