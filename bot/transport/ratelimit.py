"""Telegram's flood limits, enforced on our side so that the Bot API never has to say 429.

Telegram allows about 30 messages a second overall, one a second per chat and 20 a minute per
group. :class:`SendLimiter` keeps all three, plus the pauses a ``RetryAfter`` asks for:

* **Global:** sends start on a schedule ``1 / global_rate`` seconds apart (no bursts), and no
  more than ``global_rate`` requests count against any one-second window. A start the event
  loop made a little late (up to half an interval) does not push the schedule back, so the
  next one may follow that much sooner: without it every late wake-up is lost for good and
  the pace falls to about 0.9 of the rate. After a pause or an idle spell there is no credit.
* **Per chat:** a private chat gets at most ``chat_rate`` sends a second; a group (negative
  chat id) gets the same and, in addition, at most ``group_per_minute`` in any 60 seconds.
* **Pauses:** :meth:`SendLimiter.pause_chat` and :meth:`SendLimiter.pause_all` hold sends back
  until a ``retry_after`` has passed; :meth:`SendLimiter.note_retry_after` decides between the
  two (429s from two different chats within about a second mean the bot as a whole is limited).

Latency is accounted for: a request counts against its windows from the moment it leaves until
its response has come back *plus* the window's length. The server counts a request when it
arrives, which is after it left and before we saw the answer, so network jitter can never
squeeze more requests into one of the server's windows than the limit allows. A request leaves
when its slot is reserved, unless the caller reserves ahead (``depart_now=False``, as the outbox
sender does: it claims its row in between) and says when it leaves with
:meth:`SendLimiter.depart`; counting from the reservation instead charged every send the
claim's commit too, about 5% of the rate (bench/broadcast.py).

:class:`CompanionRateLimiter` plugs the same limiter into python-telegram-bot
(``ApplicationBuilder().rate_limiter(...)``), so a direct call such as ``send_chat_action``
shares the budget with the outbox sender. It never retries by itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: How late (as a share of the global interval) a start may be and still keep the schedule.
GLOBAL_CATCH_UP = 0.5
#: A reserved-ahead slot's lead (reservation to departure) counted at most this long, and the
#: weight of each new one in the moving average.
MAX_LEAD = 0.25
LEAD_WEIGHT = 0.2
#: Two 429s from different chats within this many seconds are treated as a global limit.
GLOBAL_429_WINDOW = 1.0
#: How long a chat's bookkeeping is kept after its last send before it is forgotten.
_IDLE_FORGET_AFTER = 120.0
#: A reserved slot not released within this many seconds is treated as finished.
SLOT_MAX_HOLD = 60.0
_CLEANUP_EVERY = 512
#: A window drops its stale slots once it holds at least this many (see ``_Window.prune``).
_MIN_PRUNE_AT = 64

_reserved: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "companion_slot_reserved", default=False
)


@contextmanager
def slot_already_reserved() -> Iterator[None]:
    """Tell :class:`CompanionRateLimiter` that the caller already holds a slot for this call.

    The outbox sender reserves its slot itself (it needs to know *before* it claims a row);
    inside this block a python-telegram-bot call made by the current task is not limited again.
    """
    token = _reserved.set(True)
    try:
        yield
    finally:
        _reserved.reset(token)


_calls: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "companion_bot_calls", default=None
)


@contextmanager
def recording_bot_calls() -> Iterator[list[str]]:
    """Collect the Bot API methods that python-telegram-bot calls through the limiter here.

    The inbox worker uses this to learn whether processing an update reached outside the
    database (an answered button, a direct reply): such an update must never be run twice.
    """
    calls: list[str] = []
    token = _calls.set(calls)
    try:
        yield calls
    finally:
        _calls.reset(token)


def retry_after_seconds(exc: RetryAfter) -> float:
    """The pause a ``RetryAfter`` asks for, in seconds, whatever type PTB uses for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        value: Any = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def is_group(chat_id: int) -> bool:
    """Whether a chat id is a group, supergroup or channel (Telegram gives them negative ids)."""
    return chat_id < 0


@dataclass(eq=False)
class Slot:
    """One reserved send. Call :meth:`release` when the response (or the error) is back.

    Until released, the slot counts as in flight against every window it belongs to; after
    release it keeps counting for each window's length. :meth:`cancel` gives the slot back
    unused (nothing was sent).
    """

    limiter: SendLimiter
    chat_id: int | None
    start: float
    end: float | None = None
    cancelled: bool = False
    #: Whether the request has left (see :meth:`SendLimiter.depart`); until then it counts
    #: against no window.
    departed: bool = True
    #: When it left (the reservation's time for a slot that leaves at once).
    left: float | None = None

    @property
    def open(self) -> bool:
        """Whether the slot has been neither released nor cancelled."""
        return self.end is None and not self.cancelled

    def release(self) -> None:
        """Record that the request is finished (answered, failed or given up on)."""
        if self.open:
            self.limiter._release(self)

    def cancel(self) -> None:
        """Give the slot back: nothing was sent with it, so it counts against nothing."""
        if self.open:
            self.limiter._cancel(self)


