"""The one clock every part of the bot reads the time from.

Production reads the system clock. Tests move it with time-machine (which patches
``datetime.now``), and ``companion demo`` moves it forward by hand so that a week of schedule
can be tried in seconds: :meth:`Clock.advance` adds an offset and tells whoever subscribed
(the scheduler and the outbox sender) to look again at once.

It lives in ``storage`` because model defaults read it too, and ``storage`` is the layer every
other one may import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)


class Clock:
    """System time plus an offset that only ever moves forward."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        return datetime.now(UTC) + self._offset

    @property
    def offset(self) -> timedelta:
        """How far this clock is ahead of the system clock."""
        return self._offset

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by ``delta``, wake the subscribers and return the new now."""
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        self._offset += delta
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener's failure must not stop the clock moving
                log.exception("a clock listener failed")
        return self.now()

    def advance_to(self, when: datetime) -> datetime:
        """Move time forward to ``when`` (aware); a time already past changes nothing."""
        if when.tzinfo is None:
            raise ValueError("advance_to needs an aware datetime")
        return self.advance(max(timedelta(0), when - self.now()))

    def reset(self) -> None:
        """Back to system time (tests and a fresh demo)."""
        self._offset = timedelta(0)

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` whenever time is moved; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe


CLOCK = Clock()


def utcnow() -> datetime:
    """The current time on the one clock, as an aware UTC datetime."""
    return CLOCK.now()
