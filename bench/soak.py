"""Soak: `companion run` killed with SIGKILL again and again while partners go on talking to it.

The sandbox Telegram lives in this process and survives every kill; the bot is a real
`companion run` subprocess (long polling). Simulated partners behave like people: each
answers the newest check-in question it has not answered yet (a scale by a button, a free-text
question by typing, sometimes "Skip"), starts a new check-in with /checkin only once the last
one has thanked them, and never nudges: a partner left waiting is counted (a conversation that
needed a nudge) before it types /checkin to go on. A broadcast goes out every few cycles
(`companion broadcast send`, a separate process), and half-way one partner withdraws.

Each cycle starts the bot and kills it at a random moment: after a random delay, or (one
cycle in three) while a message is in flight: the sandbox accepts a sendMessage and holds its
answer (`hang_after_accept`), and the bot is killed before it hears back. At the end the bot
runs once more until everything settles, and the tool reports:

* answers lost: a partner's answer the sandbox accepted that is not in the database (goal 0);
* answers stored twice: one update stored as two answers, or two answers in force for one
  question of one check-in (goal 0);
* conversations that needed a nudge: a partner whose answered question was followed by
  nothing for STALL_SECONDS of the bot's uptime (goal 0);
* messages doubled: a bot message that reached the partner twice (goal: at most one per kill,
  each from a send whose outcome was unknown); a message is matched to its outbox row by the
  Telegram message id the sender recorded, so a copy without a row is a send the bot never
  heard back from (a copy repeated with no kill between, after a send timed out, is counted
  apart). Right after each kill the soak reads which rows it left ``sending``: only those can
  be doubled, and a conversation may have at most one of them in flight (goal: at most one
  per chat per kill, and no more doubles than sends caught in flight);
* contact after withdrawal, failed updates, connector alerts (goal 0 each);
* the median and p90 time from a restart (process spawned) to the next message sent.

Usage: python bench/soak.py [--cycles 100] [--database sqlite|postgresql|both]
                            [--pg-url postgresql+asyncpg://...] [--partners 8] [--seed 1]
                            [--json] [--log-dir DIR] [--log-level DEBUG]
The PostgreSQL database (``--pg-url``, or SOAK_PG_URL) is emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import html
import json
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select, text

from bot.partners.people import new_pseudonym
from bot.sandbox.server import SandboxTelegram
from bot.sandbox.spec import BotApiSpec, find_spec_path
from storage.clock import utcnow
from storage.db import Database, is_sqlite
from storage.migrate import upgrade
from storage.models import (
    Answer,
    Base,
    ConsentDecision,
    InboxStatus,
    InboxUpdate,
    OutboxMessage,
    OutboxStatus,
    PartnerProfile,
    Person,
    Role,
    TelegramIdentity,
)

FIRST_PARTNER = 810_000
CONNECTOR = 890_001
SECRET = "soak-secret-key-for-free-text-and-pseudonyms-0123456789"
STALL_SECONDS = 15.0  # a partner waits this long (bot up and polling) before it nudges
TWIN_SECONDS = 30.0  # a resend comes within this long of the copy it repeats
END_MARK = "That is your check-in done"
BROADCAST_EVERY = 10
IN_FLIGHT_SHARE = 1 / 3  # kills while a send is in flight (half before, half after accept)
START_UP_SHARE = 0.15  # kills while the bot is still starting
SEND_METHODS = ("sendMessage", "sendPhoto", "sendDocument")


@dataclass
class Action:
    """Something a partner did that the sandbox accepted."""

    partner: int
    update_id: int
    kind: str  # "press" | "text" | "skip" | "checkin" | "nudge" | "withdraw" | "confirm"
    key: tuple[str, str] | None  # (check-in id, question) for an answer
    mark: int  # the chat's newest message id when it was done


@dataclass
class Partner:
    """One simulated partner: reads the chat, answers, waits like a person."""

    sb: SandboxTelegram
    user_id: int
    rng: random.Random
    answered: set[tuple[str, str]] = field(default_factory=set)
    floor: int = 0  # message id of the newest question answered
    waiting: Action | None = None  # the last action still waiting for the bot's next step
    waited: float = 0.0
    nudges: int = 0
    next_at: float = 0.0
    withdrawing: bool = False
    withdrawn_mark: int | None = None
    actions: list[Action] = field(default_factory=list)

    def _mark(self) -> int:
        chat = self.sb.chats.get(self.user_id)
        return max(chat.messages, default=0) if chat else 0

    def _did(self, update: dict[str, Any], kind: str, key: tuple[str, str] | None) -> Action:
        action = Action(self.user_id, int(update["update_id"]), kind, key, self._mark())
        self.actions.append(action)
        return action

    def _questions(self) -> list[tuple[dict[str, Any], tuple[str, str], list[str]]]:
        """Check-in questions in the chat: (message, (check-in, question), button data)."""
        found = []
        for message in self.sb.sent_to(self.user_id):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            data = [b.get("callback_data", "") for row in rows for b in row]
            parts = data[0].split(":") if data else []
            if len(parts) == 4 and parts[0] == "ci":
                found.append((message, (parts[1], parts[2]), data))
        return found

    def _followed(self, action: Action) -> bool:
        """Whether a check-in step (a question or the thank-you) came after ``action``."""
        for message in self.sb.sent_to(self.user_id):
            if message["message_id"] <= action.mark:
                continue
            markup = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            first = markup[0][0].get("callback_data", "") if markup and markup[0] else ""
            if first.startswith("ci:") or END_MARK in (message.get("text") or ""):
                return True
        return False

    def act(self, now: float, *, wind_down: bool) -> None:
        """Do the next thing a person would do, if anything, once the think time is over."""
        if self.withdrawn_mark is not None or now < self.next_at:
            return
        self.next_at = now + self.rng.uniform(0.2, 1.0)
        if self.withdrawing:
            self._withdraw()
            return
        if self.waiting is not None and self._followed(self.waiting):
            self.waiting, self.waited = None, 0.0
        pending = [
            q
            for q in self._questions()
            if q[1] not in self.answered and q[0]["message_id"] > self.floor
        ]
        if pending:
            self._answer(*pending[-1])
        elif self.waiting is None and not wind_down:
            self.waiting = self._did(self.user().send_command("checkin"), "checkin", None)

    def user(self) -> Any:
        """The sandbox user."""
        return self.sb.user(self.user_id, f"P{self.user_id % 1000}")

    def _answer(self, message: dict[str, Any], key: tuple[str, str], data: list[str]) -> None:
        values = [d for d in data if not d.endswith(":-")]
        if values:
            update, kind = self.user().press(message, self.rng.choice(values)), "press"
        elif self.rng.random() < 0.75:
            words = f"soak answer {self.user_id} {len(self.actions)}: more time to read"
            update, kind = self.user().send_text(words), "text"
        else:
            update, kind = self.user().press(message, data[0]), "skip"
        self.answered.add(key)
        self.floor = message["message_id"]
        self.waiting, self.waited = self._did(update, kind, key), 0.0

    def _withdraw(self) -> None:
        for message in reversed(self.sb.sent_to(self.user_id)):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            yes = [b["callback_data"] for row in rows for b in row]
            yes = [d for d in yes if d.startswith("wd:yes:")]
            if yes and message["message_id"] > self.floor:
                action = self._did(self.user().press(message, yes[0]), "confirm", None)
                self.withdrawn_mark = action.mark
                return
        if not any(a.kind == "withdraw" for a in self.actions):
            self._did(self.user().send_command("withdraw"), "withdraw", None)
            self.floor = self._mark()

    def tick(self, seconds: float, *, bot_ready: bool) -> None:
        """Count waiting time while the bot is up; nudge (and count it) past STALL_SECONDS."""
        if self.waiting is None or not bot_ready or self.withdrawn_mark is not None:
            return
        if self._followed(self.waiting):
            self.waiting, self.waited = None, 0.0
            return
        self.waited += seconds
        if self.waited >= STALL_SECONDS:
            self.nudges += 1
            print(
                f"  partner {self.user_id} left waiting after {self.waiting.kind} "
                f"(update {self.waiting.update_id}); nudging",
                flush=True,
            )
            self.waiting = self._did(self.user().send_command("checkin"), "nudge", None)
            self.waited = 0.0


@dataclass
class Cycle:
    """One start and kill of the bot."""

    spawned: float  # wall-clock time
    killed: float = 0.0
    moment: str = "running"  # "running" | "starting" | "before accept" | "after accept"
    first_send: float | None = None  # seconds from spawn to the next message sent
    #: Rows the kill caught in flight (``sending``), by chat: conversation steps, and others.
    steps_in_flight: Counter[int] = field(default_factory=Counter)
    others_in_flight: int = 0


@dataclass
class Report:
    """What one soak run found."""

    database: str
    cycles: int
    partners: int
    answers: int = 0
    answers_lost: int = 0
    answers_stored_twice: int = 0
    nudges_needed: int = 0
    messages_doubled: int = 0
    doubled_max_per_kill: int = 0
    steps_caught_in_flight: int = 0
    steps_in_flight_max_per_chat_per_kill: int = 0
    others_caught_in_flight: int = 0
    doubled_after_a_timeout: int = 0
    delivered_without_row: int = 0
    unknown_rows: int = 0
    unknown_by_kind: dict[str, int] = field(default_factory=dict)  # "<kind> <key prefix>"
    contact_after_withdrawal: int = 0
    failed_updates: int = 0
    connector_alerts: int = 0
    broadcasts: int = 0
    spec_errors: int = 0
    restart_to_message_median: float | None = None
    restart_to_message_p90: float | None = None
    restarts_with_a_message: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


async def prepare_database(url: str) -> None:
    """Migrate ``url`` and empty every table (PostgreSQL databases are reused)."""
    await upgrade(url)
    if is_sqlite(url):
        return
    db = Database(url)
    try:
        async with db.transaction() as session:
            names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
            await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await db.dispose()


async def enrol(url: str, user_ids: list[int]) -> None:
    """Partners with onboarding done and consent given, no quiet hours, straight in the DB.

    Their weekly check-in falls due about a minute and a half in, while they are answering
    the ones they asked for, so every soak also tries a scheduled check-in meeting one in
    progress.
    """
    db = Database(url)
    now = utcnow()
    weekly = (now + timedelta(seconds=120)).astimezone(ZoneInfo("Europe/London"))
    try:
        async with db.transaction() as session:
            for user_id in user_ids:
                person = Person(pseudonym=new_pseudonym(), role=Role.PARTNER, created_at=now)
                session.add(person)
                await session.flush()
                name = f"P{user_id % 1000}"
                session.add(
                    TelegramIdentity(
                        person_id=person.id,
                        telegram_user_id=user_id,
                        chat_id=user_id,
                        first_name=name,
                        preferred_name=name,
                    )
                )
                session.add(
                    PartnerProfile(
                        person_id=person.id,
                        group_key="north",
                        timezone="Europe/London",
                        checkin_weekday=weekly.weekday(),
                        checkin_time=weekly.strftime("%H:%M"),
                        quiet_start="00:00",
                        quiet_end="00:00",
                        onboarding_step="done",
                        enrolled_at=now,
                        onboarded_at=now,
                    )
                )
                for key in ("take_part", "quote_anonymously"):
                    session.add(
                        ConsentDecision(
                            person_id=person.id, item_key=key, granted=True, decided_at=now
                        )
                    )
    finally:
        await db.dispose()


def bot_env(
    sb: SandboxTelegram, url: str, data_dir: Path, log_level: str = "INFO"
) -> dict[str, str]:
    """The environment of `companion run` (and the CLI) for this soak."""
    return {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": sb.token,
        "TELEGRAM_API_BASE_URL": sb.base_url,
        "DATABASE_URL": url,
        "COMPANION_DATA_DIR": str(data_dir),
        "COMPANION_SECRET_KEY": SECRET,
        "COMPANION_CONNECTOR_IDS": str(CONNECTOR),
        "COMPANION_LOG_LEVEL": log_level,
    }


async def start_bot(env: dict[str, str], log_path: Path) -> asyncio.subprocess.Process:
    """`companion run` as its own process, output appended to ``log_path``."""
    with open(log_path, "ab") as log:  # noqa: ASYNC230 - a local log, once per start
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, stdout=log, stderr=log
        )


async def broadcast(env: dict[str, str], number: int) -> bool:
    """`companion broadcast send` to every partner; whether it was queued."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "broadcast",
        "send",
        "--text",
        f"Soak news number {number}: thank you all.",
        "--urgent",
        "--yes",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await process.communicate()
    if process.returncode != 0:
        print(f"  broadcast {number} failed: {err.decode()[-300:]}", flush=True)
    return process.returncode == 0


