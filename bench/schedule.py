"""The schedule at scale: 10,000 partners with weekly check-ins in mixed time zones.

A fresh database (SQLite in a temporary folder by default, or ``--database-url``) gets N
onboarded partners spread over eight IANA zones and the protocol's check-in slots. Then:

1. **Planning.** The first full pass (it writes every partner's next two weeks) and a steady
   pass (nothing to change), each timed, against a baseline measured in the same run: a bare
   read of the same partner rows, the least any planner must do. Process memory (RSS) is read
   before and after.
2. **A wave.** ``--wave`` partners (mixed zones; by default a quarter of them, as if everyone
   on one of the four slots lived in one zone) all have their check-in at the same instant.
   The clock moves to it; the real due runner opens every check-in while the real outbox
   sender delivers them through python-telegram-bot to a sandbox that enforces Telegram's
   limits. The achieved rate is compared with the configured global rate.

Budget (issue 4): the wave at >= 90% of the configured rate, with no 429.

Usage: python bench/schedule.py [--partners N] [--wave W] [--rate R] [--database-url URL]
       [--sandbox-in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text
from telegram import Bot

from bench._sandbox import remote_sandbox
from bot.app import build_scheduler
from bot.partners.reachability import unreachable_handler
from bot.protocol import load_protocol
from bot.runtime import GIL_SWITCH_INTERVAL
from bot.sandbox import FloodLimits, SandboxTelegram
from bot.schedule import planner
from bot.settings import DEFAULT_STUDY_PATH, Settings
from bot.transport.http import AiohttpRequest
from bot.transport.ratelimit import SendLimiter
from bot.transport.sender import OutboxSender
from prompts import Prompts
from storage.clock import CLOCK, utcnow
from storage.db import Database, is_sqlite
from storage.migrate import upgrade
from storage.models import (
    Base,
    Checkin,
    Occurrence,
    OutboxMessage,
    OutboxStatus,
    PartnerProfile,
    Person,
    Role,
    TelegramIdentity,
)

BUDGET = 0.90
ZONES = [
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Africa/Lagos",
    "Pacific/Auckland",
]
FIRST_CHAT = 3_000_000


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def seed(db: Database, partners: int, wave: int, wave_at_minute: int) -> datetime:
    """N onboarded partners; the first ``wave`` have their check-in at the wave's instant."""
    protocol = load_protocol(DEFAULT_STUDY_PATH)
    slots = protocol.checkin_slots
    now = utcnow()
    wave_instant = (now + timedelta(minutes=wave_at_minute)).replace(second=0, microsecond=0)
    people, identities, profiles = [], [], []
    for i in range(partners):
        zone = ZONES[i % len(ZONES)]
        if i < wave:
            local = wave_instant.astimezone(ZoneInfo(zone))
            weekday, hhmm = local.weekday(), f"{local:%H:%M}"
        else:
            slot = slots[i % len(slots)]
            weekday, hhmm = slot.weekday, slot.time
        person_id = i + 1
        people.append(
            {
                "id": person_id,
                "pseudonym": f"B-{i:07d}",
                "role": Role.PARTNER,
                "status": "active",
                "created_at": now,
            }
        )
        identities.append(
            {
                "person_id": person_id,
                "telegram_user_id": FIRST_CHAT + i,
                "chat_id": FIRST_CHAT + i,
                "first_name": f"P{i}",
                "preferred_name": f"P{i}",
                "created_at": now,
            }
        )
        profiles.append(
            {
                "person_id": person_id,
                "group_key": ("north", "south", "online")[i % 3],
                "timezone": zone,
                "checkin_weekday": weekday,
                "checkin_time": hhmm,
                # No quiet hours: the wave must not depend on the time of day it runs.
                "quiet_start": "00:00",
                "quiet_end": "00:00",
                "onboarding_step": "done",
                "enrolled_at": now,
                "onboarded_at": now,
            }
        )
    async with db.transaction() as session:
        for table, rows in (
            (Person, people),
            (TelegramIdentity, identities),
            (PartnerProfile, profiles),
        ):
            for start in range(0, len(rows), 2000):
                await session.execute(insert(table), rows[start : start + 2000])
        if not is_sqlite(str(db.url)):
            await session.execute(text("SELECT setval('person_id_seq', :n)"), {"n": partners})
    return wave_instant


