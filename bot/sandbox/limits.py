"""Flood-limit enforcement and fault injection for the sandbox Telegram.

:class:`FloodLimits` configures Telegram's documented broadcast limits; :class:`FloodController`
enforces them with sliding half-open windows ``(t - w, t]`` over *delivered* sending requests:

* private chat: at most ``per_chat_per_second`` in any 1 s window,
* group chat: at most ``group_per_minute`` in any 60 s window,
* whole bot: at most ``global_per_second`` in any 1 s window.

A request over a limit is refused with 429 and ``retry_after = ceil(seconds until the window
frees)``; the controller then remembers "in force until now + retry_after" for that chat (or
globally). A sending request arriving while such a retry_after is still in force is a *flood
violation*: it is refused too and reported, because a well-behaved client never does that.

:class:`Faults` injects failures: HTTP errors, dropped connections, "accepted but the answer
hangs" (Telegram's "timed out but delivered"), and added latency.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

#: Methods counted by the flood limits (lower-case).
SENDING_METHODS = frozenset(
    name.lower()
    for name in (
        "sendMessage",
        "sendDocument",
        "sendPhoto",
        "sendVoice",
        "sendAudio",
        "sendVideo",
        "sendVideoNote",
        "sendAnimation",
        "sendSticker",
        "sendMediaGroup",
        "sendLocation",
        "sendVenue",
        "sendContact",
        "sendPoll",
        "sendDice",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
        "editMessageText",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
    )
)

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    420: "Flood",
    429: "Too Many Requests: retry after 1",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class FloodLimits:
    """Telegram's sending limits; enforced only when ``enforce`` is true."""

    enforce: bool = False
    global_per_second: int = 30
    per_chat_per_second: int = 1
    group_per_minute: int = 20


@dataclass
class FloodRefusal:
    """Why a sending request is refused: ``retry_after`` seconds, and a violation if any."""

    retry_after: int
    violation: str | None = None


class FloodController:
    """Sliding-window counters and the "retry_after in force" memory."""

    def __init__(self, limits: FloodLimits, clock: Callable[[], float] = time.monotonic) -> None:
        """Create a controller for ``limits`` (mutable: change fields at any time)."""
        self.limits = limits
        self._clock = clock
        self._global: deque[float] = deque()
        self._chats: dict[int, deque[float]] = {}
        self._global_until = 0.0
        self._chat_until: dict[int, float] = {}

    def reset(self) -> None:
        """Forget all counters and every retry_after in force."""
        self._global.clear()
        self._chats.clear()
        self._global_until = 0.0
        self._chat_until.clear()

    @staticmethod
    def _prune(window: deque[float], now: float, width: float) -> None:
        while window and window[0] <= now - width:
            window.popleft()

    def check(self, method: str, chat_id: int | None, is_group: bool) -> FloodRefusal | None:
        """Decide whether a sending request may go through now; ``None`` means yes."""
        if not self.limits.enforce or method.lower() not in SENDING_METHODS:
            return None
        now = self._clock()
        if self._global_until > now:
            left = self._global_until - now
            return FloodRefusal(
                math.ceil(left),
                f"{method} to chat {chat_id} arrived {left:.3f}s before a global "
                f"retry_after expired",
            )
        if chat_id is not None:
            until = self._chat_until.get(chat_id, 0.0)
            if until > now:
                left = until - now
                return FloodRefusal(
                    math.ceil(left),
                    f"{method} to chat {chat_id} arrived {left:.3f}s before that chat's "
                    f"retry_after expired",
                )
        self._prune(self._global, now, 1.0)
        limit = max(1, self.limits.global_per_second)
        if len(self._global) >= limit:
            free_at = self._global[len(self._global) - limit] + 1.0
            retry = max(1, math.ceil(free_at - now))
            self._global_until = now + retry
            return FloodRefusal(retry)
        if chat_id is not None:
            width = 60.0 if is_group else 1.0
            limit = max(
                1, self.limits.group_per_minute if is_group else self.limits.per_chat_per_second
            )
            window = self._chats.setdefault(chat_id, deque())
            self._prune(window, now, width)
            if len(window) >= limit:
                free_at = window[len(window) - limit] + width
                retry = max(1, math.ceil(free_at - now))
                self._chat_until[chat_id] = now + retry
                return FloodRefusal(retry)
        return None

    def record(self, method: str, chat_id: int | None) -> None:
        """Count a delivered sending request."""
        if method.lower() not in SENDING_METHODS:
            return
        now = self._clock()
        self._global.append(now)
        if chat_id is not None:
            self._chats.setdefault(chat_id, deque()).append(now)