class Soak:
    """One soak run against one database."""

    def __init__(self, args: argparse.Namespace, database: str, url: str, workdir: Path) -> None:
        """Prepare a run of ``args.cycles`` kills on ``url``."""
        self.args, self.url, self.workdir = args, url, workdir
        self.rng = random.Random(args.seed)
        self.report = Report(database=database, cycles=args.cycles, partners=args.partners)
        self.partners: list[Partner] = []
        self.cycles: list[Cycle] = []
        self.process: asyncio.subprocess.Process | None = None
        self.ready = False
        self.wind_down = False
        self._ready_task: asyncio.Task[None] | None = None

    async def run(self, sb: SandboxTelegram) -> Report:
        """Kill the bot ``cycles`` times, let it settle, and count what went wrong."""
        started = time.monotonic()
        ids = [FIRST_PARTNER + i for i in range(self.args.partners)]
        await prepare_database(self.url)
        await enrol(self.url, ids)
        self.partners = [Partner(sb, i, random.Random(self.rng.random())) for i in ids]
        env = bot_env(sb, self.url, self.workdir / "data", self.args.log_level)
        log_path = self.workdir / "companion.log"
        driver = asyncio.create_task(self._drive(sb))
        try:
            for number in range(self.args.cycles):
                if number % BROADCAST_EVERY == 3:
                    self.report.broadcasts += await broadcast(env, number)
                if number == self.args.cycles // 2 and self.partners:
                    self.partners[0].withdrawing = True
                await self._cycle(sb, env, log_path, number)
            await self._settle(sb, env, log_path)
        finally:
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver
        await self._count(sb)
        self.report.seconds = round(time.monotonic() - started, 1)
        return self.report

    async def _drive(self, sb: SandboxTelegram) -> None:
        """The partners' loop: act, and count waiting time while the bot is up."""
        step = 0.1
        while True:
            now = time.monotonic()
            for partner in self.partners:
                partner.act(now, wind_down=self.wind_down)
                partner.tick(step, bot_ready=self.ready)
            await asyncio.sleep(step)

    async def _spawn(self, sb: SandboxTelegram, env: dict[str, str], log_path: Path) -> Cycle:
        polls = len(sb.requests_for("getUpdates"))
        cycle = Cycle(spawned=time.time())
        self.process = await start_bot(env, log_path)
        self.ready = False

        async def readiness() -> None:
            while len(sb.requests_for("getUpdates")) <= polls:  # noqa: ASYNC110 - the log
                await asyncio.sleep(0.05)
            self.ready = True

        self._ready_task = asyncio.create_task(readiness())
        return cycle

    async def _until_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def _kill(self, cycle: Cycle) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        cycle.killed = time.time()
        self.ready = False
        if self._ready_task is not None:
            self._ready_task.cancel()
        await self._caught_in_flight(cycle)

    async def _caught_in_flight(self, cycle: Cycle) -> None:
        """Note the rows the kill left ``sending``: the only sends that can be doubled."""
        db = Database(self.url)
        try:
            async with db.sessions() as session:
                rows = await session.execute(
                    select(OutboxMessage.chat_id, OutboxMessage.conversation_step).where(
                        OutboxMessage.status == OutboxStatus.SENDING
                    )
                )
                for chat_id, step in rows:
                    if step:
                        cycle.steps_in_flight[chat_id] += 1
                    else:
                        cycle.others_in_flight += 1
        finally:
            await db.dispose()

    async def _cycle(
        self, sb: SandboxTelegram, env: dict[str, str], log_path: Path, number: int
    ) -> None:
        cycle = await self._spawn(sb, env, log_path)
        self.cycles.append(cycle)
        roll = self.rng.random()
        if roll < IN_FLIGHT_SHARE:
            # A send in flight: held before the sandbox handles it (never delivered), or after
            # (delivered, but the bot never hears back).
            cycle.moment = "before accept" if roll < IN_FLIGHT_SHARE / 2 else "after accept"
            await self._until_ready()
            if cycle.moment == "before accept":
                sb.faults.slow_seconds = 2.0  # every answer waits; the handler has not run
            else:
                sb.faults.hang_after_accept(1, seconds=30.0, method="sendMessage")
            seen = len(sb.requests_for("sendMessage"))
            deadline = time.monotonic() + 10.0
            sending = sb.requests_for
            while len(sending("sendMessage")) <= seen and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await asyncio.sleep(self.rng.uniform(0.0, 0.3))
        elif roll < IN_FLIGHT_SHARE + START_UP_SHARE:
            cycle.moment = "starting"
            await asyncio.sleep(self.rng.uniform(0.2, 3.0))
        else:
            await self._until_ready()
            await asyncio.sleep(self.rng.uniform(0.2, 6.0))
        await self._kill(cycle)
        sb.faults.clear()
        sent = self._first_send(sb, cycle)
        print(
            f"cycle {number + 1:3}/{self.args.cycles}: killed after "
            f"{cycle.killed - cycle.spawned:4.1f} s ({cycle.moment})"
            f"{f', first message after {sent:.2f} s' if sent is not None else ''}",
            flush=True,
        )

    @staticmethod
    def _first_send(sb: SandboxTelegram, cycle: Cycle) -> float | None:
        for request in sb.requests:
            if request.method in SEND_METHODS and cycle.spawned <= request.time < cycle.killed:
                cycle.first_send = request.time - cycle.spawned
                return cycle.first_send
        return None

    async def _settle(self, sb: SandboxTelegram, env: dict[str, str], log_path: Path) -> None:
        """Run the bot until every partner's conversation is over and the outbox is empty."""
        self.wind_down = True
        cycle = await self._spawn(sb, env, log_path)
        db = Database(self.url)
        try:
            deadline = time.monotonic() + 120 + STALL_SECONDS * 2
            quiet_since: float | None = None
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                busy = sb.pending_updates or any(
                    p.waiting is not None and p.withdrawn_mark is None for p in self.partners
                )
                async with db.sessions() as session:
                    inbox = await session.scalar(
                        select(InboxUpdate.update_id).where(
                            InboxUpdate.status == InboxStatus.PENDING
                        )
                    )
                    outbox = await session.scalar(
                        select(OutboxMessage.id).where(
                            OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING))
                        )
                    )
                if busy or inbox is not None or outbox is not None:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > 3:
                    break
            else:
                self.report.problems.append("the bot did not settle within the final run")
        finally:
            await db.dispose()
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.report.problems.append("the bot did not stop on SIGTERM")
                await self._kill(cycle)
            cycle.killed = time.time()
            self._first_send(sb, cycle)

    async def _count(self, sb: SandboxTelegram) -> None:
        """Compare what the partners did and saw with what the database holds."""
        report = self.report
        db = Database(self.url)
        try:
            async with db.sessions() as session:
                answers = (
                    await session.execute(
                        select(
                            Answer.source_update_id,
                            Answer.checkin_id,
                            Answer.question_key,
                            Answer.superseded_at,
                        )
                    )
                ).all()
                rows = (
                    await session.execute(
                        select(
                            OutboxMessage.chat_id,
                            OutboxMessage.status,
                            OutboxMessage.tg_message_id,
                            OutboxMessage.last_error,
                            OutboxMessage.kind,
                            OutboxMessage.idempotency_key,
                        )
                    )
                ).all()
                report.failed_updates = len(
                    (
                        await session.execute(
                            select(InboxUpdate.update_id).where(
                                InboxUpdate.status == InboxStatus.FAILED
                            )
                        )
                    ).all()
                )
        finally:
            await db.dispose()
        stored = Counter(a.source_update_id for a in answers)
        given = [
            a for p in self.partners for a in p.actions if a.kind in ("press", "text", "skip")
        ]
        report.answers = len(given)
        lost = [a for a in given if stored[a.update_id] == 0]
        report.answers_lost = len(lost)
        for action in lost[:10]:
            report.problems.append(f"answer lost: {asdict(action)}")
        in_force = Counter(
            (a.checkin_id, a.question_key) for a in answers if a.superseded_at is None
        )
        twice = [k for k, n in stored.items() if k is not None and n > 1]
        twice += [f"{k}" for k, n in in_force.items() if n > 1]
        report.answers_stored_twice = len(twice)
        for key in twice[:10]:
            report.problems.append(f"answer stored twice: {key}")
        report.nudges_needed = sum(p.nudges for p in self.partners)
        unknown = [r for r in rows if r.status == OutboxStatus.UNKNOWN]
        report.unknown_rows = len(unknown)
        report.unknown_by_kind = dict(
            Counter(f"{r.kind} {r.idempotency_key.split(':')[0]}" for r in unknown)
        )
        # A copy the bot never heard back from is "doubled" when the same message (same
        # text and buttons; a question's buttons name its check-in) reached the same chat
        # within TWIN_SECONDS, recorded against its row: the resend of a conversation step.
        # The resend may even come first: a request the killed process had made can still be
        # handled after the restart. It is put down to the kill between the two copies, or,
        # with no kill between them, to a send that timed out while the bot was up.
        kills = [c.killed for c in self.cycles if c.killed]
        doubled: list[tuple[int, int]] = []  # (kill index, chat id)
        alone: defaultdict[int, list[str]] = defaultdict(list)  # no row, no recorded twin
        requests: defaultdict[int, list[tuple[float, tuple[str, tuple[str, ...]]]]]
        requests = defaultdict(list)
        for request in sb.requests:
            if request.method in SEND_METHODS and request.ok:
                params = dict(request.params)
                markup = params.get("reply_markup")
                if isinstance(markup, str):
                    params["reply_markup"] = json.loads(markup)
                for field_name in ("text", "caption"):  # as the partner sees it
                    if params.get("parse_mode") == "HTML" and field_name in params:
                        params[field_name] = html.unescape(
                            re.sub("<[^>]+>", "", params[field_name])
                        )
                requests[int(params["chat_id"])].append((request.time, _signature(params)))
        for chat_id in [*(p.user_id for p in self.partners), CONNECTOR]:
            mapped = {r.tg_message_id for r in rows if r.chat_id == chat_id and r.tg_message_id}
            messages = sb.sent_to(chat_id)
            recorded = [m for m in messages if m["message_id"] in mapped]
            for message in messages:
                if message["message_id"] in mapped:
                    continue
                sent, signature = float(message["date"]), _signature(message)
                twins = [
                    m
                    for m in recorded
                    if _signature(m) == signature and abs(float(m["date"]) - sent) <= TWIN_SECONDS
                ]
                if not twins:
                    report.delivered_without_row += 1
                    alone[chat_id].append(
                        f"#{message['message_id']}: "
                        f"{(message.get('text') or message.get('caption') or '')[:50]!r}"
                    )
                    continue
                twin = min(twins, key=lambda m: abs(float(m["date"]) - sent))
                # When the two requests arrived (a message's date is when it was handled, in
                # whole seconds, and a held request is handled late): was there a kill between?
                arrived = [
                    at
                    for at, requested in requests.get(chat_id, [])
                    if requested == signature
                    and abs(at - sent) <= TWIN_SECONDS + 1
                    and abs(at - float(twin["date"])) <= TWIN_SECONDS + 1
                ]
                if not arrived:
                    report.problems.append(f"no request found for #{message['message_id']}")
                early, late = (min(arrived), max(arrived)) if arrived else (sent, sent)
                kill = bisect.bisect_left(kills, early)
                if kill < len(kills) and kills[kill] <= late:
                    doubled.append((kill, chat_id))
                else:
                    report.doubled_after_a_timeout += 1
        report.messages_doubled = len(doubled)
        per_kill = Counter(kill for kill, _chat in doubled)
        # Identical messages (a question shown again after each /checkin) make a copy's own
        # row ambiguous; the rows each kill caught in flight are exact, and a double can
        # only come from one of them.
        report.steps_caught_in_flight = sum(sum(c.steps_in_flight.values()) for c in self.cycles)
        report.steps_in_flight_max_per_chat_per_kill = max(
            (n for c in self.cycles for n in c.steps_in_flight.values()), default=0
        )
        report.others_caught_in_flight = sum(c.others_in_flight for c in self.cycles)
        # Every copy without its row is a send some kill caught in flight. (A step is the only
        # kind sent again; a broadcast copy or scheduled question left unknown can still look
        # doubled when the same words reached that chat from another row just before.)
        caught = report.steps_caught_in_flight + report.others_caught_in_flight
        if report.messages_doubled > caught:
            report.problems.append(
                f"{report.messages_doubled} messages doubled, more than the {caught} sends "
                "the kills caught in flight"
            )
        report.doubled_max_per_kill = max(per_kill.values(), default=0)
        # Every copy with no row and no recorded twin must be a send left ``unknown``: at most
        # two per unknown row in that chat (a conversation step is sent once more, and that
        # send too can be cut off; anything else is sent once).
        unknown_in = Counter(r.chat_id for r in unknown)
        for chat_id, lines in alone.items():
            if len(lines) > 2 * unknown_in[chat_id]:
                report.problems.append(
                    f"chat {chat_id}: {len(lines)} messages reached Telegram with no outbox row "
                    f"recording them and no recorded copy, for {unknown_in[chat_id]} rows "
                    "left unknown"
                )
                report.problems.extend(f"  no row, no twin: {line}" for line in lines[:5])
        for partner in self.partners:
            if partner.withdrawn_mark is None:
                continue
            # After the goodbye (or, if its delivery is unknown, after the press): anything
            # sent between the press and its processing was sent while they were still in.
            goodbye = [
                r.tg_message_id
                for r in rows
                if r.chat_id == partner.user_id and r.kind == "goodbye" and r.tg_message_id
            ]
            since = goodbye[0] if goodbye else partner.withdrawn_mark
            after = [m for m in sb.sent_to(partner.user_id) if m["message_id"] > since]
            if not goodbye:
                after = after[1:]  # the goodbye itself
            report.contact_after_withdrawal += len(after)
            for message in after[:3]:
                words = (message.get("text") or message.get("caption") or "")[:60]
                report.problems.append(f"sent after withdrawal: {words!r}")
        report.connector_alerts = len(sb.sent_to(CONNECTOR))
        report.spec_errors = len(sb.spec_errors)
        times = sorted(c.first_send for c in self.cycles if c.first_send is not None)
        report.restarts_with_a_message = len(times)
        if times:
            report.restart_to_message_median = round(statistics.median(times), 2)
            report.restart_to_message_p90 = round(times[int(0.9 * (len(times) - 1))], 2)