async def timed_read(db: Database) -> float:
    """Baseline: read every partner's schedule columns, as the planner must."""
    started = time.perf_counter()
    async with db.sessions() as session:
        rows = await planner.load_partners(session)
    assert rows
    return time.perf_counter() - started


async def reset_postgres(db: Database) -> None:
    """Empty every table of a PostgreSQL database given with --database-url."""
    async with db.transaction() as session:
        names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
        await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


async def run(partners: int, wave: int, rate: float, url: str | None, *, in_process: bool) -> int:
    """Run both parts; return the process exit code."""
    protocol = load_protocol(DEFAULT_STUDY_PATH)
    # Weekly check-ins only: the monthly reflection would add a second wave on the 1st.
    protocol = protocol.model_copy(
        update={"checkins": [c for c in protocol.checkins if c.schedule != "monthly"]}
    )
    prompts = Prompts(protocol.study.locale)
    defaults = Settings(_env_file=None)
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade(url)
        db = Database(url)
        try:
            if not is_sqlite(url):
                await reset_postgres(db)
            rss_start = rss_mb()
            wave_at = await seed(db, partners, wave, wave_at_minute=2)
            baseline = min([await timed_read(db) for _ in range(3)])
            scheduler = build_scheduler(db, protocol, prompts, horizon=planner.DEFAULT_HORIZON)
            started = time.perf_counter()
            first = await scheduler.plan()
            first_seconds = time.perf_counter() - started
            steady_runs = []
            for _ in range(3):
                started = time.perf_counter()
                steady = await scheduler.plan()
                steady_runs.append(time.perf_counter() - started)
            steady_seconds = min(steady_runs)
            rss_planned = rss_mb()
            async with db.sessions() as session:
                planned = await session.scalar(select(func.count()).select_from(Occurrence))

            limits = FloodLimits(enforce=True, global_per_second=max(30, int(rate + 0.999)))
            async with _sandbox(in_process, limits, wave) as sb:
                limiter = SendLimiter(
                    rate, defaults.companion_chat_rate, defaults.companion_group_per_minute
                )
                request = AiohttpRequest(
                    connection_pool_size=64, read_timeout=10.0
                )  # as the bot sends
                async with Bot(token=sb.token, base_url=sb.base_url, request=request) as tg:
                    sender = OutboxSender(
                        db,
                        tg,
                        limiter,
                        on_unreachable=unreachable_handler(prompts, staff_chats=no_staff),
                    )
                    scheduler.on_queued = sender.wake
                    scheduler.queue_limit = int(rate * 10)  # as bot/runtime.py sets it
                    task = asyncio.create_task(sender.run())
                    try:
                        started = time.perf_counter()
                        CLOCK.advance_to(wave_at)
                        due = await scheduler.run_due(pace=True)
                        due_seconds = time.perf_counter() - started
                        await sender.drain(timeout=wave / rate * 3 + 60)
                        wave_seconds = time.perf_counter() - started
                    finally:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                too_many, violations, delivered = await sb.counts()
            async with db.sessions() as session:
                opened = await session.scalar(select(func.count()).select_from(Checkin))
                sent = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status == OutboxStatus.SENT)
                )
            rss_end = rss_mb()
        finally:
            await db.dispose()
            CLOCK.reset()

    achieved = wave / wave_seconds
    ratio = achieved / rate
    database = "SQLite (temporary file)" if is_sqlite(url) else "PostgreSQL"
    print(f"database:              {database}")
    print(f"partners:              {partners} in {len(ZONES)} time zones")
    print(f"occurrences planned:   {planned} ({first.added} added by the first pass)")
    print(f"baseline (bare read):  {baseline * 1000:.0f} ms")
    print(
        f"first pass:            {first_seconds * 1000:.0f} ms "
        f"({first_seconds / baseline:.1f}x the bare read)"
    )
    print(
        f"steady pass:           {steady_seconds * 1000:.0f} ms "
        f"({steady_seconds / baseline:.1f}x the bare read; {steady.added} added)"
    )
    print(
        f"memory (RSS):          {rss_start:.0f} MB at start, {rss_planned:.0f} MB after "
        f"planning, {rss_end:.0f} MB at the end"
    )
    where = "this process" if in_process else "its own process"
    print(f"sandbox:               in {where}, Telegram's limits enforced")
    print(f"wave:                  {wave} check-ins due at one instant, {opened} opened")
    print(f"due runner:            {due_seconds:.2f} s to open them all, paced ({due.done} done)")
    print(f"wave sent in:          {wave_seconds:.2f} s ({sent} messages sent)")
    print(f"achieved rate:         {achieved:.2f} msg/s")
    print(f"configured rate:       {rate:.2f} msg/s")
    print(f"429 responses:         {too_many} (budget 0); flood violations: {violations}")
    print(f"delivered to:          {delivered} of {wave} partners")
    print(f"schedule wave ratio: {ratio:.2f} (budget >= {BUDGET:.2f})")
    ok = ratio >= BUDGET and too_many == 0 and violations == 0 and delivered == wave
    return 0 if ok else 1