@dataclass
class _Rule:
    remaining: int
    method: str | None
    status: int = 500
    description: str | None = None
    retry_after: int | None = None
    seconds: float = 0.0

    def matches(self, method: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is None:
            return method.lower() != "getupdates"
        return self.method == "*" or self.method.lower() == method.lower()


@dataclass
class Faults:
    """Fault injection, mutable at any time (also through ``POST /control/faults``).

    ``method=None`` matches every Bot API method except ``getUpdates`` (so a polling bot does
    not swallow the faults meant for its sends); ``method="*"`` matches every method; otherwise
    the method name (case-insensitive).
    """

    slow_seconds: float = 0.0  # added latency before every Bot API answer
    _failures: list[_Rule] = field(default_factory=list)
    _drops: list[_Rule] = field(default_factory=list)
    _hangs: list[_Rule] = field(default_factory=list)
    _stalls: list[_Rule] = field(default_factory=list)

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        method: str | None = None,
        *,
        description: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``n`` matching calls with HTTP ``status`` (not delivered)."""
        self._failures.append(_Rule(n, method, status, description, retry_after))

    def network_drop_next(self, n: int = 1, method: str | None = None) -> None:
        """Close the connection of the next ``n`` matching calls without answering."""
        self._drops.append(_Rule(n, method))

    def hang_after_accept(
        self, n: int = 1, seconds: float = 10.0, method: str | None = None
    ) -> None:
        """Process the next ``n`` matching calls normally, then delay the answer ``seconds``."""
        self._hangs.append(_Rule(n, method, seconds=seconds))

    def hang_before_accept(
        self, n: int = 1, seconds: float = 10.0, method: str | None = None
    ) -> None:
        """Hold the next ``n`` matching calls ``seconds`` before processing them; one whose
        caller has gone meanwhile (a killed bot) is never processed, as if it never arrived."""
        self._stalls.append(_Rule(n, method, seconds=seconds))

    def clear(self) -> None:
        """Remove every pending fault and the added latency."""
        self._failures.clear()
        self._drops.clear()
        self._hangs.clear()
        self._stalls.clear()
        self.slow_seconds = 0.0

    @staticmethod
    def _take(rules: list[_Rule], method: str) -> _Rule | None:
        for rule in rules:
            if rule.matches(method):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    rules.remove(rule)
                return rule
        return None

    def take_failure(self, method: str) -> tuple[int, str, int | None] | None:
        """Consume a failure for ``method``: ``(status, description, retry_after)``."""
        rule = self._take(self._failures, method)
        if rule is None:
            return None
        description = rule.description or _DEFAULT_DESCRIPTIONS.get(rule.status, "Error")
        retry_after = rule.retry_after
        if rule.status == 429 and retry_after is None:
            retry_after = 1
        return rule.status, description, retry_after

    def take_drop(self, method: str) -> bool:
        """Consume a connection drop for ``method``."""
        return self._take(self._drops, method) is not None

    def take_hang(self, method: str) -> float | None:
        """Consume a hang for ``method``; return its delay in seconds."""
        rule = self._take(self._hangs, method)
        return rule.seconds if rule is not None else None

    def take_stall(self, method: str) -> float | None:
        """Consume a hold before processing for ``method``; return its delay in seconds."""
        rule = self._take(self._stalls, method)
        return rule.seconds if rule is not None else None

    def to_dict(self) -> dict[str, Any]:
        """Pending faults as JSON-friendly data."""
        return {
            "slow_seconds": self.slow_seconds,
            "failures": [asdict(r) for r in self._failures],
            "drops": [asdict(r) for r in self._drops],
            "hangs": [asdict(r) for r in self._hangs],
            "stalls": [asdict(r) for r in self._stalls],
        }
