"""Inbound throughput: a round trip through the durable inbox against a bare PTB bot.

Both bots run in this process against the same sandbox Telegram (in its own process). Each of
N people sends one update; a bot is done when the sandbox has answered every call of all N
replies (for a button press: the toast, the tick and the next question). Two
scenarios, each with its own baseline making the same Bot API calls and storing nothing:

* ``text``: each person types "hello". Baseline: a bare python-telegram-bot echo bot.
  Companion: getUpdates, inbox commit, the handler (person, open check-in, reply queued in the
  outbox) in the batch's transaction, inbox row marked done, reply sent by the outbox sender
  and recorded as sent.
* ``answer`` (DESIGN.md's "full answer"): each partner has a check-in open and presses the
  first answer button. Baseline: a bare bot that answers the press, ticks the button and sends
  a next question. Companion: the same three calls around an inbox commit, the answer stored,
  the next question queued in the outbox and sent, and the check-in's state moved on.

SQLite runs with synchronous=FULL, as in production. The sending limits are raised for this
run (COMPANION_GLOBAL_RATE) so that what is measured is our own overhead, not Telegram's 30
messages a second. Rounds alternate the two bots; the figures are medians. Budget: each
scenario's ratio >= 0.5.

Usage: python bench/inbound.py [--scenario text|answer|both] [--updates N] [--rounds R]
                               [--database-url postgresql+asyncpg://...]
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

from sqlalchemy import func, select
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bench._sandbox import RemoteSandbox, remote_sandbox
from bot.logs import quiet_http_libraries
from bot.partners import checkins
from bot.partners.people import new_pseudonym
from bot.protocol import load_protocol
from bot.runtime import Companion, prepare_to_serve
from bot.settings import Settings
from prompts import Prompts
from storage.clock import utcnow
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    Answer,
    OutboxMessage,
    PartnerProfile,
    Person,
    Role,
    TelegramIdentity,
)

BUDGET = 0.5
SCENARIOS = ("text", "answer")

_QUESTION = InlineKeyboardMarkup(
    [[InlineKeyboardButton(str(n), callback_data=f"q:{n}") for n in range(1, 6)]]
)
_TICKED = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton(f"✓ {n}" if n == 1 else str(n), callback_data=f"q:{n}")
            for n in range(1, 6)
        ]
    ]
)


async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the same text."""
    if update.message is not None and update.message.text is not None:
        await update.message.reply_text(update.message.text)


async def answer_and_ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the press, tick the button, send the next question (what our bot does)."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=_TICKED)
    await context.bot.send_message(query.message.chat.id, "Next question?", reply_markup=_QUESTION)


#: The Bot API calls that make one answered update, per scenario: a bot is done when the
#: sandbox has answered every one of them for every update (ours makes the first two of an
#: answer after its commit, so the clock runs until they are made too).
CALLS = {
    "text": ("sendMessage",),
    "answer": ("answerCallbackQuery", "editMessageReplyMarkup", "sendMessage"),
}


async def counts(sb: RemoteSandbox, scenario: str) -> dict[str, int]:
    """The sandbox's answered calls so far, for the methods the scenario waits on."""
    return {method: await sb.answered(method) for method in CALLS[scenario]}


async def wait_for_all(sb: RemoteSandbox, before: dict[str, int], updates: int) -> None:
    """Wait until each method has been answered ``updates`` more times than ``before``."""
    for method, count in before.items():
        await sb.wait_for(method, count + updates)


async def run_bare(sb: RemoteSandbox, users: range, scenario: str) -> float:
    """Seconds for a bare python-telegram-bot bot to answer one update from each of ``users``."""
    app: Application = ApplicationBuilder().token(sb.token).base_url(sb.base_url).build()
    if scenario == "text":
        app.add_handler(MessageHandler(filters.TEXT, echo))
    else:
        app.add_handler(CallbackQueryHandler(answer_and_ask))
    async with app:
        assert app.updater is not None
        if scenario == "answer":  # a question with buttons in every chat, not measured
            await sb.send_texts(users, "hi")  # the chats must exist to be written to
            await _drop_pending(app)
            await asyncio.gather(
                *(app.bot.send_message(u, "Question?", reply_markup=_QUESTION) for u in users)
            )
        before = await counts(sb, scenario)
        await (
            sb.send_texts(users, "hello") if scenario == "text" else sb.press_first_buttons(users)
        )
        started = time.perf_counter()
        await app.updater.start_polling(poll_interval=0.0, timeout=10)
        await app.start()
        await wait_for_all(sb, before, len(users))
        elapsed = time.perf_counter() - started
        await app.updater.stop()
        await app.stop()
    return elapsed


async def _drop_pending(app: Application) -> None:
    """Confirm every update queued so far (the set-up's own), so the bot starts clean."""
    offset = None
    while updates := await app.bot.get_updates(offset=offset, timeout=0):
        offset = updates[-1].update_id + 1


async def enrol(database_url: str, users: range, *, onboarded: bool) -> None:
    """Enrol ``users`` as partners directly in the database (with a finished onboarding)."""
    db = Database(database_url)
    now = utcnow()
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
            if onboarded:
                session.add(
                    PartnerProfile(
                        person_id=person.id,
                        timezone="Europe/London",
                        quiet_start="00:00",
                        quiet_end="00:00",
                        onboarding_step="done",
                        enrolled_at=now,
                        onboarded_at=now,
                    )
                )
    await db.dispose()