@asynccontextmanager
async def _sandbox(in_process: bool, limits: FloodLimits, users: int) -> AsyncIterator[Any]:
    """The sandbox in this process, or (default) in its own, as Telegram would be."""
    if in_process:
        async with SandboxTelegram(limits=limits) as sb:
            for i in range(users):
                sb.user(FIRST_CHAT + i)

            async def counts() -> tuple[int, int, int]:
                delivered = sum(1 for i in range(users) if sb.sent_to(FIRST_CHAT + i))
                return sb.count_status(429), len(sb.flood_violations), delivered

            yield SimpleNamespace(token=sb.token, base_url=sb.base_url, counts=counts)
        return
    if limits.global_per_second != FloodLimits().global_per_second:
        raise SystemExit("--rate above 30 needs --sandbox-in-process (its CLI enforces 30/s)")
    async with remote_sandbox("--enforce-limits") as remote:
        await remote.send_texts(range(FIRST_CHAT, FIRST_CHAT + users), "hi")

        async def remote_counts() -> tuple[int, int, int]:
            state = await remote.state()
            too_many = int(state["too_many_requests"])
            sends = int(state["requests_by_method"].get("sendMessage", 0))
            return too_many, len(state["flood_violations"]), sends - too_many

        yield SimpleNamespace(token=remote.token, base_url=remote.base_url, counts=remote_counts)


async def no_staff(_session: object) -> list[int]:
    """Nobody to tell: nobody in this run is unreachable."""
    return []


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument(
        "--wave",
        type=int,
        default=0,
        help="check-ins due at one instant (default: partners / check-in slots, as if every "
        "partner of one slot were in one zone)",
    )
    parser.add_argument(
        "--sandbox-in-process",
        action="store_true",
        help="run the sandbox in this process (default: its own process, as Telegram is)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=Settings(_env_file=None).companion_global_rate,
        help="configured global rate (COMPANION_GLOBAL_RATE), messages per second",
    )
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # As the running bot does (bot/runtime.py): database results wait for the GIL otherwise.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    wave = args.wave or args.partners // len(load_protocol(DEFAULT_STUDY_PATH).checkin_slots)
    if not 0 < wave <= args.partners:
        parser.error("--wave must be between 1 and --partners")
    sys.exit(
        asyncio.run(
            run(
                args.partners,
                wave,
                args.rate,
                args.database_url,
                in_process=args.sandbox_in_process,
            )
        )
    )


if __name__ == "__main__":
    main()
