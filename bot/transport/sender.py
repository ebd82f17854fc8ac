"""The one sender: it sends the outbox's rows to Telegram (see :mod:`bot.transport.outbox`).

:class:`OutboxSender` is the only thing that sends those rows:

* it claims a due ``pending`` row, marks it ``sending`` and commits *before* the HTTP call, then
  records ``sent`` with Telegram's message id in one commit afterwards. A crash in between
  leaves ``sending``, which :meth:`OutboxSender.recover` turns into ``unknown`` at start-up:
  such a message may have been delivered and is never resent blindly;
* messages to one chat go one at a time, in id order, so they never overtake each other;
* every send waits for its slot in the :class:`~bot.transport.ratelimit.SendLimiter` (30/s overall,
  1/s per chat, 20/min per group), so Telegram's flood control should never have to act;
* errors are handled by class (:mod:`bot.transport.delivery_errors`): 429 waits
  ``retry_after``, 5xx and
  connection failures that prove the request never left are retried with exponential backoff
  and jitter, an ambiguous timeout is recorded as ``unknown``, 403 marks the person unreachable
  and tells the staff (through this same outbox), 400 fails the row with Telegram's reason;
* a withdrawn person is never sent anything: the row is cancelled at the last moment;
* a row marked as quoting someone's own words loses its text in the commit that settles it
  (:func:`bot.transport.outbox.clear_quoted_words`).

Logs name the outbox id, kind, chat id and status, never the message text or the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import telegram
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InputFile
from tenacity import AsyncRetrying, RetryCallState, Retrying, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter, wait_incrementing

from bot.transport.batching import Coalescer
from bot.transport.delivery_errors import Classification, Outcome, classify
from bot.transport.outbox import (
    _OUTBOX,
    FILE_FIELDS,
    OPEN_STATUSES,
    QUOTES,
    SETTLED_STATUSES,
    UNREACHABLE,
    OutboxPayloadError,
    clear_quoted_words,
)
from bot.transport.ratelimit import SendLimiter, Slot, slot_already_reserved
from bot.transport.receipts import Receipt, Receipts
from storage.clock import utcnow
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus, Person, PersonStatus
from storage.queries.people import lock_person

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: How many times the sender tries one of its own writes (see OutboxSender._write).
_WRITE_TRIES = 3

#: What to do when Telegram answers 403 for a person (session, person id, reason, now): mark
#: them unreachable and tell the staff, in the same transaction that fails the row.
OnUnreachable = Callable[[AsyncSession, int, str, datetime], Awaitable[None]]

#: A conversation step whose outcome is unknown goes out once more, and only once: the flag
#: is cleared so that a second unknown outcome is recorded as such.
_SEND_AGAIN: dict[str, Any] = {
    "status": OutboxStatus.PENDING,
    "conversation_step": False,
    "last_error": "outcome unknown; sent again as a conversation step",
}
_DEFAULT_RETRY_WAIT = wait_exponential_jitter(multiplier=1.0, max=300.0, exp_base=2, jitter=1.0)
_MISCONFIGURED_PAUSE = 60.0
HEADS_COST_FACTOR = 5.0  # wait at least this many times the last read before the next
_LAST_ERROR_LENGTH = 300


_RECORD_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("b_id"))
    .values(
        status=OutboxStatus.SENT,
        sent_at=bindparam("b_now"),
        tg_message_id=bindparam("b_message_id"),
        last_error=None,
    )
)


@dataclass(frozen=True)
class _Head:
    """The first open row of one chat, as the dispatcher sees it."""

    id: int
    chat_id: int
    due: datetime


@dataclass(frozen=True)
class _Claimed:
    """What a delivery task needs to know about a row it has marked ``sending``."""

    id: int
    chat_id: int
    person_id: int | None
    kind: str
    method: str
    payload: dict[str, Any]
    attempts: int
    conversation_step: bool = False

    @property
    def quotes(self) -> bool:
        """Whether the row quotes someone's own words (cleared once it is settled)."""
        return bool(self.payload.get(QUOTES))


