"""Outbound throughput: a wave of outbox messages against a sandbox enforcing Telegram's limits.

A sandbox Telegram enforcing Telegram's flood limits (30/s overall, 1/s per chat, 20/min per
group) and a fresh SQLite database (migrated, ``synchronous=FULL``) in a temporary folder; N
messages are queued in the outbox to many private chats, then the real outbox sender delivers
them through the real python-telegram-bot HTTP stack. Measured from the sender's start until
the outbox is drained. The sandbox runs in this process by default (its flood-control counters
are read directly); ``--sandbox-process`` runs it as ``python -m bot.sandbox --enforce-limits``
instead, as ``bench/inbound.py`` does, and reads them over its control API.

Budget (DESIGN.md): achieved rate >= 90% of the configured global rate, and no 429.

Usage: python bench/outbound.py [--messages N] [--rate R] [--chats C] [--sandbox-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot

from bench._sandbox import RemoteSandbox, remote_sandbox
from bot.partners.reachability import unreachable_handler
from bot.sandbox import FloodLimits, SandboxTelegram
from bot.settings import Settings
from bot.transport.http import AiohttpRequest
from bot.transport.outbox import enqueue
from bot.transport.ratelimit import SendLimiter
from bot.transport.sender import OutboxSender
from prompts import Prompts
from storage.db import Database
from storage.migrate import upgrade
from storage.models import OutboxMessage, OutboxStatus

BUDGET = 0.90


async def no_staff(_session: AsyncSession) -> list[int]:
    """Nobody to tell: this run has no unreachable partners."""
    return []


class _Target:
    """The sandbox, in this process or in its own, seen the same way by the benchmark."""

    token: str
    base_url: str

    async def add_users(self, chat_ids: list[int]) -> None:
        raise NotImplementedError

    async def texts(self, chat_id: int) -> list[str | None]:
        raise NotImplementedError

    async def counts(self) -> tuple[int, int]:
        """(429 responses, flood violations)."""
        raise NotImplementedError


class _InProcess(_Target):
    def __init__(self, sb: SandboxTelegram) -> None:
        self.sb, self.token, self.base_url = sb, sb.token, sb.base_url

    async def add_users(self, chat_ids: list[int]) -> None:
        for chat in chat_ids:
            self.sb.user(chat)

    async def texts(self, chat_id: int) -> list[str | None]:
        return [m.get("text") for m in self.sb.sent_to(chat_id)]

    async def counts(self) -> tuple[int, int]:
        return self.sb.count_status(429), len(self.sb.flood_violations)


class _Remote(_Target):
    def __init__(self, remote: RemoteSandbox) -> None:
        self.remote, self.token, self.base_url = remote, remote.token, remote.base_url

    async def add_users(self, chat_ids: list[int]) -> None:
        await self.remote.send_texts(range(chat_ids[0], chat_ids[-1] + 1), "hi")

    async def texts(self, chat_id: int) -> list[str | None]:
        response = await self.remote.client.get(
            f"{self.remote.url}/control/chats/{chat_id}/messages"
        )
        response.raise_for_status()
        return [m.get("text") for m in response.json()]

    async def counts(self) -> tuple[int, int]:
        state = await self.remote.state()
        return int(state["too_many_requests"]), len(state["flood_violations"])


@asynccontextmanager
async def _sandbox(in_process: bool, limits: FloodLimits) -> AsyncIterator[_Target]:
    if in_process:
        async with SandboxTelegram(limits=limits) as sb:
            yield _InProcess(sb)
        return
    if limits.global_per_second != FloodLimits().global_per_second:
        raise SystemExit("--rate above 30 cannot use --sandbox-process (its CLI enforces 30/s)")
    async with remote_sandbox("--enforce-limits") as remote:
        yield _Remote(remote)


async def run(messages: int, rate: float, chats: int, in_process: bool) -> int:
    """Run the benchmark; return the process exit code."""
    defaults = Settings(_env_file=None)
    limits = FloodLimits(
        enforce=True,
        global_per_second=max(30, math.ceil(rate)),
        per_chat_per_second=1,
        group_per_minute=20,
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade(url)
        db = Database(url)
        try:
            async with _sandbox(in_process, limits) as sb:
                chat_ids = [500_000 + i for i in range(chats)]
                await sb.add_users(chat_ids)
                expected: dict[int, list[str | None]] = defaultdict(list)
                async with db.transaction() as session:
                    for i in range(messages):
                        chat = chat_ids[i % chats]
                        text = f"bench message {i}"
                        expected[chat].append(text)
                        await enqueue(
                            session, key=f"bench:{i}", chat_id=chat, text=text, kind="broadcast"
                        )
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
                        on_unreachable=unreachable_handler(Prompts(), staff_chats=no_staff),
                    )
                    started = time.perf_counter()
                    cpu_before = time.process_time()
                    task = asyncio.create_task(sender.run())
                    try:
                        await sender.drain(timeout=messages / rate * 3 + 30)
                    finally:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                    seconds = time.perf_counter() - started
                    cpu = time.process_time() - cpu_before
                async with db.sessions() as session:
                    sent = await session.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status == OutboxStatus.SENT)
                    )
                delivered_ok = True
                for chat, texts in expected.items():
                    delivered_ok = delivered_ok and await sb.texts(chat) == texts
                too_many, violations = await sb.counts()
        finally:
            await db.dispose()

    achieved = messages / seconds
    ratio = achieved / rate
    where = "this process" if in_process else "its own process"
    print(f"messages:          {messages} to {chats} chats (sent and recorded: {sent})")
    print(f"sandbox:           in {where}, limits enforced")
    print(f"seconds:           {seconds:.2f}")
    print(f"achieved rate:     {achieved:.2f} msg/s")
    print(f"configured rate:   {rate:.2f} msg/s")
    print(f"ratio:             {ratio:.3f} (budget >= {BUDGET:.2f})")
    print(f"CPU in this process: {cpu / messages * 1000:.1f} ms per message ({cpu:.1f} s)")
    print(f"429 responses:     {too_many} (budget 0)")
    print(f"flood violations:  {violations}")
    print(f"all delivered once, in order: {delivered_ok}")
    print(f"outbound ratio: {ratio:.2f} (budget >= {BUDGET:.2f})")
    ok = ratio >= BUDGET and too_many == 0 and violations == 0 and delivered_ok
    ok = ok and sent == messages
    return 0 if ok else 1


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages to send")
    parser.add_argument(
        "--rate",
        type=float,
        default=Settings(_env_file=None).companion_global_rate,
        help="configured global rate (COMPANION_GLOBAL_RATE), messages per second",
    )
    parser.add_argument("--chats", type=int, default=500, help="distinct private chats")
    parser.add_argument(
        "--sandbox-process",
        action="store_true",
        help="run the sandbox in its own process (default: in this process)",
    )
    args = parser.parse_args()
    if args.messages <= 0 or args.rate <= 0 or args.chats <= 0:
        parser.error("--messages, --rate and --chats must be positive")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    chats = min(args.chats, args.messages)
    sys.exit(asyncio.run(run(args.messages, args.rate, chats, not args.sandbox_process)))


if __name__ == "__main__":
    main()