@dataclass
class _Window:
    """At most ``limit`` slots within ``period`` seconds, each counted until end + period."""

    limit: int
    period: float
    slots: list[Slot] = field(default_factory=list)
    #: Slot count at which stale slots are dropped even though the window is not full.
    next_prune: int = _MIN_PRUNE_AT

    def prune(self, now: float) -> None:
        self.slots = [
            s for s in self.slots if not s.cancelled and _end(s, now) + self.period > now
        ]
        # Doubling keeps pruning amortised O(1) per send and the list at most twice the live
        # slots, however high the limit (a limit of thousands a second would otherwise scan
        # thousands of slots on every send).
        self.next_prune = max(_MIN_PRUNE_AT, 2 * len(self.slots))

    def ready_at(self, now: float, lead: float = 0.0) -> float:
        """When one more slot fits (``now`` if it fits already, ``inf`` if waiting on answers),
        for a request that will leave ``lead`` seconds after that."""
        if len(self.slots) < self.limit and len(self.slots) < self.next_prune:
            # Fewer slots than the limit, counting stale ones too: one more fits for sure.
            return now
        self.prune(now)
        leaves = now + lead
        expiries = sorted(
            expiry
            for s in self.slots
            if (s.departed or s.end is not None)
            and (expiry := _end(s, now) + self.period) > leaves
        )
        excess = len(expiries) - self.limit + 1
        if excess <= 0:
            return now
        return expiries[excess - 1] - lead


def _end(slot: Slot, now: float) -> float:
    """When a slot stopped counting as in flight (``inf`` while it still does).

    A slot never released is taken as finished :data:`SLOT_MAX_HOLD` seconds after it left,
    so one forgotten ``release()`` cannot stall every send for good. Counted from when it
    left, not from its reservation: a slot that waited out a minute's ``retry_after`` before
    leaving must still count once it leaves.
    """
    if slot.end is not None:
        return slot.end
    if not slot.departed:
        return math.inf  # kept (counting against nothing) until it leaves or is cancelled
    deadline = (slot.start if slot.left is None else slot.left) + SLOT_MAX_HOLD
    return deadline if deadline <= now else math.inf


@dataclass
class _ChatState:
    rate_window: _Window
    min_interval: float
    group_window: _Window | None = None
    last_start: float = -math.inf
    paused_until: float = -math.inf

    def ready_at(self, now: float) -> float:
        """When the next send to this chat may be reserved: its pace, pause and windows."""
        return max(self.last_start + self.min_interval, self.limits_ready_at(now))

    def limits_ready_at(self, now: float) -> float:
        """When a request to this chat may leave: its pause and its windows."""
        ready = max(now, self.paused_until, self.rate_window.ready_at(now))
        if self.group_window is not None:
            ready = max(ready, self.group_window.ready_at(now))
        return ready

    def idle(self, now: float) -> bool:
        self.rate_window.prune(now)
        if self.group_window is not None:
            self.group_window.prune(now)
            if self.group_window.slots:
                return False
        return (
            not self.rate_window.slots
            and self.paused_until <= now
            and self.last_start + _IDLE_FORGET_AFTER <= now
        )