async def open_checkins(settings: Settings, users: range) -> int:
    """Open a check-in for each partner (intro and first question queued); their rows."""
    protocol = load_protocol(settings.companion_study)
    prompts = Prompts(protocol.study.locale)
    key = checkins.manual_checkin_key(protocol)
    db = Database(settings.database_url)
    now = utcnow()
    async with db.transaction() as session:
        people = (
            await session.execute(
                select(Person)
                .join(TelegramIdentity, TelegramIdentity.person_id == Person.id)
                .where(TelegramIdentity.telegram_user_id.in_(list(users)))
            )
        ).scalars()
        for person in people:
            opened = await checkins.open_checkin(
                session,
                protocol,
                prompts,
                person,
                key,
                occurrence_key=f"bench:{person.id}",
                now=now,
                source="manual",
            )
            assert opened is not None, "the bench partner could not get a check-in"
        queued = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.chat_id.in_(list(users)))
        )
    await db.dispose()
    return int(queued or 0)


async def count_answers(database_url: str) -> int:
    """Answers stored so far."""
    db = Database(database_url)
    async with db.sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(Answer))
    await db.dispose()
    return int(stored or 0)


async def run_companion(
    sb: RemoteSandbox, users: range, workdir: Path, scenario: str, database_url: str | None
) -> float:
    """Seconds for the companion to answer one update from each of ``users``."""
    url = database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await upgrade(url)
    await enrol(url, users, onboarded=scenario == "answer")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=sb.token,
        telegram_api_base_url=sb.base_url,
        database_url=url,
        companion_global_rate=100_000,
        companion_chat_rate=100,
    )
    answers_before = 0
    if scenario == "answer":  # deliver the questions first, not measured
        sent_before = await sb.sent_messages()
        await sb.send_texts(users, "hi")  # the chats must exist to be written to
        queued = await open_checkins(settings, users)
        companion = Companion(settings)
        await companion.start()
        try:  # each "hi" is answered too ("please use the buttons")
            await sb.wait_for_sent(sent_before + queued + len(users))
        finally:
            await companion.stop()
        answers_before = await count_answers(url)
    companion = Companion(settings)
    before = await counts(sb, scenario)
    await (sb.send_texts(users, "hello") if scenario == "text" else sb.press_first_buttons(users))
    started = time.perf_counter()
    await companion.start()
    try:
        await wait_for_all(sb, before, len(users))
        elapsed = time.perf_counter() - started
    finally:
        await companion.stop()
    if scenario == "answer":
        stored = await count_answers(url) - answers_before
        assert stored == len(users), f"{stored} answers stored for {len(users)} presses"
    return elapsed


async def measure(
    sb: RemoteSandbox, scenario: str, updates: int, rounds: int, database_url: str | None
) -> tuple[list[float], list[float]]:
    """Alternate the bare bot and ours ``rounds`` times; their times in seconds."""
    bare: list[float] = []
    ours: list[float] = []
    offset = 0 if scenario == "text" else 500_000_000
    for r in range(rounds):
        base = offset + 10_000_000 * (r + 2)
        bare.append(await run_bare(sb, range(base, base + updates), scenario))
        with tempfile.TemporaryDirectory() as tmp:
            users = range(base + 5_000_000, base + 5_000_000 + updates)
            ours.append(await run_companion(sb, users, Path(tmp), scenario, database_url))
    return bare, ours


def report(scenario: str, updates: int, bare: list[float], ours: list[float]) -> float:
    """Print one scenario's medians and return its ratio."""
    bare_s, ours_s = statistics.median(bare), statistics.median(ours)
    ratio = bare_s / ours_s
    each = ", ".join(f"{b / o:.2f}" for b, o in zip(bare, ours, strict=True))
    baseline = "bare echo bot" if scenario == "text" else "bare answering bot"
    for name, seconds in ((baseline, bare_s), ("companion round trip", ours_s)):
        rate = updates / seconds
        print(f"[{scenario}] {name + ':':22} {seconds:6.2f} s  {rate:7.1f} updates/s")
    print(f"[{scenario}] ratio in each round:  {each}")
    print(f"[{scenario}] inbound ratio: {ratio:.2f} (budget >= {BUDGET})")
    return ratio


async def main(
    scenarios: list[str], updates: int, rounds: int, database_url: str | None = None
) -> int:
    """Run the scenarios and print their figures; exit status 1 if one misses the budget."""
    quiet_http_libraries()
    prepare_to_serve()  # as `companion run` does
    ratios: list[float] = []
    async with remote_sandbox() as sb:
        await run_bare(sb, range(1_000_000, 1_000_000 + 50), "text")  # warm up
        print(f"updates: {updates} per bot per round, {rounds} rounds, medians")
        print(f"database: {'PostgreSQL' if database_url else 'SQLite'}")
        for scenario in scenarios:
            bare, ours = await measure(sb, scenario, updates, rounds, database_url)
            ratios.append(report(scenario, updates, bare, ours))
        state = await sb.state()
    print(f"sandbox 429s: {state['too_many_requests']}")
    return 0 if min(ratios) >= BUDGET else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=[*SCENARIOS, "both"], default="both")
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database-url", help="an EMPTY PostgreSQL database to use instead of SQLite"
    )
    args = parser.parse_args()
    chosen = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    raise SystemExit(asyncio.run(main(chosen, args.updates, args.rounds, args.database_url)))