def _retry_delay(wait: wait_base, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``, from a tenacity wait strategy."""
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return float(wait(state))


class OutboxSender:
    """The one sender for everything in the outbox (see the module docstring).

    Run exactly one per database (on PostgreSQL: only in the replica holding the leader
    lock). ``on_unreachable`` is called when Telegram answers 403 for a person.
    ``data_dir`` is where file paths in ``sendDocument``/``sendPhoto`` payloads are resolved.
    ``retry_wait`` is the tenacity wait strategy for retries (tests shorten it). ``receipts``,
    when given, notes each send Telegram accepted the moment it answers, so that a crash before
    the database records it does not make it ``unknown`` (see :mod:`bot.transport.receipts`).
    """

    def __init__(
        self,
        db: Database,
        bot: telegram.Bot,
        limiter: SendLimiter,
        *,
        on_unreachable: OnUnreachable,
        poll_interval: float = 1.0,
        max_attempts: int = 8,
        max_in_flight: int = 64,
        data_dir: Path | None = None,
        retry_wait: wait_base | None = None,
        receipts: Receipts | None = None,
    ) -> None:
        self.db = db
        self.bot = bot
        self.limiter = limiter
        self.on_unreachable = on_unreachable
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.max_in_flight = max_in_flight
        self.data_dir = data_dir
        self.retry_wait: wait_base = retry_wait or _DEFAULT_RETRY_WAIT
        self.receipts = receipts
        self._busy: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None
        self._refresh = True
        # How stale the list of chat heads may get while sends are paced by the limiter.
        self._heads_max_age = poll_interval
        # Under load every finished send asks for a fresh list (the chat's next row may now be
        # its head); reading it at most this often keeps the sender from querying in a loop.
        self._heads_min_age = 0.02
        self._skip_locked = not db.is_sqlite
        self._claims: Coalescer[int, _Claimed | None] = Coalescer(self._claim_batch)
        self._records: Coalescer[tuple[int, int | None, bool], None] = Coalescer(
            self._record_batch
        )

    # -- public API ------------------------------------------------------------------------

    async def recover(self) -> int:
        """Settle rows left in ``sending`` by a previous run; return how many were left.

        Call once at start-up, before :meth:`run`. Those the receipts name (see
        :mod:`bot.transport.receipts`) reached Telegram and become ``sent``. The others may or
        may not have reached it. A conversation step (someone is waiting on it to go on) is
        sent once more: at worst they see it twice, which is better than a conversation that
        has gone quiet. Everything else (broadcasts, reminders, alerts) becomes ``unknown``
        and is never resent blindly; staff can see it.
        """
        sending = OutboxMessage.status == OutboxStatus.SENDING
        receipts = self.receipts.read() if self.receipts is not None else []
        async with self.db.transaction() as session:
            if receipts:
                await self._settle_from_receipts(session, receipts)
            stuck = (
                (
                    await session.execute(
                        select(OutboxMessage.id).where(
                            sending, OutboxMessage.conversation_step.is_(False)
                        )
                    )
                )
                .scalars()
                .all()
            )
            again = await session.execute(
                update(OutboxMessage)
                .where(sending, OutboxMessage.conversation_step.is_(True))
                .values(_SEND_AGAIN | {"next_attempt_at": utcnow()})
                .execution_options(synchronize_session=False)
            )
            result = await session.execute(
                update(OutboxMessage)
                .where(sending)
                .values(status=OutboxStatus.UNKNOWN, last_error="interrupted while sending")
                .execution_options(synchronize_session=False)
            )
            if stuck:
                await clear_quoted_words(session, _OUTBOX.c.id.in_(stuck))
            resent = int(getattr(again, "rowcount", 0) or 0)
            count = int(getattr(result, "rowcount", 0) or 0)
        if self.receipts is not None:
            self.receipts.clear()  # applied and committed: none of them is needed again
        if count or resent:
            log.warning(
                "outbox recovery: %d interrupted sends marked unknown, %d conversation steps "
                "to send again",
                count,
                resent,
            )
        return count + resent

    @staticmethod
    async def _settle_from_receipts(session: AsyncSession, receipts: Sequence[Receipt]) -> None:
        """Record as ``sent`` the rows still ``sending`` on the very attempt a receipt names.

        The rows left ``sending`` are few (at most the sends in flight when the process
        stopped), so they are read and matched here rather than named in the query: the
        receipts can be many more than a query may carry parameters.
        """
        rows = await session.execute(
            select(_OUTBOX.c.id, _OUTBOX.c.attempts).where(
                _OUTBOX.c.status == OutboxStatus.SENDING
            )
        )
        in_flight = {row_id: attempts for row_id, attempts in rows}
        now = utcnow()
        settled = [
            {"b_id": r.outbox_id, "b_message_id": r.message_id, "b_now": now}
            for r in receipts
            if in_flight.get(r.outbox_id) == r.attempt
        ]
        if settled:
            await session.execute(_RECORD_SENT, settled)
            await clear_quoted_words(session, _OUTBOX.c.id.in_([s["b_id"] for s in settled]))
        log.info("outbox recovery: %d sends found delivered by their receipts", len(settled))

    def wake(self) -> None:
        """New rows were committed: look for work now rather than at the next poll."""
        self._refresh = True
        self._poke()

    async def run(self) -> None:
        """Send due rows until cancelled; on cancellation, let in-flight sends finish."""
        if self._running:
            raise RuntimeError("OutboxSender.run() is already running")
        self._running = True
        self._refresh = True
        loop = asyncio.get_running_loop()
        heads: list[_Head] = []
        fetched_at = -math.inf
        heads_cost = 0.0
        # The list of chat heads is read in the background while the dispatcher goes on
        # starting sends from the list it has: a long queue makes the read take tens of
        # milliseconds, and waiting for it left the rate's slots unused (bench/broadcast.py).
        fetch: asyncio.Task[list[_Head]] | None = None
        try:
            while True:
                age = loop.time() - fetched_at
                # A long queue makes the list costly to read: read it less often then, so
                # reading never takes more than about a sixth of the sender's time.
                min_age = max(self._heads_min_age, HEADS_COST_FACTOR * heads_cost)
                due = (self._refresh and age >= min_age) or age >= self._heads_max_age
                if fetch is None and due:
                    self._refresh = False
                    fetched_at = loop.time()
                    fetch = asyncio.create_task(self._heads(), name="outbox-heads")
                    fetch.add_done_callback(lambda _: self._poke())
                if fetch is not None and fetch.done():
                    heads = self._fresh_heads(fetch)
                    heads_cost = loop.time() - fetched_at
                    fetch = None
                timeout = self._start_ready(heads)
                if fetch is None:
                    refresh_at = min_age if self._refresh else self._heads_max_age
                    timeout = min(timeout, fetched_at + refresh_at - loop.time())
                else:  # the read's end wakes us; until then there is no refresh to wait for
                    timeout = min(timeout, self.poll_interval)
                await self._sleep(loop, timeout)
        finally:
            self._running = False
            if fetch is not None:
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetch
            await self._finish_in_flight()

    def _fresh_heads(self, fetch: asyncio.Task[list[_Head]]) -> list[_Head]:
        """The heads a finished read found, less the chats with a send in flight.

        A busy chat's head is the very row in flight (its claim may not be committed yet):
        it is dropped, or it would be tried again once done. A row that went while the read
        ran may still be listed; its claim finds it taken and the slot is given back.
        """
        try:
            return [h for h in fetch.result() if h.chat_id not in self._busy]
        except Exception as exc:  # the database may come back: keep going
            log.error(
                "outbox sender: cannot read the outbox (%s); retrying in %.1f s",
                type(exc).__name__,
                self.poll_interval,
            )
            log.debug("outbox read failure", exc_info=exc)
            return []

    async def drain(self, timeout: float) -> None:
        """Return once no row is ``pending`` or ``sending``; raise TimeoutError after ``timeout``.

        Meant for tests and benchmarks, with :meth:`run` going in another task.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        open_rows: int | None = None
        while True:
            if not self._tasks:  # while sends are in flight, the answer is "not yet"
                async with self.db.sessions() as session:
                    open_rows = await session.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status.in_(OPEN_STATUSES))
                    )
                if not open_rows and not self._tasks:
                    return
            if loop.time() >= deadline:
                raise TimeoutError(f"outbox not drained: {open_rows} rows still open")
            await asyncio.sleep(0.05)

    # -- dispatch --------------------------------------------------------------------------

    async def _heads(self) -> list[_Head]:
        """Each chat's first open row, if that row is pending, in id order.

        A chat whose first open row is ``sending`` (in flight) or waiting to be retried holds
        all its later rows back, so messages to one chat never overtake each other.
        """
        # One scan and a sort, whatever the planner thinks of the table's statistics (an
        # ``id IN (SELECT min(id) ... GROUP BY chat_id)`` became a quadratic nested loop on
        # PostgreSQL with fresh, unanalysed tables).
        position = (
            func.row_number()
            .over(partition_by=OutboxMessage.chat_id, order_by=OutboxMessage.id)
            .label("position")
        )
        open_rows = (
            select(
                OutboxMessage.id,
                OutboxMessage.chat_id,
                OutboxMessage.status,
                OutboxMessage.next_attempt_at,
                position,
            )
            .where(OutboxMessage.status.in_(OPEN_STATUSES))
            .subquery()
        )
        stmt = (
            select(open_rows.c.id, open_rows.c.chat_id, open_rows.c.next_attempt_at)
            .where(open_rows.c.position == 1, open_rows.c.status == OutboxStatus.PENDING)
            .order_by(open_rows.c.id)
        )
        async with self.db.sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [_Head(r[0], r[1], r[2]) for r in rows]

    def _start_ready(self, heads: list[_Head]) -> float:
        """Start a delivery for every head that may go now; return seconds worth waiting.

        ``heads`` may be a little stale: a started head is removed from it, and the claim
        re-checks the row in the database, so staleness can only delay a send, never
        duplicate or reorder one.
        """
        soonest = self.poll_interval
        now = utcnow()
        started: set[int] = set()
        try:
            for head in heads:
                if len(self._tasks) >= self.max_in_flight:
                    break
                if head.chat_id in self._busy:
                    continue
                if head.due > now:
                    soonest = min(soonest, (head.due - now).total_seconds())
                    continue
                global_wait = self.limiter.delay(None, ahead=True)
                if global_wait > 0:
                    # Nothing can go before the global slot frees up (inf: until an answer
                    # comes back, which wakes us anyway).
                    soonest = min(soonest, global_wait)
                    break
                # The slot is reserved now, before the claim; the request counts against
                # Telegram's windows only once it leaves (limiter.depart, in _deliver).
                slot = self.limiter.try_acquire(head.chat_id, depart_now=False)
                if slot is None:
                    soonest = min(soonest, self.limiter.delay(head.chat_id))
                    continue
                self._busy.add(head.chat_id)
                started.add(head.id)
                task = asyncio.create_task(self._deliver(head.id, head.chat_id, slot))
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
        finally:
            if started:
                heads[:] = [h for h in heads if h.id not in started]
        return max(0.0, soonest)

    def _poke(self) -> None:
        """End the dispatcher's current sleep (or the next one before it starts)."""
        self._woken = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _sleep(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        """Sleep up to ``seconds`` unless poked.

        A bare future and a timer, rather than ``wait_for(event.wait())``: the limiter's
        pacing is only as punctual as this wake-up, and wait_for costs extra loop turns.
        """
        if self._woken or seconds <= 0:
            self._woken = False
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(seconds, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
            self._woken = False

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._refresh = True  # that chat's next row may be its head now
        self._poke()

    async def _finish_in_flight(self, grace: float = 15.0) -> None:
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    # -- one delivery ----------------------------------------------------------------------

    async def _deliver(self, outbox_id: int, chat_id: int, slot: Slot) -> None:
        try:
            claimed = await self._claim(outbox_id)
            if claimed is None:
                slot.cancel()
                self._refresh = True
                return
            try:
                request = await self._build_request(claimed)
            except (OSError, OutboxPayloadError) as exc:
                slot.cancel()
                self._refresh = True
                await self._fail_unsendable(claimed, exc)
                return
            try:
                await self.limiter.depart(slot)
                with slot_already_reserved():
                    message = await request()
            except Exception as exc:
                slot.release()
                self._refresh = True  # the row's state or due time changed
                await self._handle_error(claimed, classify(exc))
                return
            slot.release()
            if self.receipts is not None:
                self.receipts.note(claimed.id, claimed.attempts, _message_id(message))
            await self._record_sent(claimed, message)
        except Exception as exc:
            # Database trouble, most likely. The row stays as it was (``sending`` becomes
            # ``unknown`` at the next start). The exception text may quote SQL parameters,
            # message text among them, so only its type is logged above DEBUG.
            self._refresh = True
            log.error(
                "outbox %d chat %d: delivery crashed (%s)", outbox_id, chat_id, type(exc).__name__
            )
            log.debug("outbox %d delivery crash", outbox_id, exc_info=True)
        finally:
            if slot.open and slot.departed:  # the request may have left with it
                slot.release()
            elif slot.open:  # nothing was sent with it
                slot.cancel()
            self._busy.discard(chat_id)

    async def _claim(self, outbox_id: int) -> _Claimed | None:
        """Mark the row ``sending`` and commit; None when it must not (or need not) go.

        Claims that arrive together share one transaction (see :mod:`bot.transport.batching`); the
        commit still happens before any of their HTTP calls.
        """
        return await self._claims.submit(outbox_id)

    async def _claim_batch(self, outbox_ids: Sequence[int]) -> list[_Claimed | None]:
        # Plain columns and one UPDATE per outcome, not ORM objects: on the hot path the
        # unit of work cost more than the statements themselves.
        stmt = (
            select(
                _OUTBOX.c.id,
                _OUTBOX.c.chat_id,
                _OUTBOX.c.person_id,
                _OUTBOX.c.kind,
                _OUTBOX.c.method,
                _OUTBOX.c.payload,
                _OUTBOX.c.attempts,
                _OUTBOX.c.conversation_step,
                Person.status,
            )
            .outerjoin(Person, Person.id == _OUTBOX.c.person_id)
            .where(
                _OUTBOX.c.id.in_(outbox_ids),
                _OUTBOX.c.status == OutboxStatus.PENDING,
                _OUTBOX.c.next_attempt_at <= utcnow(),
            )
        )
        if self._skip_locked:
            stmt = stmt.with_for_update(of=_OUTBOX, skip_locked=True)
        claimed: dict[int, _Claimed] = {}
        withdrawn: list[int] = []
        unreachable: list[int] = []
        async with self.db.transaction() as session:
            for row in (await session.execute(stmt)).all():
                ids = (row.id, row.kind, row.chat_id)
                if row.status == PersonStatus.WITHDRAWN:
                    withdrawn.append(row.id)
                    log.info("outbox %d %s chat %d: cancelled (withdrawn)", *ids)
                elif row.status == PersonStatus.UNREACHABLE:
                    unreachable.append(row.id)
                    log.info("outbox %d %s chat %d: failed (unreachable)", *ids)
                else:
                    claimed[row.id] = _Claimed(
                        id=row.id,
                        chat_id=row.chat_id,
                        person_id=row.person_id,
                        kind=row.kind,
                        method=row.method,
                        payload=dict(row.payload),
                        attempts=row.attempts + 1,
                        conversation_step=row.conversation_step,
                    )
            for ids_, values in (
                (withdrawn, {"status": OutboxStatus.CANCELLED, "last_error": "withdrawn"}),
                (unreachable, {"status": OutboxStatus.FAILED, "last_error": UNREACHABLE}),
                (
                    list(claimed),
                    {"status": OutboxStatus.SENDING, "attempts": _OUTBOX.c.attempts + 1},
                ),
            ):
                if ids_:
                    await session.execute(
                        update(_OUTBOX).where(_OUTBOX.c.id.in_(ids_)).values(**values)
                    )
            if withdrawn or unreachable:
                await clear_quoted_words(session, _OUTBOX.c.id.in_(withdrawn + unreachable))
        return [claimed.get(i) for i in outbox_ids]

    async def _build_request(
        self, claimed: _Claimed
    ) -> Callable[[], Awaitable[telegram.Message | bool]]:
        """Turn a payload into a ready-to-make Bot API call (files are read here)."""
        data = dict(claimed.payload)
        data.pop(QUOTES, None)  # ours, not Telegram's
        bot = self.bot
        if claimed.method == "sendMessage":
            text = data.pop("text", None)
            if not text:
                raise OutboxPayloadError("no text")
            parse_mode = data.pop("parse_mode", None)

            async def send_message() -> telegram.Message:
                return await bot.send_message(
                    chat_id=claimed.chat_id,
                    text=text,
                    parse_mode=parse_mode,
                    api_kwargs=data or None,
                )

            return send_message
        field = FILE_FIELDS.get(claimed.method)
        if field is None:
            raise OutboxPayloadError(f"unsupported method {claimed.method!r}")
        media = await self._load_file(data.pop(field, None))
        caption = data.pop("caption", None)
        parse_mode = data.pop("parse_mode", None)

        async def send_file() -> telegram.Message:
            if claimed.method == "sendVoice":
                return await bot.send_voice(
                    chat_id=claimed.chat_id,
                    voice=media,
                    caption=caption,
                    parse_mode=parse_mode,
                    api_kwargs=data or None,
                )
            if claimed.method == "sendPhoto":
                return await bot.send_photo(
                    chat_id=claimed.chat_id,
                    photo=media,
                    caption=caption,
                    parse_mode=parse_mode,
                    api_kwargs=data or None,
                )
            return await bot.send_document(
                chat_id=claimed.chat_id,
                document=media,
                caption=caption,
                parse_mode=parse_mode,
                api_kwargs=data or None,
            )

        return send_file

    async def _load_file(self, spec: Any) -> str | InputFile:
        """A file id/URL as is, or ``{"path": ...}`` read from inside ``data_dir``."""
        if isinstance(spec, str) and spec:
            return spec
        if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
            raise OutboxPayloadError("file must be a file id, a URL or {'path': ...}")
        if self.data_dir is None:
            raise OutboxPayloadError("no data folder configured for file sends")
        root = self.data_dir.resolve()
        path = (root / spec["path"]).resolve()
        if not path.is_relative_to(root):
            raise OutboxPayloadError("file path leaves the data folder")
        content = await asyncio.to_thread(path.read_bytes)
        filename = spec.get("filename") or path.name
        return InputFile(content, filename=str(filename))

    # -- outcomes --------------------------------------------------------------------------

    async def _record_sent(self, claimed: _Claimed, message: telegram.Message | bool) -> None:
        recorded = await self._record_sent_once(claimed, _message_id(message))
        if recorded and self.receipts is not None:
            self.receipts.recorded(claimed.id)  # only now is its receipt no longer needed

    async def _record_sent_once(self, claimed: _Claimed, message_id: int | None) -> bool:
        """Record the send as ``sent``; whether it was."""
        try:
            await self._write(
                claimed.id, lambda: self._records.submit((claimed.id, message_id, claimed.quotes))
            )
        except Exception as exc:
            # Delivered but not recorded: it stays ``sending``, and recover() settles it from
            # its receipt (or, without one, makes it ``unknown``).
            log.error(
                "outbox %d: delivered but could not record it (%s)", claimed.id, type(exc).__name__
            )
            return False
        log.debug("outbox %d %s chat %d: sent", claimed.id, claimed.kind, claimed.chat_id)
        return True

    async def _write(self, outbox_id: int, write: Callable[[], Awaitable[_T]]) -> _T:
        """One of the sender's own writes about a claimed row, tried up to three times.

        Another transaction can deadlock with it (PostgreSQL then fails one of the two) or
        hold a lock a moment too long; given up at once, the row would stay ``sending`` until
        the next start and hold its chat's later rows back.
        """

        def trying_again(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome else None
            log.warning(
                "outbox %d: write failed (%s), trying again", outbox_id, type(failure).__name__
            )

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(_WRITE_TRIES),
            wait=wait_incrementing(start=0.2, increment=0.2),
            before_sleep=trying_again,
            reraise=True,
        ):
            with attempt:
                result = await write()
        return result

    async def _record_batch(self, sent: Sequence[tuple[int, int | None, bool]]) -> list[None]:
        """Record several deliveries as ``sent`` in one transaction (one executemany); the
        words of those that quote someone are cleared in the same commit."""
        now = utcnow()
        async with self.db.transaction() as session:
            await session.execute(
                _RECORD_SENT,
                [
                    {"b_id": i, "b_message_id": message_id, "b_now": now}
                    for i, message_id, _ in sent
                ],
            )
            quoting = [i for i, _, quotes in sent if quotes]
            if quoting:
                await clear_quoted_words(session, _OUTBOX.c.id.in_(quoting))
        return [None] * len(sent)

    async def _set(self, claimed: _Claimed, **values: Any) -> None:
        """Update the claimed row; if that settles a row quoting someone, clear their words."""
        await self._write(claimed.id, lambda: self._set_once(claimed, values))

    async def _set_once(self, claimed: _Claimed, values: dict[str, Any]) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == claimed.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if claimed.quotes and values.get("status") in SETTLED_STATUSES:
                await clear_quoted_words(session, _OUTBOX.c.id == claimed.id)

    async def _fail_unsendable(self, claimed: _Claimed, exc: BaseException) -> None:
        reason = f"unsendable: {type(exc).__name__}"
        if isinstance(exc, OutboxPayloadError):
            reason = f"unsendable: {exc}"
        await self._set(
            claimed, status=OutboxStatus.FAILED, last_error=reason[:_LAST_ERROR_LENGTH]
        )
        log.error(
            "outbox %d %s chat %d: failed before sending (%s)",
            claimed.id,
            claimed.kind,
            claimed.chat_id,
            type(exc).__name__,
        )

    async def _handle_error(self, claimed: _Claimed, error: Classification) -> None:
        ids = (claimed.id, claimed.kind, claimed.chat_id)
        desc = error.description[:_LAST_ERROR_LENGTH]
        now = utcnow()
        match error.outcome:
            case Outcome.RETRY_AFTER:
                seconds = error.retry_after or 1.0
                globally = self.limiter.note_retry_after(claimed.chat_id, seconds)
                await self._set(
                    claimed,
                    status=OutboxStatus.PENDING,
                    attempts=claimed.attempts - 1,  # flood control is not a failed attempt
                    next_attempt_at=now + timedelta(seconds=seconds),
                    last_error=desc,
                )
                log.warning(
                    "outbox %d %s chat %d: 429, retry in %.0f s%s",
                    *ids,
                    seconds,
                    " (all sends paused)" if globally else "",
                )
            case Outcome.RETRY:
                if claimed.attempts >= self.max_attempts:
                    await self._set(claimed, status=OutboxStatus.FAILED, last_error=desc)
                    log.error(
                        "outbox %d %s chat %d: failed after %d attempts",
                        *ids,
                        claimed.attempts,
                    )
                    return
                delay = _retry_delay(self.retry_wait, claimed.attempts)
                await self._set(
                    claimed,
                    status=OutboxStatus.PENDING,
                    next_attempt_at=now + timedelta(seconds=delay),
                    last_error=desc,
                )
                log.warning(
                    "outbox %d %s chat %d: attempt %d failed (%s), retry in %.1f s",
                    *ids,
                    claimed.attempts,
                    _short(desc),
                    delay,
                )
            case Outcome.UNKNOWN if claimed.conversation_step:
                await self._set(claimed, **_SEND_AGAIN, next_attempt_at=utcnow())
                log.warning(
                    "outbox %d %s chat %d: unknown outcome (%s); a conversation step, sent again",
                    *ids,
                    _short(desc),
                )
            case Outcome.UNKNOWN:
                await self._set(claimed, status=OutboxStatus.UNKNOWN, last_error=desc)
                log.warning(
                    "outbox %d %s chat %d: unknown outcome (%s); not resent", *ids, _short(desc)
                )
            case Outcome.UNREACHABLE:
                await self._mark_unreachable(claimed, desc)
            case Outcome.REJECTED:
                await self._set(claimed, status=OutboxStatus.FAILED, last_error=desc)
                log.error("outbox %d %s chat %d: rejected by Telegram: %s", *ids, _short(desc))
            case Outcome.MIGRATED:
                await self._set(
                    claimed,
                    status=OutboxStatus.PENDING,
                    chat_id=error.new_chat_id,
                    attempts=claimed.attempts - 1,
                    last_error=desc,
                )
                log.warning("outbox %d %s chat %d: group migrated, resending", *ids)
            case Outcome.MISCONFIGURED:
                self.limiter.pause_all(_MISCONFIGURED_PAUSE)
                await self._set(
                    claimed,
                    status=OutboxStatus.PENDING,
                    attempts=claimed.attempts - 1,
                    next_attempt_at=now + timedelta(seconds=_MISCONFIGURED_PAUSE),
                    last_error=desc,
                )
                log.error(
                    "outbox %d %s chat %d: the bot token was rejected; all sends paused",
                    *ids,
                )

    async def _mark_unreachable(self, claimed: _Claimed, description: str) -> None:
        """403: fail the row, mark the person unreachable and tell the staff, in one commit."""
        held_count = await self._write(
            claimed.id, lambda: self._mark_unreachable_once(claimed, description)
        )
        log.warning(
            "outbox %d %s chat %d: failed, chat unreachable (403); %d queued rows held",
            claimed.id,
            claimed.kind,
            claimed.chat_id,
            held_count,
        )
        self.wake()

    async def _mark_unreachable_once(self, claimed: _Claimed, description: str) -> int:
        """The commit of :meth:`_mark_unreachable`; how many queued rows it held back."""
        now = utcnow()
        async with self.db.transaction() as session:
            if claimed.person_id is not None:
                # Before their rows: a block seen in an update marks them unreachable too.
                await lock_person(session, claimed.person_id)
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == claimed.id)
                .values(
                    status=OutboxStatus.FAILED,
                    last_error=f"{UNREACHABLE}: {description}"[:_LAST_ERROR_LENGTH],
                )
                .execution_options(synchronize_session=False)
            )
            # Nothing else queued for this chat (or this person) can be delivered either.
            others = OutboxMessage.chat_id == claimed.chat_id
            if claimed.person_id is not None:
                others = others | (OutboxMessage.person_id == claimed.person_id)
            held = await session.execute(
                update(OutboxMessage)
                .where(others, OutboxMessage.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.FAILED, last_error=UNREACHABLE)
                .execution_options(synchronize_session=False)
            )
            held_count = int(getattr(held, "rowcount", 0) or 0)
            await clear_quoted_words(session, (OutboxMessage.id == claimed.id) | others)
            if claimed.person_id is not None:
                await self.on_unreachable(session, claimed.person_id, description[:200], now)
        return held_count


def _message_id(message: telegram.Message | bool) -> int | None:
    """Telegram's id for a sent message (None for methods that answer ``True``)."""
    return message.message_id if isinstance(message, telegram.Message) else None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _short(description: str) -> str:
    """An error description fit for a log line (Telegram's reason, never message text)."""
    return description[:120]