class SendLimiter:
    """Global, per-chat and per-group send limits plus ``retry_after`` pauses.

    Queries, :meth:`try_acquire` and the pauses are synchronous; :meth:`acquire` and
    :meth:`reserve` wait. The limiter is meant for one event loop (it is not thread-safe).
    ``clock`` must be monotonic and in seconds (the sandbox's flood control uses
    ``time.monotonic`` too).
    """

    def __init__(
        self,
        global_rate: float,
        chat_rate: float,
        group_per_minute: int,
        clock: Clock = time.monotonic,
    ) -> None:
        if global_rate <= 0 or chat_rate <= 0 or group_per_minute <= 0:
            raise ValueError("rates must be positive")
        self.global_rate = global_rate
        self.chat_rate = chat_rate
        self.group_per_minute = group_per_minute
        self.clock = clock
        self._global_interval = 1.0 / global_rate
        self._global_window = _Window(limit=max(1, math.floor(global_rate)), period=1.0)
        #: When the next send may start on the global schedule.
        self._global_due = -math.inf
        #: How long reserved-ahead slots have lately taken to leave (a moving average).
        self._lead = 0.0
        #: The last reservation and the schedule before it (so an unused slot gives it back).
        self._undo: tuple[Slot, float] | None = None
        self._paused_all_until = -math.inf
        self._chats: dict[int, _ChatState] = {}
        self._recent_429: dict[int, float] = {}
        self._acquired = 0
        self._changed: asyncio.Event | None = None

    # -- state ---------------------------------------------------------------------------

    def _chat(self, chat_id: int) -> _ChatState:
        state = self._chats.get(chat_id)
        if state is None:
            state = _ChatState(
                rate_window=_Window(limit=max(1, math.floor(self.chat_rate)), period=1.0),
                min_interval=1.0 / self.chat_rate,
                group_window=(
                    _Window(limit=self.group_per_minute, period=60.0)
                    if is_group(chat_id)
                    else None
                ),
            )
            self._chats[chat_id] = state
        return state

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _cleanup(self, now: float) -> None:
        for chat_id in [c for c, s in self._chats.items() if s.idle(now)]:
            del self._chats[chat_id]
        for chat_id in [c for c, t in self._recent_429.items() if t + GLOBAL_429_WINDOW < now]:
            del self._recent_429[chat_id]

    # -- queries -------------------------------------------------------------------------

    def global_ready_at(self, now: float | None = None, *, ahead: bool = False) -> float:
        """Clock time at which the next send to *some* chat may start (``inf``: wait for one).

        ``ahead``: for a slot reserved ahead of its departure (``depart_now=False``); the global
        window is checked for when such a request typically leaves (see :meth:`depart`).
        """
        if now is None:
            now = self.clock()
        return max(self._global_due, self._global_limits_ready_at(now, ahead=ahead))

    def _global_limits_ready_at(self, now: float, *, ahead: bool = False) -> float:
        """When a request may leave as far as the whole bot goes: its pause and its window."""
        lead = self._lead if ahead else 0.0
        return max(now, self._paused_all_until, self._global_window.ready_at(now, lead))

    def ready_at(
        self, chat_id: int | None, now: float | None = None, *, ahead: bool = False
    ) -> float:
        """Clock time at which a send to ``chat_id`` may start; ``<= clock()`` means now.

        ``math.inf`` means a window is full of requests still waiting for their answers: ask
        again after one is released. ``chat_id=None`` checks the global limits only.
        """
        if now is None:
            now = self.clock()
        ready = self.global_ready_at(now, ahead=ahead)
        if chat_id is None:
            return ready
        state = self._chats.get(chat_id)
        if state is None:
            return ready
        return max(ready, state.ready_at(now))

    def delay(self, chat_id: int | None, *, ahead: bool = False) -> float:
        """Seconds until a send to ``chat_id`` may start (0 when it may start now)."""
        now = self.clock()
        return max(0.0, self.ready_at(chat_id, now, ahead=ahead) - now)

    def is_paused(self, chat_id: int | None = None) -> bool:
        """Whether a ``retry_after`` pause is in force for the bot or for ``chat_id``."""
        now = self.clock()
        if self._paused_all_until > now:
            return True
        state = self._chats.get(chat_id) if chat_id is not None else None
        return state is not None and state.paused_until > now

    # -- reservations --------------------------------------------------------------------

    def try_acquire(self, chat_id: int | None, *, depart_now: bool = True) -> Slot | None:
        """Reserve a send to ``chat_id`` now if every limit allows it, else return None.

        With ``depart_now=False`` the request leaves later: call :meth:`depart` just before it
        does.
        """
        now = self.clock()
        if self.ready_at(chat_id, now, ahead=not depart_now) > now:
            return None
        slot = Slot(
            limiter=self,
            chat_id=chat_id,
            start=now,
            departed=depart_now,
            left=now if depart_now else None,
        )
        self._undo = (slot, self._global_due)
        on_time = now - self._global_due <= GLOBAL_CATCH_UP * self._global_interval
        self._global_due = (self._global_due if on_time else now) + self._global_interval
        self._global_window.slots.append(slot)
        if chat_id is not None:
            state = self._chat(chat_id)
            state.last_start = now
            state.rate_window.slots.append(slot)
            if state.group_window is not None:
                state.group_window.slots.append(slot)
        self._acquired += 1
        if self._acquired % _CLEANUP_EVERY == 0:
            self._cleanup(now)
        return slot

    async def acquire(self, chat_id: int | None) -> Slot:
        """Wait until a send to ``chat_id`` is allowed, then reserve it.

        Release the slot when the request has finished (see :meth:`Slot.release`).
        """
        while True:
            slot = self.try_acquire(chat_id)
            if slot is not None:
                return slot
            await self.wait_for_change(self.delay(chat_id))

    def departure_ready_at(self, slot: Slot, now: float | None = None) -> float:
        """Clock time at which ``slot``'s request may leave (``inf``: wait for an answer)."""
        if now is None:
            now = self.clock()
        ready = self._global_limits_ready_at(now)
        state = self._chats.get(slot.chat_id) if slot.chat_id is not None else None
        return ready if state is None else max(ready, state.limits_ready_at(now))

    def try_depart(self, slot: Slot) -> bool:
        """Let ``slot``'s request leave now if every window allows it; whether it may."""
        if not slot.departed:
            now = self.clock()
            slot.departed = self.departure_ready_at(slot, now) <= now
            if slot.departed:
                slot.left = now
                lead = min(now - slot.start, MAX_LEAD)
                self._lead += LEAD_WEIGHT * (lead - self._lead)
        return slot.departed

    async def depart(self, slot: Slot) -> None:
        """Wait until ``slot``'s request may leave, then count it against its windows from now.

        For a slot reserved with ``depart_now=False``. Pauses set since the reservation (a 429
        meanwhile) are waited out here too, so that nothing leaves while one holds.
        """
        while not self.try_depart(slot):
            await self.wait_for_change(self.departure_ready_at(slot) - self.clock())

    @asynccontextmanager
    async def reserve(self, chat_id: int | None) -> AsyncIterator[Slot]:
        """``async with limiter.reserve(chat_id):`` wait for a slot, release it on the way out."""
        slot = await self.acquire(chat_id)
        try:
            yield slot
        finally:
            slot.release()

    async def wait_for_change(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early when a slot is released or a pause is set.

        An infinite wait is capped at one second as a safety net.
        """
        if self._changed is None:
            self._changed = asyncio.Event()
        event = self._changed
        seconds = min(seconds, 1.0)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    def _release(self, slot: Slot) -> None:
        slot.end = self.clock()
        self._notify()

    def _cancel(self, slot: Slot) -> None:
        slot.cancelled = True
        # The reservation moved the minimum-interval marks forward; an unused slot gives
        # them back only if nothing else was reserved since.
        if self._undo is not None and self._undo[0] is slot:
            self._global_due = self._undo[1]
            self._undo = None
        if slot.chat_id is not None:
            state = self._chats.get(slot.chat_id)
            if state is not None and state.last_start == slot.start:
                state.last_start = -math.inf
        self._notify()

    # -- pauses --------------------------------------------------------------------------

    def pause_chat(self, chat_id: int, seconds: float) -> None:
        """Send nothing to ``chat_id`` for ``seconds`` (a per-chat ``retry_after``)."""
        state = self._chat(chat_id)
        state.paused_until = max(state.paused_until, self.clock() + seconds)
        self._notify()

    def pause_all(self, seconds: float) -> None:
        """Send nothing at all for ``seconds`` (the bot as a whole hit a limit)."""
        self._paused_all_until = max(self._paused_all_until, self.clock() + seconds)
        self._notify()

    def note_retry_after(self, chat_id: int | None, seconds: float) -> bool:
        """Record a 429 for ``chat_id`` and pause accordingly; True when paused globally.

        The chat is always paused. If a *different* chat got a 429 within
        :data:`GLOBAL_429_WINDOW` seconds, or there is no chat, the whole bot is paused too.
        """
        now = self.clock()
        if chat_id is None:
            self.pause_all(seconds)
            return True
        self.pause_chat(chat_id, seconds)
        others = [
            c for c, t in self._recent_429.items() if c != chat_id and t + GLOBAL_429_WINDOW >= now
        ]
        self._recent_429[chat_id] = now
        if others:
            self.pause_all(seconds)
            log.warning(
                "429 from %d chats within %.1f s: pausing all sends",
                len(others) + 1,
                GLOBAL_429_WINDOW,
            )
            return True
        return False


class CompanionRateLimiter(BaseRateLimiter[None]):
    """python-telegram-bot rate limiter backed by a :class:`SendLimiter`.

    Every request that names a ``chat_id`` waits for its slot; requests without one (e.g.
    ``answerCallbackQuery``, ``getMe``) pass straight through. A ``RetryAfter`` is recorded as
    a pause and re-raised: this limiter never retries, the caller decides.
    """

    def __init__(self, limiter: SendLimiter) -> None:
        self.limiter = limiter

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    async def process_request(  # noqa: PLR0917 - python-telegram-bot's signature
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Wait for a slot for ``data["chat_id"]`` (if any), make the call, record a 429."""
        calls = _calls.get()
        if calls is not None:
            calls.append(endpoint)
        raw_chat = data.get("chat_id")
        if _reserved.get() or raw_chat is None:
            return await callback(*args, **kwargs)
        chat_id: int | None
        try:
            chat_id = int(raw_chat)
        except (TypeError, ValueError):
            chat_id = None  # "@channelname": the global limit still applies
        async with self.limiter.reserve(chat_id):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.limiter.note_retry_after(chat_id, retry_after_seconds(exc))
                log.warning("429 on %s for chat %s; paused, not retried", endpoint, chat_id)
                raise
