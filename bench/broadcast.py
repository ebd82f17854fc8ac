"""Broadcast: one broadcast to 2,000 partners against a sandbox enforcing Telegram's limits.

The sandbox runs in its own process (``python -m bot.sandbox --enforce-limits``, 30/s
overall, 1/s per chat). 2,000 partners are enrolled in a fresh SQLite database, 50 of them
have blocked the bot, and one broadcast (``bot.connector.broadcast.send``, as /broadcast and
``companion broadcast send`` do) is sent by the real outbox sender. Three bursts of 429s
(``retry_after`` 1 s) are injected through the sandbox's control API (``/control/faults``)
while it goes out. Measured: the sending rate (against the configured global rate, with and
without the time ``retry_after`` asked us to wait), requests made while a ``retry_after``
held, every reachable partner reached exactly once, the report's counts against what the
sandbox delivered, and this process's RSS during the broadcast.

Budget (issue 11): rate >= 0.95 of the configured global rate, 0 requests while a
``retry_after`` holds, every reachable partner once, report == delivered.

Usage: python bench/broadcast.py [--partners N] [--blocked B] [--rate R]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import Bot

from bench._sandbox import remote_sandbox
from bot.connector import broadcast as broadcasts
from bot.partners.people import new_pseudonym
from bot.partners.reachability import unreachable_handler
from bot.protocol import load_protocol
from bot.runtime import prepare_to_serve
from bot.transport.http import AiohttpRequest
from bot.transport.ratelimit import SendLimiter
from bot.transport.sender import OutboxSender
from prompts import DEFAULT_STUDY_PATH, Prompts
from storage.clock import utcnow
from storage.db import Database
from storage.migrate import upgrade
from storage.models import PartnerProfile, Person, Role, TelegramIdentity

BUDGET = 0.95
FIRST_ID = 600_000
RETRY_AFTER = 1
BURSTS_AT = (0.25, 0.5, 0.75)  # of the partners reached
BURST_SIZE = 3


def rss_mb() -> float:
    """This process's resident memory, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def enrol_partners(db: Database, count: int) -> None:
    """``count`` onboarded partners with no quiet hours, in one transaction."""
    now = utcnow()
    async with db.transaction() as session:
        people = [Person(pseudonym=new_pseudonym(), role=Role.PARTNER) for _ in range(count)]
        session.add_all(people)
        await session.flush()
        for i, person in enumerate(people):
            user = FIRST_ID + i
            session.add(
                TelegramIdentity(
                    person_id=person.id,
                    telegram_user_id=user,
                    chat_id=user,
                    first_name=f"P{i}",
                    preferred_name=f"P{i}",
                )
            )
            session.add(
                PartnerProfile(
                    person_id=person.id,
                    group_key="north",
                    quiet_start="00:00",
                    quiet_end="00:00",
                    onboarding_step="done",
                    onboarded_at=now,
                )
            )


