"""SendLimiter with a fake clock, and CompanionRateLimiter in front of python-telegram-bot."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.transport.ratelimit import CompanionRateLimiter, SendLimiter, slot_already_reserved


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, global_rate: float = 30, chat_rate: float = 1, group: int = 20):
    return SendLimiter(global_rate, chat_rate, group, clock=clock)


def count_in_any_window(times: list[float], period: float) -> int:
    """The most events in any half-open window (t - period, t]."""
    best = 0
    for t in times:
        best = max(best, sum(1 for u in times if t - period < u <= t))
    return best


def test_global_spacing_is_a_strict_minimum_interval(clock: FakeClock) -> None:
    limiter = make(clock, global_rate=10)
    first = limiter.try_acquire(1)
    assert first is not None
    first.release()
    assert limiter.try_acquire(2) is None  # no burst, even to another chat
    assert limiter.delay(2) == pytest.approx(0.1)
    clock.advance(0.099)
    assert limiter.try_acquire(2) is None
    clock.advance(0.001)
    slot = limiter.try_acquire(2)
    assert slot is not None


def test_a_late_start_does_not_slow_the_pace_but_never_bursts(clock: FakeClock) -> None:
    """Each start comes 4 ms after it was allowed (the event loop woke late): the pace still
    keeps to the rate, where a strict gap from the last start would lose 4 ms every time."""
    limiter = make(clock, global_rate=10)
    starts: list[float] = []
    while len(starts) < 100:
        clock.advance(limiter.delay(len(starts) + 1) + 0.004)
        slot = limiter.try_acquire(len(starts) + 1)
        assert slot is not None
        starts.append(clock.now)
        slot.release()
    # The one-second window still counts each real start, so it lends a little of the 4 ms
    # back once a second; the strict gap would give 0.104.
    assert (starts[-1] - starts[0]) / 99 == pytest.approx(0.1, rel=0.005)
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.05
    # Late by more than half an interval (an idle spell): no credit, the gap is full again.
    clock.advance(limiter.delay(1) + 0.3)
    assert limiter.try_acquire(1000) is not None
    assert limiter.delay(1001) == pytest.approx(0.1)


def test_an_unused_slot_gives_the_schedule_back(clock: FakeClock) -> None:
    limiter = make(clock, global_rate=10)
    first = limiter.try_acquire(1)
    assert first is not None
    clock.advance(0.1)
    unused = limiter.try_acquire(2)
    assert unused is not None
    unused.cancel()
    assert limiter.try_acquire(3) is not None  # the cancelled slot took no time


def test_global_rate_never_exceeded_in_any_window(clock: FakeClock) -> None:
    limiter = make(clock, global_rate=30)
    starts: list[float] = []
    chat = 0
    while clock.now < 1005.0:
        chat += 1
        slot = limiter.try_acquire(chat)
        if slot is None:
            clock.advance(0.001)
            continue
        starts.append(clock.now)
        clock.advance(0.002)  # the answer comes back 2 ms later
        slot.release()
    assert count_in_any_window(starts, 1.0) <= 30
    assert len(starts) >= 5 * 30 * 0.95  # and the budget is nearly all used


def simulate_reserve_ahead(clock: FakeClock, *, depart_now: bool) -> list[float]:
    """Five seconds of a sender that reserves a slot, spends 40 ms claiming its row, then
    sends (the answer back 2 ms later), as the outbox sender does; the departure times."""
    limiter = make(clock, global_rate=30)
    waiting: list[tuple[float, Any]] = []  # (claimed at, slot)
    flying: list[tuple[float, Any]] = []  # (answered at, slot)
    departures: list[float] = []
    chat = 0
    while clock.now < 1005.0:
        for answered, slot in [f for f in flying if f[0] <= clock.now]:
            slot.release()
            flying.remove((answered, slot))
        for claimed, slot in [w for w in waiting if w[0] <= clock.now]:
            if limiter.try_depart(slot):
                waiting.remove((claimed, slot))
                departures.append(clock.now)
                flying.append((clock.now + 0.002, slot))
        chat += 1
        slot = limiter.try_acquire(chat, depart_now=depart_now)
        if slot is not None:
            waiting.append((clock.now + 0.040, slot))
        clock.advance(0.001)
    return departures


def test_a_send_counts_from_when_it_leaves_not_from_its_reservation(clock: FakeClock) -> None:
    """Counting from the reservation charged every send its claim's 40 ms too: a whole
    interval lost every second or so. Counted from when each request leaves, the pace keeps
    to the rate, and no one-second window of departures (what the server counts) holds more
    than the limit."""
    ahead = simulate_reserve_ahead(clock, depart_now=False)
    assert count_in_any_window(ahead, 1.0) <= 30
    assert len(ahead) >= 4.9 * 30 * 0.99
    at_reservation = simulate_reserve_ahead(FakeClock(), depart_now=True)
    assert count_in_any_window(at_reservation, 1.0) <= 30
    assert len(at_reservation) <= len(ahead) - 4, "one interval lost every second or so"


def test_a_pause_set_after_the_reservation_holds_the_departure(clock: FakeClock) -> None:
    limiter = make(clock)
    slot = limiter.try_acquire(7, depart_now=False)
    assert slot is not None
    limiter.pause_all(1.0)  # a 429 for another send came back meanwhile
    assert not limiter.try_depart(slot)
    assert limiter.departure_ready_at(slot) == pytest.approx(clock.now + 1.0)
    clock.advance(1.0)
    assert limiter.try_depart(slot)


def test_a_slot_that_waited_out_a_long_pause_still_counts_once_it_leaves(
    clock: FakeClock,
) -> None:
    """Reserved, then held back by a minute's retry_after: when they leave, the sends count
    against the one-second window as any other (not as long finished)."""
    limiter = make(clock, global_rate=2, chat_rate=100)
    ahead = []
    for chat in (1, 2):
        slot = limiter.try_acquire(chat, depart_now=False)
        assert slot is not None
        ahead.append(slot)
        clock.advance(0.5)
    limiter.pause_all(70.0)
    clock.advance(70.0)
    assert all(limiter.try_depart(slot) for slot in ahead)
    assert limiter.try_acquire(3) is None, "two have just left and are still in flight"
    for slot in ahead:
        slot.release()
    assert limiter.try_acquire(3) is None, "each counts a second after its answer"
    clock.advance(1.0)
    assert limiter.try_acquire(3) is not None


async def test_depart_waits_for_the_window() -> None:
    limiter = SendLimiter(2, 100, 20)
    first = limiter.try_acquire(1)
    assert first is not None
    await asyncio.sleep(0.51)
    ahead = limiter.try_acquire(2, depart_now=False)
    assert ahead is not None
    assert limiter.try_acquire(3) is None, "the schedule still paces reservations"
    await asyncio.sleep(0.51)
    second = limiter.try_acquire(3)
    assert second is not None  # the reserved-ahead slot has not left: it does not count
    started = time.monotonic()
    first.release()
    second.release()
    await limiter.depart(ahead)  # two in the last second: wait for the first to age out
    assert time.monotonic() - started >= 0.9
    ahead.release()


def test_in_flight_requests_hold_the_global_window(clock: FakeClock) -> None:
    """A request counts until its answer is back plus one second (jitter-proof)."""
    limiter = make(clock, global_rate=3)
    slots = []
    for chat in range(3):
        slot = limiter.try_acquire(chat)
        assert slot is not None
        slots.append(slot)
        clock.advance(0.34)
    clock.advance(2.0)
    assert limiter.try_acquire(9) is None  # three still waiting for answers
    assert limiter.ready_at(9) == float("inf")
    slots[0].release()
    assert limiter.try_acquire(9) is None  # counted one more second after its answer
    clock.advance(1.0)
    assert limiter.try_acquire(9) is not None


def test_private_chat_one_per_second_after_the_answer(clock: FakeClock) -> None:
    limiter = make(clock)
    slot = limiter.try_acquire(42)
    assert slot is not None
    clock.advance(0.5)
    assert limiter.try_acquire(42) is None
    assert limiter.try_acquire(43) is not None  # other chats are not held back
    slot.release()  # answered at +0.5 s
    clock.advance(0.9)
    assert limiter.try_acquire(42) is None
    assert limiter.delay(42) == pytest.approx(0.1)
    clock.advance(0.1)
    assert limiter.try_acquire(42) is not None


def test_group_twenty_per_minute(clock: FakeClock) -> None:
    limiter = make(clock)
    group = -1001234
    starts: list[float] = []
    while clock.now < 1000.0 + 180:
        slot = limiter.try_acquire(group)
        if slot is None:
            clock.advance(0.05)
            continue
        starts.append(clock.now)
        clock.advance(0.01)
        slot.release()
    assert count_in_any_window(starts, 60.0) <= 20
    assert count_in_any_window(starts, 1.0) <= 1
    assert 55 <= len(starts) <= 60
    # the first twenty go out at one a second, then the group waits for its minute
    assert starts[19] - starts[0] < 21
    assert starts[20] - starts[0] >= 60


def test_pause_chat_and_pause_all(clock: FakeClock) -> None:
    limiter = make(clock)
    limiter.pause_chat(5, 3.0)
    assert limiter.is_paused(5)
    assert limiter.try_acquire(5) is None
    assert limiter.delay(5) == pytest.approx(3.0)
    assert limiter.try_acquire(6) is not None
    clock.advance(3.0)
    assert not limiter.is_paused(5)
    assert limiter.try_acquire(5) is not None
    clock.advance(1.0)
    limiter.pause_all(2.0)
    assert limiter.is_paused(None)
    assert limiter.try_acquire(7) is None
    assert limiter.delay(7) == pytest.approx(2.0)
    clock.advance(2.0)
    assert limiter.try_acquire(7) is not None


def test_two_chats_with_429_within_a_second_pause_everything(clock: FakeClock) -> None:
    limiter = make(clock)
    assert limiter.note_retry_after(1, 5) is False
    assert limiter.is_paused(1)
    assert not limiter.is_paused(2)
    clock.advance(2.0)
    assert limiter.note_retry_after(2, 5) is False  # more than a second apart: per chat
    clock.advance(0.5)
    assert limiter.note_retry_after(3, 4) is True
    assert limiter.is_paused(99)
    assert limiter.delay(99) == pytest.approx(4.0)


def test_cancelled_slot_counts_against_nothing(clock: FakeClock) -> None:
    limiter = make(clock, global_rate=1)
    slot = limiter.try_acquire(1)
    assert slot is not None
    slot.cancel()
    assert limiter.try_acquire(1) is not None


def test_forgets_idle_chats(clock: FakeClock) -> None:
    limiter = make(clock, global_rate=1000)
    for chat in range(600):
        slot = limiter.try_acquire(chat)
        assert slot is not None
        slot.release()
        clock.advance(0.3)
    assert len(limiter._chats) < 600


def test_a_forgotten_slot_stops_counting_eventually(clock: FakeClock) -> None:
    limiter = make(clock, global_rate=1)
    assert limiter.try_acquire(1) is not None  # never released
    clock.advance(30)
    assert limiter.try_acquire(2) is None
    clock.advance(31)  # 60 s hold + 1 s window
    assert limiter.try_acquire(2) is not None


async def test_reserve_releases_on_the_way_out() -> None:
    limiter = SendLimiter(1000, 1, 20)
    async with limiter.reserve(5) as slot:
        assert slot.open
    assert not slot.open and slot.end is not None
    with pytest.raises(RuntimeError):
        async with limiter.reserve(6) as failing:
            raise RuntimeError("send failed")
    assert not failing.open


def test_rejects_nonsense_rates() -> None:
    with pytest.raises(ValueError):
        SendLimiter(0, 1, 20)


async def test_acquire_waits_for_the_slot() -> None:
    limiter = SendLimiter(20, 1, 20)
    begun = time.monotonic()
    starts = []
    for chat in range(5):
        slot = await limiter.acquire(chat)
        starts.append(time.monotonic())
        slot.release()
    assert starts[-1] - begun >= 4 * 0.05 - 0.005
    # waiting on an in-flight answer wakes as soon as it is released
    slot = await limiter.acquire(100)
    waiter = asyncio.create_task(limiter.acquire(100))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    slot.release()
    second = await asyncio.wait_for(waiter, 2.0)
    assert second.start - slot.end >= 1.0 - 1e-6  # type: ignore[operator]


async def test_ptb_rate_limiter_limits_and_passes_through() -> None:
    clock = FakeClock()
    limiter = SendLimiter(30, 1, 20, clock=clock)
    ptb = CompanionRateLimiter(limiter)
    await ptb.initialize()
    calls: list[str] = []

    async def callback(name: str) -> dict[str, Any]:
        calls.append(name)
        return {"ok": True}

    await ptb.process_request(callback, ("a",), {}, "sendChatAction", {"chat_id": 7}, None)
    assert limiter.try_acquire(7) is None  # the call used chat 7's slot
    # no chat id: straight through, even while the bot is paused
    limiter.pause_all(10)
    await ptb.process_request(callback, ("b",), {}, "answerCallbackQuery", {}, None)
    # the outbox sender already holds a slot: not limited twice
    with slot_already_reserved():
        await ptb.process_request(callback, ("c",), {}, "sendMessage", {"chat_id": 7}, None)
    assert calls == ["a", "b", "c"]
    await ptb.shutdown()


async def test_ptb_rate_limiter_records_retry_after_and_does_not_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    clock = FakeClock()
    limiter = SendLimiter(30, 1, 20, clock=clock)
    ptb = CompanionRateLimiter(limiter)
    calls = 0

    async def callback() -> bool:
        nonlocal calls
        calls += 1
        raise RetryAfter(7)

    with pytest.raises(RetryAfter):
        await ptb.process_request(callback, (), {}, "sendMessage", {"chat_id": 3}, None)
    assert calls == 1
    assert limiter.is_paused(3)
    assert limiter.delay(3) == pytest.approx(7.0)
    assert not limiter.is_paused(4)


def test_a_high_limit_keeps_few_slots_and_still_holds(clock: FakeClock) -> None:
    """With a limit of thousands a second, stale slots are dropped as it goes (not only when
    the window is full), and the limit itself still holds once it is reached."""
    limiter = make(clock, global_rate=2000, chat_rate=100)
    for i in range(6000):  # 6 seconds at half the rate, each answered at once
        slot = limiter.try_acquire(i)
        assert slot is not None
        slot.release()
        clock.advance(1 / 1000)
    # About 1,000 slots still count (their second is not over); stale ones were dropped.
    assert len(limiter._global_window.slots) <= 2 * 1100
    clock.advance(2.0)
    starts = 0
    chat = 10**6
    while clock.now < 1011.0:  # never answered: each slot counts until it is released
        chat += 1
        starts += limiter.try_acquire(chat) is not None
        clock.advance(0.001)
    assert starts == 2000
    assert limiter.ready_at(None) == float("inf")
