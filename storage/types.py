"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator

#: How SQLAlchemy's SQLite dialect writes a datetime: "YYYY-MM-DD HH:MM:SS.ffffff" (26 characters).
_SQLITE_STORED_LENGTH = 26
_fromisoformat = datetime.fromisoformat


def _as_utc(value: Any) -> datetime | None:
    """Any stored form (aware, naive UTC, or an ISO string) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = _fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _sqlite_to_utc(value: Any) -> datetime | None:
    # The common case, a value this type wrote, parsed in one C call: appending the offset is
    # several times quicker than ``replace(tzinfo=UTC)``, which matters for a million-row export.
    if value.__class__ is str and len(value) == _SQLITE_STORED_LENGTH:
        return _fromisoformat(value + "+00:00")
    return _as_utc(value)


def _aware_to_utc(value: Any) -> datetime | None:
    if value is not None and value.__class__ is datetime and value.tzinfo is UTC:
        return value
    return _as_utc(value)


def _in_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is refused so a local-time bug cannot be stored."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTCDateTime column; attach a time zone")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _utc_to_sqlite(value: datetime | None) -> str | None:
    if value is None:
        return None
    return _in_utc(value).isoformat(" ", "microseconds")[:_SQLITE_STORED_LENGTH]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zone type and hands back naive values; PostgreSQL's ``timestamptz``
    hands back aware ones in the session's zone. Both come back here as aware UTC, and a naive
    value is refused on the way in so that a local-time bug cannot be stored silently.

    On SQLite the text is written and read here in one step (the same text SQLAlchemy's own
    ``DATETIME`` writes, so stored rows and comparisons are unchanged), which keeps reading a
    datetime to a single C call on the hot paths (exports, statistics, the inbox).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC before writing; refuse naive datetimes."""
        if value is None:
            return None
        value = _in_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the backend gave back."""
        return _as_utc(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the stored text straight from an aware datetime; elsewhere as declared."""
        if dialect.name == "sqlite":
            return _utc_to_sqlite
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        """One step from what the driver returns to an aware UTC datetime."""
        if dialect.name == "sqlite":
            return _sqlite_to_utc
        return _aware_to_utc
