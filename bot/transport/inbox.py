"""The durable inbox: every update is committed before Telegram is told it arrived.

``InboxPoller`` long-polls ``getUpdates`` and only asks for the next offset (which confirms
the batch to Telegram) after the batch is committed. The webhook receiver uses ``store_updates``
the same way before answering 200. ``InboxWorker`` then hands each stored update, in order, to
python-telegram-bot's ``Application.process_update`` inside the same transaction that marks the
row done (a batch of updates shares one transaction), so a crash at any point either leaves the
update to be processed again from scratch or finds it done: never half-applied, never lost. A
handler that fails has only its own update rolled back and recorded as failed; the rest go on
(the batch is redone from its last checkpoint, one savepoint per update, see
``InboxWorker.process_batch``; an update that called Telegram directly is never run twice).
Button answers and button changes that handlers asked for are made after the batch commits,
in update order per chat (see :class:`~bot.transport.scope.UpdateScope`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, Update
from telegram.error import (
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

try:  # private to python-telegram-bot (pinned in pyproject.toml); see InboxPoller._get_updates
    from telegram.request._requestparameter import RequestParameter
except ImportError:  # pragma: no cover - only with a python-telegram-bot that moved it
    RequestParameter = None  # type: ignore[assignment,misc]

from bot.transport.ratelimit import recording_bot_calls, retry_after_seconds
from bot.transport.scope import AfterCommit, UpdateScope, current_scope
from storage.clock import utcnow
from storage.db import Database, lost_to_another_writer
from storage.models import (
    Checkin,
    CheckinStatus,
    InboxStatus,
    InboxUpdate,
    PartnerProfile,
    Person,
    TelegramIdentity,
)
from storage.queries.people import person_for_telegram_user

log = logging.getLogger(__name__)

# A batch commits at least this often, so that a long burst does not hold replies back.
MAX_BATCH_SECONDS = 0.03
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]


class Sender(NamedTuple):
    """An enrolled sender of an update, as the batch loaded them."""

    person: Person
    profile: PartnerProfile | None
    identity: TelegramIdentity | None
    had_open_checkin: bool | None  # when the batch began; None: not known


FailureHook = Callable[[AsyncSession, int, int | None, BaseException], Awaitable[None]]
"""Called in the transaction that records a failed update: (session, update_id, chat_id, error)."""


def update_chat_id(payload: dict[str, Any]) -> int | None:
    """The chat a raw update came from, if it has one."""
    for key in ("message", "edited_message", "my_chat_member"):
        body = payload.get(key)
        if isinstance(body, dict) and isinstance(body.get("chat"), dict):
            chat_id = body["chat"].get("id")
            return int(chat_id) if isinstance(chat_id, int) else None
    query = payload.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("message"), dict):
        chat = query["message"].get("chat")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return int(chat["id"])
    return None


def update_user_id(payload: dict[str, Any]) -> int | None:
    """The Telegram user id behind a raw update, whatever its kind."""
    for key in ("message", "edited_message", "callback_query", "my_chat_member"):
        body = payload.get(key)
        if isinstance(body, dict):
            sender = body.get("from")
            if isinstance(sender, dict) and isinstance(sender.get("id"), int):
                return int(sender["id"])
    return None


async def store_updates(db: Database, updates: Sequence[dict[str, Any]]) -> int:
    """Commit raw updates to the inbox, ignoring ids already there; returns how many were new."""
    if not updates:
        return 0
    ids = [int(u["update_id"]) for u in updates]
    async with db.transaction() as session:
        existing = set(
            (
                await session.execute(
                    select(InboxUpdate.update_id).where(InboxUpdate.update_id.in_(ids))
                )
            ).scalars()
        )
        fresh = 0
        for raw in updates:
            update_id = int(raw["update_id"])
            if update_id in existing:
                continue
            existing.add(update_id)
            session.add(
                InboxUpdate(
                    update_id=update_id,
                    payload=json.dumps(raw, ensure_ascii=False, separators=(",", ":")),
                    status=InboxStatus.PENDING,
                    received_at=utcnow(),
                )
            )
            fresh += 1
    return fresh


#: How many more times an update that lost a deadlock is run before it is recorded as failed.
RUNS_AFTER_A_LOST_LOCK = 2


@dataclass(frozen=True)
class _Failed:
    """The update a batch stopped at: what went wrong, and whether it had called Telegram."""

    row: InboxUpdate
    error: BaseException
    reached_out: bool


def _log_failure(update_id: int, error: BaseException) -> None:
    log.error("update %s failed: %s", update_id, type(error).__name__, exc_info=error)


class InboxPoller:
    """Long polling that confirms an offset only after the batch is committed."""

    def __init__(
        self,
        db: Database,
        bot: Bot,
        request: BaseRequest,
        *,
        on_stored: Callable[[], None],
        timeout: int = 25,
        allowed_updates: Sequence[str] = ALLOWED_UPDATES,
    ) -> None:
        self.db = db
        self.bot = bot
        self.request = request
        self.on_stored = on_stored
        self.timeout = timeout
        self.allowed_updates = list(allowed_updates)
        self.offset: int | None = None
        self.last_poll_at: float | None = None

    async def _get_updates(self) -> list[dict[str, Any]]:
        if RequestParameter is None:
            return await self._get_updates_stock()
        params: dict[str, Any] = {
            "timeout": self.timeout,
            "limit": 100,
            "allowed_updates": self.allowed_updates,
        }
        if self.offset is not None:
            params["offset"] = self.offset
        data = RequestData([RequestParameter.from_input(k, v) for k, v in params.items()])
        # The raw JSON is what we store: parsing happens later, per update, so one update that
        # python-telegram-bot cannot parse never blocks the others.
        result = await self.request.post(
            url=f"{self.bot.base_url}/getUpdates",
            request_data=data,
            read_timeout=self.timeout + 10,
        )
        return list(result) if isinstance(result, list) else []

    async def _get_updates_stock(self) -> list[dict[str, Any]]:
        """The same through python-telegram-bot's public ``get_updates``, for a version whose
        private request layout changed: updates are parsed and turned back into JSON, so one it
        cannot parse fails the batch instead of being stored raw."""
        updates = await self.bot.get_updates(
            offset=self.offset,
            timeout=self.timeout,
            limit=100,
            allowed_updates=self.allowed_updates,
            read_timeout=self.timeout + 10,
        )
        return [update.to_dict() for update in updates]

    async def poll_once(self) -> int:
        """One getUpdates round: store the batch, then move the offset past it."""
        updates = await self._get_updates()
        self.last_poll_at = asyncio.get_running_loop().time()
        if not updates:
            return 0
        await store_updates(self.db, updates)
        self.offset = max(int(u["update_id"]) for u in updates) + 1
        self.on_stored()
        return len(updates)

    async def run(self) -> None:
        """Poll until cancelled, backing off on Telegram or network trouble."""
        backoff = 1.0
        while True:
            try:
                await self.poll_once()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                delay = retry_after_seconds(exc)
                log.warning("getUpdates rate limited; waiting %.0f s", delay)
                await asyncio.sleep(delay)
            except Conflict:
                log.error(
                    "another process is polling with this bot token (or a webhook is set); "
                    "retrying in %.0f s",
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
            except InvalidToken:
                log.critical("Telegram rejected the bot token; polling stops")
                raise
            except (TimedOut, NetworkError) as exc:
                log.warning(
                    "getUpdates failed (%s); retrying in %.0f s", type(exc).__name__, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
            except (DBAPIError, OSError) as exc:
                # The batch was not committed, so the offset did not move: nothing is lost.
                log.error("could not store updates (%s); retrying", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)


class InboxWorker:
    """Processes stored updates in order, one transaction each."""

    def __init__(
        self,
        db: Database,
        application: Application[Any, Any, Any, Any, Any, Any],
        *,
        on_committed: Callable[[], None],
        on_failed: FailureHook | None = None,
        batch_size: int = 50,
    ) -> None:
        self.db = db
        self.application = application
        self.on_committed = on_committed
        self.on_failed = on_failed
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        # Each chat's latest after-commit calls (a chat's calls are made in order).
        self._calls: dict[int | None, asyncio.Task[None]] = {}
        self.processed = 0
        self.failed = 0

    def wake(self) -> None:
        """New rows were committed; look now."""
        self._wake.set()

    async def _people(self, session: AsyncSession, user_ids: set[int]) -> dict[int, Sender]:
        """Enrolled people (with partner profiles) for a batch's senders, in one query.

        It also asks whether each has a check-in open, which saves a query for every message
        typed when none is (see :func:`bot.partners.checkins.current_open`).
        """
        if not user_ids:
            return {}
        has_open = (
            exists()
            .where(Checkin.person_id == Person.id, Checkin.status == CheckinStatus.OPEN)
            .label("has_open")
        )
        result = await session.execute(
            select(TelegramIdentity, Person, PartnerProfile, has_open)
            .join(Person, Person.id == TelegramIdentity.person_id)
            .outerjoin(PartnerProfile, PartnerProfile.person_id == Person.id)
            .where(TelegramIdentity.telegram_user_id.in_(user_ids))
        )
        return {
            identity.telegram_user_id: Sender(person, profile, identity, bool(is_open))
            for identity, person, profile, is_open in result
        }

    async def process_batch(self) -> int:
        """Process up to ``batch_size`` pending updates, in order, in ONE transaction.

        One commit per batch instead of one per update is what keeps a burst fast on SQLite.
        Updates first run one after the other with no savepoint of their own (a savepoint per
        update cost about a tenth of the throughput). If one fails, the batch goes back to the
        last checkpoint and the updates since then run again, each in its own SAVEPOINT, so
        the failing one is rolled back alone and recorded as failed while the others commit.

        An update that called the Bot API while it was processed (answered a button, replied
        directly) cannot be undone, so it must never run twice: a checkpoint (a savepoint) is
        set right after it. The failing update itself is recorded as failed, unless it only
        lost a deadlock and called no Telegram method (see :meth:`_run_again`). Returns how
        many updates were handled (0: nothing pending).
        """
        failures = 0
        loop = asyncio.get_running_loop()
        async with self.db.transaction() as session:
            rows = (
                (
                    await session.execute(
                        select(InboxUpdate)
                        .where(InboxUpdate.status == InboxStatus.PENDING)
                        .order_by(InboxUpdate.update_id)
                        .limit(self.batch_size)
                    )
                )
                .scalars()
                .all()
            )
            if not rows:
                return 0
            raws = {r.update_id: json.loads(r.payload) for r in rows if r.payload is not None}
            user_ids = {uid for raw in raws.values() if (uid := update_user_id(raw)) is not None}
            people = await self._people(session, user_ids)
            started = loop.time()
            done: list[int] = []
            # By update id: the calls of updates that commit, an empty answer for a failed press.
            calls: dict[int, list[AfterCommit]] = {}
            checkpoint = await session.begin_nested()
            since_checkpoint: list[InboxUpdate] = []  # undone if a later update fails
            failed: _Failed | None = None
            for row in rows:
                raw = raws.get(row.update_id)
                if raw is not None:
                    scope, reached_out = await self._run(session, row.update_id, raw, people)
                    if scope.error is not None:
                        failed = _Failed(row, scope.error, reached_out)
                        break
                    calls[row.update_id] = scope.after_commit
                    if reached_out:
                        checkpoint = await session.begin_nested()
                        since_checkpoint = []
                    else:
                        since_checkpoint.append(row)
                done.append(row.update_id)
                if loop.time() - started > MAX_BATCH_SECONDS:
                    break  # commit what is done so replies are not held back for long
            if failed is not None:
                await checkpoint.rollback()
                del done[len(done) - len(since_checkpoint) :]
                failures += await self._after_failure(
                    session,
                    failed,
                    since_checkpoint=since_checkpoint,
                    raws=raws,
                    done=done,
                    calls=calls,
                )
            if done:
                # One statement for the whole batch; the id stays for de-duplication, the
                # message itself does not.
                await session.execute(
                    update(InboxUpdate)
                    .where(InboxUpdate.update_id.in_(done))
                    .values(
                        status=InboxStatus.DONE,
                        payload=None,
                        processed_at=utcnow(),
                        attempts=InboxUpdate.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        self.processed += len(done)
        self.failed += failures
        self.on_committed()
        self._call_after_commit(
            [
                (update_chat_id(raws[r.update_id]), call)
                for r in rows
                for call in calls.get(r.update_id, ())
            ]
        )
        return len(done) + failures

    async def _after_failure(
        self,
        session: AsyncSession,
        failed: _Failed,
        *,
        since_checkpoint: list[InboxUpdate],
        raws: dict[int, dict[str, Any]],
        done: list[int],
        calls: dict[int, list[AfterCommit]],
    ) -> int:
        """After a rollback to the last checkpoint: run the updates since then again, each in
        a savepoint, then the failed one again if it only lost a lock (see :meth:`_run_again`),
        else record it as failed. Returns how many updates failed."""
        row = failed.row
        failures = 0
        people: dict[int, Sender] = {}  # the rollback expired them
        for again in since_checkpoint:
            calls.pop(again.update_id, None)
            raw = raws.get(again.update_id)
            if raw is not None:
                scope, _ = await self._process(session, again.update_id, raw, people)
                if scope.error is not None:
                    await self._record_failure(session, again, update_chat_id(raw), scope.error)
                    calls[again.update_id] = self._stop_spinner(raw)
                    failures += 1
                    continue
                calls[again.update_id] = scope.after_commit
            done.append(again.update_id)
        raw = raws[row.update_id]
        outcome = await self._run_again(session, failed, raw, people)
        if isinstance(outcome, UpdateScope):
            calls[row.update_id] = outcome.after_commit
            done.append(row.update_id)
            return failures
        # Recorded at once, so the apology is queued before later replies.
        await self._record_failure(session, row, update_chat_id(raw), outcome)
        calls[row.update_id] = self._stop_spinner(raw)
        return failures + 1

    async def _run_again(
        self,
        session: AsyncSession,
        failed: _Failed,
        raw: dict[str, Any],
        people: dict[int, Sender],
    ) -> UpdateScope | BaseException:
        """Run an update that lost a deadlock again, in a savepoint.

        Another transaction wanting the same rows is no fault of the update: run again, it
        waits for the other one and goes through, and the partner's answer is kept rather
        than apologised for. Only an update that has not called Telegram is run again.
        Returns its scope once it went through, else the error to record (logged here): it
        failed for another reason, called Telegram, or lost every time.

        Limits: the batch's locks from before the last checkpoint stay held, so a cycle
        through one of them is lost again (each try costs PostgreSQL's deadlock_timeout,
        1 s by default). An update redone after the failure (since the checkpoint) that then
        loses a deadlock itself is recorded as failed, not run again.
        """
        error, reached_out = failed.error, failed.reached_out
        for _ in range(RUNS_AFTER_A_LOST_LOCK):
            if reached_out or not lost_to_another_writer(error):
                break
            log.warning(
                "update %s lost a lock to another transaction (%s); running it again",
                failed.row.update_id,
                type(error).__name__,
            )
            scope, reached_out = await self._process(
                session, failed.row.update_id, raw, people, log_failure=False
            )
            if scope.error is None:
                return scope
            error = scope.error
        _log_failure(failed.row.update_id, error)
        return error

    def _stop_spinner(self, raw: dict[str, Any]) -> list[AfterCommit]:
        """For a button press that failed: an empty answer, so its spinner stops at once."""
        query = raw.get("callback_query")
        query_id = query.get("id") if isinstance(query, dict) else None
        if not isinstance(query_id, str):
            return []
        bot = self.application.bot

        async def answer() -> None:
            with contextlib.suppress(TelegramError):
                await bot.answer_callback_query(query_id)

        return [answer]

    def _call_after_commit(self, calls: list[tuple[int | None, AfterCommit]]) -> None:
        """Make a committed batch's calls in the background: in order within a chat (after
        that chat's earlier calls), and chats side by side, so one slow chat holds back no
        other chat's toasts."""
        by_chat: dict[int | None, list[AfterCommit]] = {}
        for chat_id, call in calls:
            by_chat.setdefault(chat_id, []).append(call)
        for chat_id, chat_calls in by_chat.items():
            task = asyncio.create_task(self._make_calls(self._calls.get(chat_id), chat_calls))
            self._calls[chat_id] = task
            task.add_done_callback(partial(self._forget_calls, chat_id))

    def _forget_calls(self, chat_id: int | None, task: asyncio.Task[None]) -> None:
        if self._calls.get(chat_id) is task:
            del self._calls[chat_id]

    @staticmethod
    async def _make_calls(previous: asyncio.Task[None] | None, calls: list[AfterCommit]) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        for call in calls:
            try:
                await call()
            except Exception as exc:  # each call handles Telegram's errors; this is a bug
                log.error("after-commit call failed (%s)", type(exc).__name__, exc_info=exc)

    async def calls_done(self, timeout: float = 10.0, *, cancel: bool = False) -> None:
        """Wait (up to ``timeout`` s) until the after-commit calls made so far have finished;
        ``cancel`` gives up on those still going after that (when stopping)."""
        pending = set(self._calls.values())
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=timeout)
        if cancel and late:
            log.warning("stopping: %d chats' button answers were not made in time", len(late))
            for task in late:
                task.cancel()
            await asyncio.wait(late)

    def _scope(
        self,
        update_id: int,
        raw: dict[str, Any],
        session: AsyncSession,
        people: dict[int, Sender],
    ) -> UpdateScope:
        scope = UpdateScope(update_id=update_id, session=session)
        user_id = update_user_id(raw)
        if user_id is not None and (known := people.get(user_id)) is not None:
            scope.person, scope.profile = known.person, known.profile
            scope.identity, scope.had_open_checkin = known.identity, known.had_open_checkin
        return scope

    async def _lookup(
        self,
        session: AsyncSession,
        raw: dict[str, Any],
        people: dict[int, Sender],
    ) -> None:
        """Load the sender into ``people`` if the batch query did not (enrolled since, or the
        cache was cleared by a rollback)."""
        user_id = update_user_id(raw)
        if user_id is None or user_id in people:
            return
        person = await person_for_telegram_user(session, user_id)
        if person is not None:
            profile = await session.get(PartnerProfile, person.id)
            people[user_id] = Sender(person, profile, None, None)

    async def _handle(self, scope: UpdateScope, raw: dict[str, Any]) -> bool:
        """Hand one update to python-telegram-bot; True if it called the Bot API."""
        token = current_scope.set(scope)
        try:
            with recording_bot_calls() as calls:
                update = Update.de_json(raw, self.application.bot)
                await self.application.process_update(update)
                if scope.error is None:
                    # Write its rows now, so that an error in them is this update's.
                    await scope.session.flush()
        except Exception as exc:  # a payload PTB cannot parse, a failing handler or flush
            scope.error = exc
        finally:
            current_scope.reset(token)
        return bool(calls)

    async def _run(
        self,
        session: AsyncSession,
        update_id: int,
        raw: dict[str, Any],
        people: dict[int, Sender],
    ) -> tuple[UpdateScope, bool]:
        """Run one update's handlers with no savepoint of its own.

        Returns its scope (``scope.error`` if it failed) and whether it called the Bot API.
        """
        await self._lookup(session, raw, people)  # a database error here fails the batch
        scope = self._scope(update_id, raw, session, people)
        reached_out = await self._handle(scope, raw)
        return scope, reached_out

    async def _process(
        self,
        session: AsyncSession,
        update_id: int,
        raw: dict[str, Any],
        people: dict[int, Sender],
        *,
        log_failure: bool = True,
    ) -> tuple[UpdateScope, bool]:
        """Run one update's handlers inside a savepoint; ``scope.error`` if one failed.

        Returns its scope and whether it called the Bot API.
        """
        await self._lookup(session, raw, people)
        scope = self._scope(update_id, raw, session, people)
        savepoint = await session.begin_nested()
        reached_out = await self._handle(scope, raw)
        if scope.error is None:
            await savepoint.commit()
            return scope, reached_out
        await savepoint.rollback()
        people.clear()  # the rollback expired them
        if log_failure:
            _log_failure(update_id, scope.error)
        return scope, reached_out

    async def _record_failure(
        self,
        session: AsyncSession,
        row: InboxUpdate,
        chat_id: int | None,
        error: BaseException,
    ) -> None:
        row.attempts += 1
        row.error = type(error).__name__[:200]
        row.status = InboxStatus.FAILED
        row.payload = None
        row.processed_at = utcnow()
        if self.on_failed is not None:
            await self.on_failed(session, row.update_id, chat_id, error)

    async def drain(self) -> int:
        """Process everything pending now; returns how many updates were handled."""
        handled = 0
        while True:
            count = await self.process_batch()
            if not count:
                return handled
            handled += count

    async def run(self) -> None:
        """Process updates as they arrive until cancelled (resuming unfinished ones first)."""
        while True:
            self._wake.clear()
            try:
                await self.drain()
            except (DBAPIError, OSError) as exc:
                # The batch rolled back as a whole; its updates are still pending.
                log.error("inbox worker database error (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=5.0)

    async def prune(self, older_than_days: int = 7) -> int:
        """Delete finished rows whose ids Telegram can no longer redeliver (it keeps 24 h)."""
        cutoff = utcnow() - timedelta(days=older_than_days)
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(InboxUpdate).where(
                    InboxUpdate.status != InboxStatus.PENDING,
                    InboxUpdate.processed_at < cutoff,
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)
