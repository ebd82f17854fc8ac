"""Inbound throughput: a round trip through the durable inbox against a bare echo bot.

Both bots run in this process against the same sandbox Telegram (in its own process). Each of
N people sends one message; a bot is done when all N replies have reached the sandbox.

* baseline: a bare python-telegram-bot echo bot (its own Updater, replies straight away);
* companion: our whole path - getUpdates, inbox commit, handler in one transaction with the
  person lookup and the outbox row, inbox row marked done, reply sent by the outbox sender and
  recorded as sent (SQLite, synchronous=FULL).

The sending limits are raised for this run (COMPANION_GLOBAL_RATE) so that what is measured is
our own overhead, not Telegram's 30 messages a second. Budget: ratio >= 0.5.

Usage: python bench/inbound.py [--updates N] [--database-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bench._sandbox import RemoteSandbox, remote_sandbox
from bot.logs import quiet_http_libraries
from bot.people import new_pseudonym
from bot.runtime import Companion
from bot.settings import Settings
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Person, Role, TelegramIdentity

BUDGET = 0.5


async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the same text."""
    if update.message is not None and update.message.text is not None:
        await update.message.reply_text(update.message.text)


async def run_echo(sb: RemoteSandbox, users: range) -> float:
    """Seconds for a bare echo bot to answer one message from each of ``users``."""
    app: Application = ApplicationBuilder().token(sb.token).base_url(sb.base_url).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    before = await sb.sent_messages()
    await sb.send_texts(users, "hello")
    async with app:
        assert app.updater is not None
        started = time.perf_counter()
        await app.updater.start_polling(poll_interval=0.0, timeout=10)
        await app.start()
        await sb.wait_for_sent(before + len(users))
        elapsed = time.perf_counter() - started
        await app.updater.stop()
        await app.stop()
    return elapsed


async def enrol(database_url: str, users: range) -> None:
    """Enrol ``users`` as partners directly in the database."""
    db = Database(database_url)
    async with db.transaction() as session:
        for user_id in users:
            person = Person(pseudonym=new_pseudonym(), role=Role.PARTNER)
            session.add(person)
            await session.flush()
            session.add(
                TelegramIdentity(
                    person_id=person.id,
                    telegram_user_id=user_id,
                    chat_id=user_id,
                    first_name=f"User{user_id}",
                )
            )
    await db.dispose()


async def run_companion(
    sb: RemoteSandbox, users: range, workdir: Path, database_url: str | None = None
) -> float:
    """Seconds for the companion to answer one message from each of ``users``."""
    url = database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await upgrade(url)
    await enrol(url, users)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=sb.token,
        telegram_api_base_url=sb.base_url,
        database_url=url,
        companion_global_rate=100_000,
        companion_chat_rate=100,
    )
    companion = Companion(settings)
    before = await sb.sent_messages()
    await sb.send_texts(users, "hello")
    started = time.perf_counter()
    await companion.start()
    try:
        await sb.wait_for_sent(before + len(users))
        elapsed = time.perf_counter() - started
    finally:
        await companion.stop()
    return elapsed


async def main(updates: int, rounds: int, database_url: str | None = None) -> int:
    """Run both bots ``rounds`` times, alternating, and print the medians."""
    quiet_http_libraries()
    echo_times: list[float] = []
    our_times: list[float] = []
    async with remote_sandbox() as sb:
        await run_echo(sb, range(1_000_000, 1_000_000 + 50))  # warm up
        for r in range(rounds):
            base = 10_000_000 * (r + 2)
            echo_times.append(await run_echo(sb, range(base, base + updates)))
            with tempfile.TemporaryDirectory() as tmp:
                our_times.append(
                    await run_companion(
                        sb,
                        range(base + 5_000_000, base + 5_000_000 + updates),
                        Path(tmp),
                        database_url,
                    )
                )
        state = await sb.state()
    echo_s, ours_s = statistics.median(echo_times), statistics.median(our_times)
    echo_rate, ours_rate = updates / echo_s, updates / ours_s
    ratio = ours_rate / echo_rate
    each = ", ".join(f"{e / o:.2f}" for e, o in zip(echo_times, our_times, strict=True))
    print(f"updates:               {updates} per bot per round, {rounds} rounds")
    print(f"database:              {'PostgreSQL' if database_url else 'SQLite'}")
    print(f"bare echo bot:         {echo_s:6.2f} s  {echo_rate:7.1f} updates/s (median)")
    print(f"companion round trip:  {ours_s:6.2f} s  {ours_rate:7.1f} updates/s (median)")
    print(f"ratio in each round:   {each}")
    print(f"sandbox 429s:          {state['too_many_requests']}")
    print(f"inbound ratio: {ratio:.2f} (budget >= {BUDGET})")
    return 0 if ratio >= BUDGET else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database-url", help="an EMPTY PostgreSQL database to use instead of SQLite"
    )
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.updates, args.rounds, args.database_url)))