def _signature(message: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """What makes two copies of one message the same: the text and the buttons' data (of a
    message, or of the parameters of the request that sent it)."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    data = tuple(b.get("callback_data") or b.get("url") or "" for row in rows for b in row)
    return (message.get("text") or message.get("caption") or "", data)


ROWS = (
    ("answers given", "answers", None),
    ("answers lost", "answers_lost", "0"),
    ("answers stored twice", "answers_stored_twice", "0"),
    ("conversations that needed a nudge", "nudges_needed", "0"),
    ("messages doubled", "messages_doubled", "<= kills"),
    ("  most doubled in one kill", "doubled_max_per_kill", ""),
    ("  steps caught in flight by the kills", "steps_caught_in_flight", ""),
    ("  most in one chat at one kill", "steps_in_flight_max_per_chat_per_kill", "<= 1"),
    ("  other sends caught in flight (never sent again)", "others_caught_in_flight", ""),
    ("  doubled after a send timed out (no kill)", "doubled_after_a_timeout", ""),
    ("  sends left unknown", None, None),
    ("contact after withdrawal", "contact_after_withdrawal", "0"),
    ("failed updates", "failed_updates", "0"),
    ("connector alerts", "connector_alerts", "0"),
    ("spec errors", "spec_errors", "0"),
    ("broadcasts sent", "broadcasts", None),
    ("restart to next message, median (s)", "restart_to_message_median", None),
    ("restart to next message, p90 (s)", "restart_to_message_p90", None),
    ("run time (s)", "seconds", None),
)


def print_table(reports: list[Report]) -> None:
    """One column per database."""
    print()
    header = f"{'':38}" + "".join(f"{r.database:>14}" for r in reports) + "   goal"
    print(header)
    for label, name, goal in ROWS:
        if name is None:
            values = [f"{r.unknown_rows}" for r in reports]
        else:
            values = ["-" if getattr(r, name) is None else str(getattr(r, name)) for r in reports]
        print(f"{label:38}" + "".join(f"{v:>14}" for v in values) + f"   {goal or ''}")
    for r in reports:
        print(f"{r.database}: {r.cycles} kills, {r.partners} partners")
        if r.unknown_by_kind:
            print(f"  {r.database}: sends left unknown by kind: {r.unknown_by_kind}")
        for problem in r.problems:
            print(f"  {r.database}: {problem}")


def verdict(report: Report) -> bool:
    """Whether a run met every goal."""
    return (
        report.answers_lost == 0
        and report.answers_stored_twice == 0
        and report.nudges_needed == 0
        and report.messages_doubled <= report.cycles
        and report.steps_in_flight_max_per_chat_per_kill <= 1
        and report.contact_after_withdrawal == 0
        and report.failed_updates == 0
        and report.connector_alerts == 0
        and report.spec_errors == 0
        and not report.problems
    )


def keep_evidence(
    folder: Path, database: str, workdir: Path, sb: SandboxTelegram, soak: Soak
) -> None:
    """Keep what a failed goal is traced with: the bot's log, each chat as the partners saw
    it (every message, and what each partner did), the report, and the SQLite file."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(workdir / "companion.log", folder / f"soak-{database}.log")
    did = {p.user_id: [asdict(a) for a in p.actions] for p in soak.partners}
    chats = {
        str(chat_id): {"messages": sb.sent_to(chat_id), "actions": did.get(chat_id, [])}
        for chat_id in sorted(sb.chats)
    }
    (folder / f"soak-{database}-chats.json").write_text(json.dumps(chats, indent=1))
    (folder / f"soak-{database}-report.json").write_text(json.dumps(asdict(soak.report), indent=1))
    if database == "sqlite":
        shutil.copyfile(workdir / "soak.db", folder / "soak-sqlite.db")


async def main(args: argparse.Namespace) -> int:
    """Run the soak on each database asked for; exit status 1 if a goal was missed."""
    chosen = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    pg_url = args.pg_url or os.environ.get("SOAK_PG_URL")
    if "postgresql" in chosen and not pg_url:
        raise SystemExit("--pg-url (or SOAK_PG_URL) is needed for PostgreSQL")
    spec_path = find_spec_path()
    reports: list[Report] = []
    for database in chosen:
        with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
            workdir = Path(tmp)
            url = f"sqlite+aiosqlite:///{workdir / 'soak.db'}" if database == "sqlite" else pg_url
            assert url is not None
            spec = BotApiSpec.load(spec_path) if spec_path else None
            async with SandboxTelegram(spec=spec) as sb:
                print(f"--- {database}: {args.cycles} kills, {args.partners} partners", flush=True)
                soak = Soak(args, database, url, workdir)
                report = await soak.run(sb)
                if args.log_dir:
                    keep_evidence(args.log_dir, database, workdir, sb, soak)
            reports.append(report)
    print_table(reports)
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    return 0 if all(verdict(r) for r in reports) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100, help="SIGKILLs (default 100)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--pg-url", help="an EMPTY-able PostgreSQL database (or SOAK_PG_URL)")
    parser.add_argument("--partners", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the reports as JSON too")
    parser.add_argument(
        "--log-dir",
        type=Path,
        help="keep the evidence there: the bot's log, the chats, the report, the SQLite file",
    )
    parser.add_argument("--log-level", default="INFO", help="the bot's COMPANION_LOG_LEVEL")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
