"""How often someone who is not enrolled may get the neutral reply, remembered in memory only.

Nothing about outsiders is written to the database. Each running bot has its own
:class:`OutsiderThrottle` (on its ``Services``), which the gate (``handlers.gate``) asks before
answering.
"""

from __future__ import annotations

import time
from collections import OrderedDict

OUTSIDER_REPLY_EVERY = 600.0  # seconds
_MAX_REMEMBERED = 10_000


class OutsiderThrottle:
    """Remembers, in memory only, when each outsider was last answered."""

    def __init__(self, every: float = OUTSIDER_REPLY_EVERY) -> None:
        self.every = every
        self._last: OrderedDict[int, float] = OrderedDict()

    def allow(self, user_id: int, now: float | None = None) -> bool:
        """True when this outsider may get the neutral reply now."""
        now = time.monotonic() if now is None else now
        last = self._last.get(user_id)
        if last is not None and now - last < self.every:
            return False
        self._last[user_id] = now
        self._last.move_to_end(user_id)
        while len(self._last) > _MAX_REMEMBERED:
            self._last.popitem(last=False)
        return True
