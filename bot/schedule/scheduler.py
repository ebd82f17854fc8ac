"""Wakes the planner and the due runner; the schedule itself is rows, never jobs.

APScheduler holds three jobs and no state worth keeping: a steady tick (the safety net), a
one-off wake-up at the next occurrence's exact time, and a periodic full planning pass. All
three only set an event; the loop here does the work, one pass at a time. Jobs use
``coalesce`` and no misfire limit, so a late wake-up (a busy machine, a moved clock) runs once
instead of being silently skipped.

Moving the scheduler's clock (the process clock of :mod:`storage.clock` unless it is given
another) wakes the loop too, and :meth:`Scheduler.advance_to` steps through every due moment
on the way to a later time, as if the bot had been running all along: that is how
``companion demo`` and the tests show a week in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select

from bot.protocol import StudyProtocol
from bot.schedule import planner
from bot.schedule.kinds import OccurrenceKinds
from bot.schedule.runner import BATCH, DueResult, DueRunner, next_due
from storage.clock import CLOCK, Clock
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

PLAN_EVERY = timedelta(minutes=30)
QUEUE_POLL = 0.25  # seconds between looks at the outbox while a wave waits for room
_JOB_OPTIONS = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}


class Scheduler:
    """The planning and due-handling loop of the leading process.

    ``kinds``: what each kind of occurrence does when it falls due (see
    :mod:`bot.schedule.kinds`; :func:`bot.app.build_scheduler` fills it).
    """

    def __init__(
        self,
        db: Database,
        protocol: StudyProtocol,
        kinds: OccurrenceKinds,
        *,
        tick: float = 5.0,
        horizon: timedelta = planner.DEFAULT_HORIZON,
        on_queued: Callable[[], None] | None = None,
        queue_limit: int | None = None,
        clock: Clock = CLOCK,
        daily: Sequence[Callable[[], Awaitable[object]]] = (),
    ) -> None:
        self.db = db
        self.clock = clock
        self.daily = tuple(daily)  # jobs run once a day (retention), first a minute after start
        self.protocol = protocol
        self.horizon = horizon
        self.tick = tick
        self.runner = DueRunner(protocol, kinds)
        self.on_queued = on_queued
        self.queue_limit = queue_limit
        self.batch = BATCH  # occurrences per transaction
        self._wake = asyncio.Event()
        self._plan_wanted = True
        self._planned_at: datetime | None = None
        self._backfilled = False  # the first pass after start-up fills a downtime gap
        self._lock = asyncio.Lock()
        self._stopping = False
        self._aps: AsyncIOScheduler | None = None
        self._next_wake: datetime | None = None
        self.last_plan: planner.PassResult | None = None
        self.last_plan_seconds: float | None = None

    # -- waking ------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due occurrences now."""
        self._wake.set()

    def request_plan(self) -> None:
        """Run a full planning pass at the next wake-up, and wake up."""
        self._plan_wanted = True
        self._wake.set()

    def _on_clock_moved(self) -> None:
        self.request_plan()

    def _wake_at(self, when: datetime | None) -> None:
        """Have APScheduler wake the loop at ``when`` (clock time) as well as on the tick."""
        if self._aps is None or not self._aps.running:
            return
        if when == self._next_wake:
            return
        self._next_wake = when
        if when is None:
            with contextlib.suppress(Exception):
                self._aps.remove_job("next-due")
            return
        # APScheduler runs on the system clock; the one clock may be ahead of it (the demo).
        run_date = max(when - self.clock.offset, datetime.now(UTC)) + timedelta(milliseconds=5)
        self._aps.add_job(
            self.wake,
            DateTrigger(run_date=run_date, timezone=UTC),
            id="next-due",
            replace_existing=True,
            **_JOB_OPTIONS,
        )

    @contextlib.asynccontextmanager
    async def quiesced(self) -> AsyncIterator[None]:
        """Wait for the pass in progress to end (a paced wave stops early), and hold off more."""
        self._stopping = True
        try:
            async with self._lock:
                yield
        finally:
            self._stopping = False

    # -- work --------------------------------------------------------------------------------

    async def plan(self) -> planner.PassResult:
        """One full planning pass in one transaction.

        The first pass since start-up also fills any gap the bot's downtime left (see
        :func:`bot.schedule.planner.reconcile_partners`), so those check-ins are recorded as
        missed.
        """
        started = time.perf_counter()
        backfill = planner.MAX_BACKFILL if not self._backfilled else None
        async with self.db.transaction() as session:
            result = await planner.plan_all(
                session,
                self.protocol,
                now=self.clock.now(),
                horizon=self.horizon,
                backfill=backfill,
            )
        self._backfilled = True
        self.last_plan, self.last_plan_seconds = result, time.perf_counter() - started
        if result.added or result.moved or result.removed or result.cancelled:
            log.info(
                "planned %d partners: %d added, %d moved, %d removed, %d cancelled (%.2fs)",
                result.partners,
                result.added,
                result.moved,
                result.removed,
                result.cancelled,
                self.last_plan_seconds,
            )
        return result

    async def _wait_for_room(self) -> None:
        """Hold back while the outbox already has more waiting than the sender needs."""
        limit = self.queue_limit
        if limit is None:
            return
        while True:
            async with self.db.sessions() as session:
                waiting = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.status == OutboxStatus.PENDING,
                        # Rows held back on purpose (quiet hours, a retry's back-off) are not
                        # the sender's work now and must not hold a wave up.
                        OutboxMessage.next_attempt_at <= self.clock.now(),
                    )
                )
            if (waiting or 0) <= limit or self._stopping:
                return
            await asyncio.sleep(QUEUE_POLL)

    async def run_due(self, *, pace: bool = True) -> DueResult:
        """Handle everything due now, batch by batch, waking the sender after each.

        ``pace``: a wave bigger than the outbox needs to keep sending at full speed is opened
        as the sender catches up (``queue_limit`` messages ahead), not all at once; the work
        is spread under the rate limit and the sender never waits for the database.
        """
        total = DueResult()
        while not self._stopping:
            if pace and total.done:
                await self._wait_for_room()
                if self._stopping:
                    break
            try:
                async with self.db.transaction() as session:
                    result = await self.runner.run(
                        session, now=self.clock.now(), limit=self.batch, careful=False
                    )
            except Exception:
                # The fast path failed somewhere in the batch and rolled it all back: run it
                # again one occurrence at a time, so the broken one is set aside alone.
                log.warning("a due batch failed; handling it one by one", exc_info=True)
                async with self.db.transaction() as session:
                    result = await self.runner.run(session, now=self.clock.now(), limit=self.batch)
            total.add(result)
            if result.done and self.on_queued is not None:
                self.on_queued()
            if result.handled + result.deferred < self.batch:
                break
        if total.handled or total.closed_checkins or total.deferred:
            log.info(
                "due: %d sent, %d deferred, %d missed, %d skipped, %d cancelled, %d closed %s",
                total.done,
                total.deferred,
                total.missed,
                total.skipped,
                total.cancelled,
                total.closed_checkins,
                total.reasons or "",
            )
        return total

    async def pass_once(self) -> DueResult:
        """Plan if asked to, handle what is due, and set the next exact wake-up."""
        async with self._lock:
            return await self._pass()

    async def _pass(self, *, pace: bool = True) -> DueResult:
        # Time moved on by more than a planning period (a moved clock, a long sleep): the
        # horizon has to move with it.
        stale = self._planned_at is None or self.clock.now() - self._planned_at >= PLAN_EVERY
        if self._plan_wanted or stale:
            self._plan_wanted = False
            self._planned_at = self.clock.now()
            try:
                await self.plan()
            except Exception:
                self._plan_wanted = True  # try again at the next wake-up, not in 30 minutes
                raise
        result = await self.run_due(pace=pace)
        async with self.db.sessions() as session:
            self._wake_at(await next_due(session))
        return result

    async def advance_to(self, target: datetime) -> DueResult:
        """Move the clock to ``target``, stopping at every due moment on the way.

        For the demo and tests: what would have happened while the bot ran is handled at its
        own time (a check-in opened at 18:00 is answerable until its window ends), instead of
        being treated as downtime. The background loop waits meanwhile.
        """
        total = DueResult()
        async with self._lock:
            total.add(await self._pass(pace=False))  # plan from now, not from where it goes
            stuck = False
            while not self._stopping:
                async with self.db.sessions() as session:
                    upcoming = await next_due(session)
                    if upcoming is not None and upcoming <= self.clock.now() and stuck:
                        # Something stayed due after a full pass: look past it, don't spin.
                        log.warning("an occurrence stayed due at %s; moving on", upcoming)
                        upcoming = await next_due(session, after=self.clock.now())
                stuck = upcoming is not None and upcoming <= self.clock.now()
                if upcoming is None or upcoming > target:
                    self.clock.advance_to(target)
                    total.add(await self._pass(pace=False))
                    return total
                self.clock.advance_to(upcoming)
                total.add(await self._pass(pace=False))
            return total

    async def run(self) -> None:
        """Run until cancelled: wake on the tick, at the next due time, or when time moves."""
        self._aps = AsyncIOScheduler(timezone=UTC)
        self._aps.add_job(self.wake, IntervalTrigger(seconds=self.tick), id="tick", **_JOB_OPTIONS)
        self._aps.add_job(
            self.request_plan,
            IntervalTrigger(seconds=PLAN_EVERY.total_seconds()),
            id="plan",
            **_JOB_OPTIONS,
        )
        for index, job in enumerate(self.daily):
            self._aps.add_job(
                job,
                IntervalTrigger(days=1),
                id=f"daily-{index}",
                next_run_time=datetime.now(UTC) + timedelta(minutes=1),
                **_JOB_OPTIONS,
            )
        self._aps.start()
        unsubscribe = self.clock.subscribe(self._on_clock_moved)
        try:
            while True:
                try:
                    await self.pass_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A database hiccup must not end scheduling; the next wake-up tries again.
                    log.exception("a scheduling pass failed")
                await self._wake.wait()
                self._wake.clear()
        finally:
            unsubscribe()
            self._aps.shutdown(wait=False)
            self._aps = None
            self._next_wake = None
