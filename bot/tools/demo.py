"""``companion demo``: the whole bot against the sandbox Telegram, with a chat page in the browser.

One process runs it all on 127.0.0.1: the sandbox Telegram (which also serves the page in
``bot/sandbox/static/`` and its control API), the real bot long-polling it on a throwaway
SQLite database, and the demo's own few routes, added to the sandbox's web app:

* ``GET /demo/page.json``: the page's words (``prompts/<locale>/labels/demo.yaml``), the people
  to play, the bot's name and the study's time zone.
* ``GET /demo/personas``: the people, each with their chat's version and how many messages the
  bot has sent them (the page shows "2 new" beside someone who has news).
* ``POST /demo/personas``: another new person, with a fresh invite link.
* ``GET /demo/clock`` and ``POST /demo/clock`` ``{"step": "hour"|"day"|"week"|"next"}``: the
  demo time and the next planned item, and moving time forward.

The page talks only to these and to the sandbox's control API; the bot sees nothing but
Telegram. The demo starts with a small made-up study (:meth:`Demo.seed`): a connector on the
allow-list, three onboarded partners in different groups with a few weeks of completed
check-ins, a meeting in a few days and an invite link for a new person.

Time is the demo's clock (the process clock, :data:`storage.clock.CLOCK`, unless it is given
another), shared with the bot it runs. Moving it by an hour, a day or a week goes through the
scheduler (``Scheduler.advance_to``), one due moment at a time, as if the bot had been running
all along, and lets the sender deliver what each moment queued before moving on: reminders and
check-ins arrive in order, each dated at its own time, instead of being recorded as missed the
way a long downtime would leave them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
import tempfile
import webbrowser
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import User

from bot.partners.checkins import applies, manual_checkin_key
from bot.partners.invites import MAX_EXPIRES_DAYS, create_invites, deep_link
from bot.partners.people import enrol_allow_listed, new_pseudonym
from bot.protocol import CheckinDef, Group, StudyProtocol
from bot.runtime import Companion, ensure_schema
from bot.sandbox.server import SandboxTelegram
from bot.schedule.runner import next_due
from bot.settings import Settings
from prompts import Prompts
from storage.clock import CLOCK, Clock
from storage.models import (
    Answer,
    Checkin,
    CheckinStatus,
    ConsentDecision,
    Meeting,
    Occurrence,
    OccurrenceStatus,
    PartnerProfile,
    Person,
    PersonStatus,
    Role,
    TelegramIdentity,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
CONNECTOR_ID = 1001
FIRST_PARTNER_ID = 2001
FIRST_NEWCOMER_ID = 3001
FIRST_OTHER_ID = 4001
HISTORY_WEEKS = 5
MEETING_IN_DAYS = 3
MEETING_LOCAL_TIME = time(18, 0)
#: The demo answers quickly: the sandbox enforces no flood limits here, so the per-chat pace is
#: lifted (as the end-to-end tests do) and the scheduler looks for due items every second.
DEMO_CHAT_RATE = 20.0
DEMO_SCHEDULE_TICK = 1.0
POLL_WAIT_SECONDS = 25
#: Moving the clock stops at each due moment (at most this many per move) and gives the sender
#: up to this long to deliver what that moment queued.
MAX_STOPS = 500
DRAIN_SECONDS = 5.0
CLOCK_STEPS = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
# Confidence-like scale answers over the weeks (on a 1-5 scale), one pattern per partner, so
# /journey draws a line that rises, wobbles or dips.
_SCALE_PATTERNS = ((2, 2, 3, 3, 4), (3, 4, 3, 4, 4), (4, 3, 3, 2, 3))


class DemoPortBusyError(RuntimeError):
    """The port asked for cannot be listened on."""

    def __init__(self, port: int, reason: str) -> None:
        """Remember the port and why it failed."""
        super().__init__(f"port {port}: {reason}")
        self.port = port
        self.reason = reason


@dataclass
class Persona:
    """Someone the page can play: a partner, the connector or a new person."""

    user_id: int
    name: str
    kind: str  # "partner", "connector" or "newcomer"
    description: str
    hint: str
    invite_code: str | None = None
    invite_link: str | None = None
    timezone: str = "Europe/London"

    def to_json(self) -> dict[str, Any]:
        """The persona as the page reads it."""
        return {
            "user_id": self.user_id,
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "hint": self.hint,
            "invite_code": self.invite_code,
            "invite_link": self.invite_link,
            "timezone": self.timezone,
        }


def _names(prompts: Prompts, key: str) -> list[str]:
    return [n.strip() for n in prompts.label(f"demo.seed.{key}").split(",") if n.strip()]


def demo_settings(sandbox: SandboxTelegram, folder: Path) -> Settings:
    """Settings for the bot in the demo: the sandbox, a throwaway database, a fresh key."""
    return Settings(
        _env_file=None,
        telegram_bot_token=sandbox.token,
        telegram_api_base_url=sandbox.base_url,
        database_url=f"sqlite+aiosqlite:///{folder / 'demo.db'}",
        companion_data_dir=folder / "data",
        companion_connector_ids=[CONNECTOR_ID],
        companion_secret_key=secrets.token_urlsafe(32),
        companion_chat_rate=DEMO_CHAT_RATE,
        companion_schedule_tick=DEMO_SCHEDULE_TICK,
    )


def _local_at(day: datetime, at: time, zone: ZoneInfo) -> datetime:
    """``at`` on the local date of ``day`` in ``zone``, as an aware datetime."""
    local = day.astimezone(zone)
    return datetime.combine(local.date(), at, tzinfo=zone)


def _weekly_definition(protocol: StudyProtocol) -> CheckinDef:
    for checkin in protocol.checkins:
        if checkin.schedule == "weekly":
            return checkin
    return protocol.checkin(manual_checkin_key(protocol))


class Demo:
    """A running demo: the sandbox, the bot, the people to play and the clock control."""

    def __init__(
        self,
        folder: Path,
        *,
        port: int = DEFAULT_PORT,
        host: str = "127.0.0.1",
        clock: Clock = CLOCK,
        others: int = 0,
    ) -> None:
        """Prepare (nothing listens until :meth:`start`); data goes under ``folder``.

        ``others``: more made-up partners with history, beyond the three the page plays, so
        that ``/stats`` has groups of at least ``min_group_size`` to show (``--more-partners``).
        """
        self.folder = folder
        self.clock = clock
        self.others = others
        self.sandbox = SandboxTelegram(
            host=host, port=port, clock=self._clock_seconds, extra_routes=self._add_routes
        )
        self.companion: Companion | None = None
        self.personas: list[Persona] = []
        self._clock_lock = asyncio.Lock()
        self._newcomers = 0

    def _clock_seconds(self) -> float:
        """The demo clock as unix seconds (the sandbox dates messages with it)."""
        return self.clock.now().timestamp()

    @property
    def url(self) -> str:
        """The page's address."""
        return f"{self.sandbox.url}/"

    @property
    def bot(self) -> Companion:
        """The running bot (once :meth:`start` has finished)."""
        if self.companion is None:
            raise RuntimeError("the demo has not started")
        return self.companion

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the sandbox, seed the study, then start the bot against it."""
        self.clock.reset()
        try:
            await self.sandbox.start()
        except OSError as exc:
            raise DemoPortBusyError(self.sandbox.port, exc.strerror or str(exc)) from exc
        companion: Companion | None = None
        try:
            companion = Companion(demo_settings(self.sandbox, self.folder), clock=self.clock)
            await ensure_schema(companion.db)
            await self.seed(companion)
            await companion.start()
        except BaseException:
            if companion is not None:
                with contextlib.suppress(Exception):
                    await companion.stop()
            await self.sandbox.stop()
            raise
        self.companion = companion

    async def stop(self) -> None:
        """Stop the bot, then the sandbox (ending the page's long polls), and reset time."""
        if self.companion is not None:
            # Stopping cancels the bot's loops, which can interrupt a query (the scheduler
            # looks every second here); SQLAlchemy then logs, with a traceback, that it could
            # not roll back a connection that is being thrown away anyway. Nothing is lost
            # (nothing uncommitted is kept), so that line is kept off the demo's screen.
            pool_log = logging.getLogger("sqlalchemy.pool")
            level = pool_log.level
            pool_log.setLevel(logging.CRITICAL)
            try:
                with contextlib.suppress(Exception):
                    await self.companion.stop()
            finally:
                pool_log.setLevel(level)
            self.companion = None
        await self.sandbox.stop()
        self.clock.reset()

    # ------------------------------------------------------------------ the made-up study
    async def seed(self, companion: Companion) -> list[Persona]:
        """Create the connector, three partners with history, a meeting and an invite."""
        protocol, prompts = companion.protocol, companion.prompts
        now = self.clock.now()
        partner_names = _names(prompts, "partners")
        async with companion.db.transaction() as session:
            connector_name = prompts.label("demo.seed.connector")
            connector = await enrol_allow_listed(
                session,
                companion.settings,
                User(id=CONNECTOR_ID, first_name=connector_name, is_bot=False),
                CONNECTOR_ID,
            )
            self.personas.append(
                Persona(
                    user_id=CONNECTOR_ID,
                    name=connector_name,
                    kind="connector",
                    description=prompts.label("demo.page.kind_connector"),
                    hint=prompts.label("demo.page.hint_connector"),
                    timezone=protocol.groups[0].timezone,
                )
            )
            for index, name in enumerate(partner_names[:3]):
                group = protocol.groups[index % len(protocol.groups)]
                await self._seed_partner(
                    session,
                    companion,
                    user_id=FIRST_PARTNER_ID + index,
                    name=name,
                    group=group,
                    index=index,
                    now=now,
                )
                self.personas.append(
                    Persona(
                        user_id=FIRST_PARTNER_ID + index,
                        name=name,
                        kind="partner",
                        description=prompts.label("demo.page.kind_partner", group=group.name),
                        hint=prompts.label("demo.page.hint_partner"),
                        timezone=group.timezone,
                    )
                )
            other_names = _names(prompts, "others")
            for number in range(self.others):
                index = 3 + number
                name = other_names[number % len(other_names)]
                if number >= len(other_names):
                    name = f"{name} {number // len(other_names) + 1}"
                await self._seed_partner(
                    session,
                    companion,
                    user_id=FIRST_OTHER_ID + number,
                    name=name,
                    group=protocol.groups[index % len(protocol.groups)],
                    index=index,
                    now=now,
                )
                self.sandbox.user(FIRST_OTHER_ID + number, name)
            zone = protocol.groups[0].zone
            starts = _local_at(now + timedelta(days=MEETING_IN_DAYS), MEETING_LOCAL_TIME, zone)
            lengths = protocol.meetings.length_choices_minutes
            session.add(
                Meeting(
                    title=prompts.label("demo.seed.meeting_title"),
                    starts_at=starts,
                    length_minutes=lengths[min(1, len(lengths) - 1)],
                    timezone=protocol.groups[0].timezone,
                    place=prompts.label("demo.seed.meeting_place"),
                    groups=[],
                    created_by_person_id=connector.id if connector is not None else None,
                    created_at=now,
                    updated_at=now,
                )
            )
            self.personas.append(await self._newcomer(session, companion))
        for persona in self.personas:
            self.sandbox.user(persona.user_id, persona.name)
        return self.personas

    async def _seed_partner(
        self,
        session: AsyncSession,
        companion: Companion,
        *,
        user_id: int,
        name: str,
        group: Group,
        index: int,
        now: datetime,
    ) -> None:
        """One onboarded partner with ``HISTORY_WEEKS`` completed weekly check-ins."""
        protocol = companion.protocol
        zone = group.zone
        slot = protocol.checkin_slots[index % len(protocol.checkin_slots)]
        enrolled = now - timedelta(weeks=HISTORY_WEEKS, days=3)
        person = Person(pseudonym=new_pseudonym(), role=Role.PARTNER, status=PersonStatus.ACTIVE)
        person.created_at = enrolled
        session.add(person)
        await session.flush()
        session.add(
            TelegramIdentity(
                person_id=person.id,
                telegram_user_id=user_id,
                chat_id=user_id,
                first_name=name,
                preferred_name=name,
                language_code="en",
                created_at=enrolled,
            )
        )
        session.add(
            PartnerProfile(
                person_id=person.id,
                group_key=group.key,
                timezone=group.timezone,
                checkin_weekday=slot.weekday,
                checkin_time=slot.time,
                quiet_start=protocol.quiet_hours.start,
                quiet_end=protocol.quiet_hours.end,
                onboarding_step="done",
                enrolled_at=enrolled,
                onboarded_at=enrolled + timedelta(minutes=10),
            )
        )
        for position, item in enumerate(protocol.consent):
            granted = item.required or (index + position) % 3 != 0
            session.add(
                ConsentDecision(
                    person_id=person.id, item_key=item.key, granted=granted, decided_at=enrolled
                )
            )
        await self._seed_history(
            session,
            companion,
            person=person,
            index=index,
            zone=zone,
            weekday=slot.weekday,
            now=now,
        )

    async def _seed_history(
        self,
        session: AsyncSession,
        companion: Companion,
        *,
        person: Person,
        index: int,
        zone: ZoneInfo,
        weekday: int,
        now: datetime,
    ) -> None:
        """Completed weekly check-ins, one a week, with answers to every question asked."""
        protocol, prompts = companion.protocol, companion.prompts
        cipher = companion.settings.text_cipher()
        definition = _weekly_definition(protocol)
        reflections = list(prompts.labels("demo.seed.reflections").values())
        pattern = _SCALE_PATTERNS[index % len(_SCALE_PATTERNS)]
        slot_time = time.fromisoformat(
            protocol.checkin_slots[index % len(protocol.checkin_slots)].time
        )
        for week in range(HISTORY_WEEKS):
            day = now - timedelta(weeks=HISTORY_WEEKS - week)
            local = _local_at(day, slot_time, zone)
            due = local - timedelta(days=(local.weekday() - weekday) % 7)
            # The partners the page plays answered every week; the others miss one now and then.
            missed = index >= 3 and (index * 3 + week) % 5 == 0
            checkin = Checkin(
                occurrence_key=f"demo:{person.id}:{week}",
                person_id=person.id,
                checkin_key=definition.key,
                status=CheckinStatus.EXPIRED if missed else CheckinStatus.COMPLETED,
                due_at=due,
                opened_at=due,
                closes_at=due + timedelta(hours=definition.open_hours),
            )
            session.add(checkin)
            await session.flush()
            if missed:
                continue
            answers: dict[str, Answer] = {}
            at = due
            scales = 0
            for step, key in enumerate(definition.questions):
                question = protocol.question(key)
                if not applies(question, answers):
                    continue
                at += timedelta(minutes=2 + step)
                answer = Answer(
                    checkin_id=checkin.id,
                    person_id=person.id,
                    question_key=key,
                    answered_at=at,
                )
                if question.kind == "scale":
                    low, high = question.min or 1, question.max or 5
                    lift = (0, week % 2, 1)[scales % 3]  # each line of the chart its own shape
                    base = pattern[week % len(pattern)] + lift
                    answer.value_number = max(low, min(high, low + (base - 1) * (high - low) // 4))
                    scales += 1
                elif question.kind == "choice":
                    options = question.options
                    answer.value_choice = options[(index + week) % len(options)].key
                elif (week + index) % 3 == 2 and question.optional:
                    answer.skipped = True
                else:
                    text = reflections[(index * 2 + week) % len(reflections)]
                    answer.value_text, answer.text_encrypted = cipher.encrypt(text)
                session.add(answer)
                answers[key] = answer
            checkin.completed_at = at

    async def _newcomer(self, session: AsyncSession, companion: Companion) -> Persona:
        """A new person with a fresh partner invite (no group fixed: they choose one)."""
        prompts = companion.prompts
        names = _names(prompts, "newcomers")
        number = self._newcomers
        self._newcomers += 1
        name = names[number % len(names)]
        if number >= len(names):
            name = f"{name} {number // len(names) + 1}"
        [invite] = await create_invites(
            session, companion.protocol, role=Role.PARTNER, expires_days=MAX_EXPIRES_DAYS
        )
        return Persona(
            user_id=FIRST_NEWCOMER_ID + number,
            name=name,
            kind="newcomer",
            description=prompts.label("demo.page.kind_newcomer"),
            hint=prompts.label("demo.page.hint_newcomer"),
            invite_code=invite.code,
            invite_link=deep_link(self.sandbox.bot_username, invite.code),
            timezone=companion.protocol.groups[0].timezone,
        )

    async def add_newcomer(self) -> Persona:
        """Another new person with their own invite link."""
        companion = self.bot
        async with companion.db.transaction() as session:
            persona = await self._newcomer(session, companion)
        self.sandbox.user(persona.user_id, persona.name)
        self.personas.append(persona)
        return persona

    # ------------------------------------------------------------------ the clock
    async def _next_planned(
        self, after: datetime, until: datetime | None = None
    ) -> tuple[int, datetime, str, str] | None:
        """The earliest planned occurrence due after ``after``: (id, due, kind, name)."""
        query = (
            select(
                Occurrence.id,
                Occurrence.due_at,
                Occurrence.kind,
                TelegramIdentity.preferred_name,
                TelegramIdentity.first_name,
            )
            .outerjoin(TelegramIdentity, TelegramIdentity.person_id == Occurrence.person_id)
            .where(Occurrence.status == OccurrenceStatus.PLANNED, Occurrence.due_at > after)
            .order_by(Occurrence.due_at, Occurrence.id)
            .limit(1)
        )
        if until is not None:
            query = query.where(Occurrence.due_at <= until)
        async with self.bot.db.sessions() as session:
            row = (await session.execute(query)).first()
        if row is None:
            return None
        return int(row[0]), row[1], str(row[2]), str(row[3] or row[4] or "")

    async def _deliver(self) -> None:
        """Let the sender deliver what the last stop queued, so it is dated at its own time."""
        with contextlib.suppress(TimeoutError):
            await self.bot.sender.drain(timeout=DRAIN_SECONDS)

    async def _advance(self, target: datetime) -> None:
        """Move the clock to ``target`` through the scheduler, one due moment at a time.

        The scheduler handles each moment as if the bot had been running all along; between
        moments the sender delivers what was queued, so a check-in opened at 18:00 on Thursday
        reaches the chat dated Thursday 18:00, before time moves on.
        """
        scheduler = self.bot.scheduler
        last: datetime | None = None
        for _ in range(MAX_STOPS):
            async with self.bot.db.sessions() as session:
                upcoming = await next_due(session)
            if upcoming is None or upcoming > target or upcoming == last:
                break
            last = upcoming
            await scheduler.advance_to(upcoming)
            await self._deliver()
        await scheduler.advance_to(target)
        await self._deliver()

    async def move_clock(self, step: str) -> bool:
        """Move time forward by ``step`` (hour, day, week) or to the next planned item.

        Returns whether time moved (``next`` with nothing planned does not move it).
        """
        async with self._clock_lock:
            if step == "next":
                item = await self._next_planned(self.clock.now())
                if item is None:
                    return False
                target = item[1]
            elif step in CLOCK_STEPS:
                target = self.clock.now() + CLOCK_STEPS[step]
            else:
                raise ValueError(f"unknown clock step {step!r}")
            await self._advance(target)
            return True

    async def clock_state(self) -> dict[str, Any]:
        """The demo time and the next planned item, for the page."""
        now = self.clock.now()
        item = await self._next_planned(now)
        upcoming: dict[str, Any] | None = None
        if item is not None:
            _id, due, kind, name = item
            prompts = self.bot.prompts
            try:
                what = prompts.label(f"demo.page.next_{kind}", name=name)
            except LookupError:
                what = prompts.label("demo.page.next_other", name=name)
            upcoming = {"due_at": due.isoformat(), "kind": kind, "name": name, "what": what}
        return {
            "now": now.isoformat(),
            "offset_seconds": self.clock.offset.total_seconds(),
            "next": upcoming,
        }

    # ------------------------------------------------------------------ the page's routes
    def personas_state(self) -> list[dict[str, Any]]:
        """Every persona with their chat's version and the count of the bot's messages."""
        bot_id = self.sandbox.bot_user["id"]
        out = []
        for persona in self.personas:
            chat = self.sandbox.chats.get(persona.user_id)
            messages = list(chat.messages.values()) if chat else []
            row = persona.to_json()
            row["version"] = chat.version if chat else 0
            row["bot_messages"] = sum(1 for m in messages if m.get("from", {}).get("id") == bot_id)
            out.append(row)
        return out

    def page_data(self) -> dict[str, Any]:
        """What the page needs to start: its words, the people, the bot, the time zone."""
        companion = self.bot
        return {
            "lang": companion.protocol.study.locale,
            "strings": companion.prompts.labels("demo.page"),
            "personas": self.personas_state(),
            "bot": {
                "name": self.sandbox.bot_user["first_name"],
                "username": self.sandbox.bot_username,
            },
            "timezone": companion.protocol.groups[0].timezone,
            "poll_seconds": POLL_WAIT_SECONDS,
        }

    def _add_routes(self, app: web.Application) -> None:
        """Register the demo's routes on the sandbox's web app."""

        def ready() -> web.Response | None:
            if self.companion is None:
                return web.json_response({"error": "starting"}, status=503)
            return None

        async def page(_request: web.Request) -> web.StreamResponse:
            return ready() or web.json_response(self.page_data())

        async def personas(_request: web.Request) -> web.StreamResponse:
            return ready() or web.json_response(self.personas_state())

        async def add_persona(_request: web.Request) -> web.StreamResponse:
            waiting = ready()
            if waiting is not None:
                return waiting
            persona = await self.add_newcomer()
            return web.json_response(persona.to_json())

        async def clock(_request: web.Request) -> web.StreamResponse:
            return ready() or web.json_response(await self.clock_state())

        async def move(request: web.Request) -> web.StreamResponse:
            waiting = ready()
            if waiting is not None:
                return waiting
            try:
                body = await request.json()
                step = str(body.get("step")) if isinstance(body, dict) else ""
            except ValueError:
                step = ""
            if step not in (*CLOCK_STEPS, "next"):
                return web.json_response(
                    {"error": "step must be hour, day, week or next"}, status=400
                )
            moved = await self.move_clock(step)
            return web.json_response({**await self.clock_state(), "moved": moved})

        app.router.add_get("/demo/page.json", page)
        app.router.add_get("/demo/personas", personas)
        app.router.add_post("/demo/personas", add_persona)
        app.router.add_get("/demo/clock", clock)
        app.router.add_post("/demo/clock", move)


@contextlib.asynccontextmanager
async def demo_running(
    port: int = DEFAULT_PORT, folder: Path | None = None, *, others: int = 0
) -> AsyncIterator[Demo]:
    """A started demo (in a throwaway folder unless ``folder``), stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="companion-demo-", ignore_cleanup_errors=True) as tmp:
        demo = Demo(folder or Path(tmp), port=port, others=others)
        await demo.start()
        try:
            yield demo
        finally:
            await demo.stop()


def _can_open_browser() -> bool:
    """Whether a graphical browser is likely (a console one would take over the terminal)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open_browser(url: str) -> None:
    with contextlib.suppress(webbrowser.Error, OSError):
        webbrowser.open(url, new=2)


async def run_demo(
    port: int = DEFAULT_PORT, *, open_browser: bool = True, others: int = 0
) -> None:
    """Run the demo until SIGINT or SIGTERM, printing the page's address."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with demo_running(port, others=others) as demo:
        prompts = demo.bot.prompts
        print(
            prompts.text(
                "cli/demo",
                url=demo.url,
                connector=prompts.label("demo.seed.connector"),
                partners=[p.name for p in demo.personas if p.kind == "partner"],
                folder=demo.folder,
            ),
            flush=True,
        )
        if open_browser and _can_open_browser():
            await asyncio.to_thread(_open_browser, demo.url)
        await stop.wait()
    print(prompts.text("cli/demo_stopped"), flush=True)