async def run(partners: int, blocked: int, rate: float) -> int:
    """Run the benchmark; return the process exit code."""
    prepare_to_serve()  # as `companion run` does
    protocol = load_protocol(DEFAULT_STUDY_PATH)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade(url)
        db = Database(url)
        try:
            async with remote_sandbox("--enforce-limits") as sb:
                users = range(FIRST_ID, FIRST_ID + partners)
                await sb.send_texts(users, "hi")  # makes each chat in the sandbox
                for user in users[:blocked]:
                    r = await sb.client.post(f"{sb.url}/control/users/{user}/block", json={})
                    r.raise_for_status()
                await enrol_partners(db, partners)
                before = len((await sb.client.get(f"{sb.url}/control/requests")).json())
                async with db.transaction() as session:
                    sent = await broadcasts.send(
                        session,
                        protocol,
                        Prompts(),
                        audience=broadcasts.Audience(),
                        content=broadcasts.Content("text", "News for {name}: thank you."),
                        urgent=False,
                        by_person_id=None,
                        now=utcnow(),
                    )
                limiter = SendLimiter(rate, 1.0, 20)
                request = AiohttpRequest(connection_pool_size=64, read_timeout=10.0)
                rss: list[float] = [rss_mb()]
                async with Bot(token=sb.token, base_url=sb.base_url, request=request) as tg:
                    sender = OutboxSender(
                        db,
                        tg,
                        limiter,
                        on_unreachable=unreachable_handler(Prompts()),
                    )
                    started = time.perf_counter()
                    started_wall = time.time()
                    task = asyncio.create_task(sender.run())
                    bursts = [int(f * (partners - blocked)) for f in BURSTS_AT]
                    try:
                        for target in bursts:
                            await sb.wait_for("sendMessage", target, timeout=600)
                            rss.append(rss_mb())
                            r = await sb.client.post(
                                f"{sb.url}/control/faults",
                                json={
                                    "fail_next": {
                                        "n": BURST_SIZE,
                                        "status": 429,
                                        "method": "sendMessage",
                                        "retry_after": RETRY_AFTER,
                                    }
                                },
                            )
                            r.raise_for_status()
                        drain = asyncio.create_task(sender.drain(timeout=600))
                        while not drain.done():
                            rss.append(rss_mb())
                            await asyncio.sleep(0.5)
                        await drain
                    finally:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                    seconds = time.perf_counter() - started
                    ended_wall = time.time()
                async with db.sessions() as session:
                    report = await broadcasts.report(session, sent.id, now=utcnow())
                calls = (await sb.client.get(f"{sb.url}/control/requests")).json()[before:]
        finally:
            await db.dispose()

    sends = [c for c in calls if c["method"] == "sendMessage"]
    ok = [c for c in sends if c["status"] == 200]
    throttled = [c for c in sends if c["status"] == 429]
    during_hold = 0
    for hit in throttled:
        chat = hit["params"].get("chat_id")
        holds_all = sum(1 for t in throttled if abs(t["time"] - hit["time"]) < 1.0) > 1
        until = hit["time"] + RETRY_AFTER
        during_hold += sum(
            1
            for c in sends
            if hit["time"] < c["time"] < until
            and c is not hit
            and c["status"] != 429
            and (holds_all or str(c["params"].get("chat_id")) == str(chat))
        )
    per_chat: dict[str, int] = {}
    for c in ok:
        key = str(c["params"].get("chat_id"))
        per_chat[key] = per_chat.get(key, 0) + 1
    reachable = partners - blocked
    once = len(per_chat) == reachable and all(n == 1 for n in per_chat.values())
    held = len(throttled) // BURST_SIZE * RETRY_AFTER
    achieved = len(ok) / seconds
    achieved_active = len(ok) / max(seconds - held, 1e-9)
    assert report is not None
    counts = report.counts
    report_ok = counts.delivered == len(ok) and counts.unreachable == blocked
    report_ok = report_ok and counts.total == partners
    print(f"partners:            {partners} ({blocked} blocked the bot)")
    print(f"seconds:             {seconds:.2f} ({held} s of them asked to wait by 429s)")
    print(f"delivered (sandbox): {len(ok)}; 429 answers: {len(throttled)}")
    print(f"configured rate:     {rate:.2f} msg/s")
    print(f"rate, whole run:     {achieved:.2f} msg/s ({achieved / rate:.3f})")
    print(f"rate, outside holds: {achieved_active:.2f} msg/s ({achieved_active / rate:.3f})")
    print(f"requests during a retry_after: {during_hold} (budget 0)")
    times = sorted(c["time"] for c in sends)
    gaps = sorted(b - a for a, b in itertools.pairwise(times) if b - a < 0.5)  # not the holds
    if gaps:
        print(
            f"gaps between requests: median {1000 * statistics.median(gaps):.1f} ms, "
            f"p90 {1000 * gaps[int(0.9 * (len(gaps) - 1))]:.1f} ms "
            f"(the rate's interval: {1000 / rate:.1f} ms); requests outside holds: "
            f"{len(sends) / max(seconds - held, 1e-9) / rate:.3f} of the rate"
        )
    if times:
        holds = [b - a for a, b in itertools.pairwise(times) if b - a >= 0.5]
        print(
            f"first request {times[0] - started_wall:.2f} s after the start, last "
            f"{ended_wall - times[-1]:.2f} s before the end; pauses around the 429s: "
            + ", ".join(f"{h:.2f} s" for h in holds)
            + f" (each asked for {RETRY_AFTER} s)"
        )
    print(f"every reachable partner exactly once: {once}")
    print(
        f"report: delivered {counts.delivered}, unreachable {counts.unreachable}, "
        f"failed {counts.failed}, unknown {counts.unknown}, waiting {counts.waiting}, "
        f"cancelled {counts.cancelled}; equals the sandbox: {report_ok}"
    )
    print(f"RSS during the broadcast: max {max(rss):.0f} MB (start {rss[0]:.0f} MB)")
    print(f"broadcast ratio: {achieved_active / rate:.2f} (budget >= {BUDGET:.2f})")
    good = achieved_active / rate >= BUDGET and during_hold == 0 and once and report_ok
    return 0 if good else 1


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=2000)
    parser.add_argument("--blocked", type=int, default=50)
    parser.add_argument("--rate", type=float, default=30.0, help="configured global rate")
    args = parser.parse_args()
    if not 0 <= args.blocked < args.partners or args.rate <= 0:
        parser.error("need 0 <= --blocked < --partners and a positive --rate")
    logging.basicConfig(level=logging.ERROR)
    sys.exit(asyncio.run(run(args.partners, args.blocked, args.rate)))


if __name__ == "__main__":
    main()
