"""Forged button presses through the sandbox: every callback prefix the bot registers, with
numbers that are not plain ASCII digits (Unicode digits, signs, spaces, underscores, empty
fields, absurd lengths), pressed by a partner, a connector and an outsider. Each press is
answered politely; no update fails (a failure would alert every connector), nothing is sent
to anyone and nothing in the database changes."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from telegram.ext import CallbackQueryHandler

from storage.clock import utcnow
from storage.models import Base, InboxStatus, InboxUpdate, Person, Role, TelegramIdentity
from storage.queries import drafts
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import count, settle

PARTNER, OUTSIDER = 9601, 9602

# Where each prefix's buttons carry a number ({n}: the forged one; {c}: a real check-in id,
# so the check-in's own fields are reached). Every prefix also gets the generic shapes below.
SHAPES: dict[str, list[str]] = {
    "pause": ["pause:{n}"],
    "wd": ["wd:yes:{n}"],
    "ci": ["ci:{n}:confidence:3", "ci:{c}:#{n}:3", "ci:{c}:#0:#{n}", "ci:{c}:confidence:{n}"],
    "sg": ["sg:ack:{n}"],
    "al": ["al:a:n:{n}", "al:r:s:{n}", "al:r:n:{n}"],
    "pt": ["pt:p:{n}", "pt:c:{n}"],
    "st": ["st:{n}"],
    "inv": ["inv:x:{n}", "inv:s:{n}", "inv:g:{n}"],
    "lg": ["lg:d:{n}", "lg:m:{n}", "lg:pay:{n}", "lg:k:{n}"],
    "lc": ["lc:new:{n}", "lc:d:{n}", "lc:m:{n}"],
    "iv": ["iv:ok:{n}", "iv:c:{n}", "iv:m:{n}:{n}", "iv:m:1:{n}"],
    "ys": ["ys:mm:{n}", "ys:g:{n}"],
    "bc": ["bc:m:{n}", "bc:y:{n}", "bc:x:{n}", "bc:r:{n}", "bc:g:{n}"],
    "mc": ["mc:len:{n}", "mc:m:{n}", "mc:t:{n}", "mc:x:{n}", "mc:xy:{n}", "mc:a:{n}",
           "mc:at:{n}:{n}", "mc:at:1:{n}"],
    "mt": ["mt:{n}:yes"],
    "set": ["set:slot:{n}", "set:quiet:{n}", "set:group:{n}", "set:tz:{n}", "set:menu:{n}"],
    "ob": ["ob:slot:{n}", "ob:group:{n}", "ob:name:{n}"],
    "export": ["export:{n}"],
    "rl": ["rl:w:{n}"],
}  # fmt: skip
GENERIC = ["{p}:{n}", "{p}:{n}:{n}", "{p}:{n}:{n}:{n}"]
FORGED = ["\u00b2", "\u0663", "\uff11", "-1", "+1", " 1", "1_0", "", "9" * 20]
# Tables that change on their own while the bot runs (the inbox keeps processed ids, the
# planner tops up the schedule).
MOVING = {"inbox_update", "occurrence"}


def registered_prefixes(companion: Any) -> set[str]:
    """Every callback prefix a handler of the running bot answers (``^prefix:`` patterns)."""
    prefixes = set()
    for handlers in companion.application.handlers.values():
        for handler in handlers:
            if not isinstance(handler, CallbackQueryHandler) or handler.pattern is None:
                continue
            pattern = getattr(handler.pattern, "pattern", handler.pattern)
            match = re.fullmatch(r"\^(\w+):", str(pattern))
            assert match, f"a callback pattern not shaped ^prefix: ({pattern!r})"
            prefixes.add(match.group(1))
    return prefixes


async def snapshot(database: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table that should not move, for before/after comparison."""
    rows = {}
    async with database.sessions() as session:
        for table in Base.metadata.sorted_tables:
            if table.name not in MOVING:
                result = await session.execute(select(table))
                rows[table.name] = sorted(map(tuple, result.all()), key=repr)
    return rows


def forged(prefixes: set[str], checkin_id: int) -> list[str]:
    """Every forged callback data for these prefixes, each within Telegram's 64 bytes."""
    datas = []
    for prefix in sorted(prefixes):
        for shape in [*SHAPES.get(prefix, []), *(g.replace("{p}", prefix) for g in GENERIC)]:
            for bad in FORGED:
                data = shape.format(n=bad, c=checkin_id)
                if len(data.encode()) <= 64:
                    datas.append(data)
    return datas


async def test_forged_numbers_in_any_button_change_nothing_and_alert_nobody(
    companion, sandbox, database
) -> None:
    prefixes = registered_prefixes(companion)
    assert prefixes == set(SHAPES), "give a new callback prefix its shapes in SHAPES"
    partner = await enrol(database, PARTNER, name="Sam")
    sam, priya, stranger = (
        sandbox.user(PARTNER, "Sam"),
        sandbox.user(CONNECTOR_ID, "Priya"),
        sandbox.user(OUTSIDER, "Zed"),
    )
    # An open check-in (its buttons carry its id), and a connector who is enrolled.
    sam.send_command("checkin")
    priya.send_command("help")
    await settle(companion, sandbox)
    [checkin_id] = {
        int(b["callback_data"].split(":")[1])
        for m in sandbox.sent_to(PARTNER)
        for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
        for b in row
        if b.get("callback_data", "").startswith("ci:")
    }
    async with database.sessions() as session:
        connector = (
            await session.execute(
                select(Person)
                .join(TelegramIdentity)
                .where(TelegramIdentity.telegram_user_id == CONNECTOR_ID)
            )
        ).scalar_one()
        assert connector.role == Role.CONNECTOR
    connector_id = connector.id

    # Drafts waiting at the steps whose buttons carry numbers: the partner's /log at its day,
    # then at its minutes; the connector's /yousaid at its pick, then a /log at its minutes.
    stages = [
        ("day", "yousaid", "pick", {}, prefixes),
        ("minutes", "log", "minutes", {"partner_id": partner.id, "kind": "meeting"}, {"lg", "lc"}),
    ]
    for partner_step, connector_kind, connector_step, connector_data, pressed in stages:
        async with database.transaction() as session:
            await drafts.start(
                session,
                partner.id,
                "log",
                partner_step,
                {"partner_id": partner.id, "kind": "meeting"},
                now=utcnow(),
            )
            await drafts.start(
                session, connector_id, connector_kind, connector_step, connector_data, now=utcnow()
            )
        before = await snapshot(database)
        sent_before = {who: len(sandbox.sent_to(who)) for who in (PARTNER, CONNECTOR_ID)}
        queries = []
        for prefix in sorted(pressed):  # a prefix at a time: Telegram waits 15 s for answers
            for data in forged({prefix}, checkin_id):
                for user in (sam, priya, stranger):
                    last = sandbox.sent_to(user.id)
                    queries.append((user.id, data, user.press(last[-1] if last else 1, data)))
            await settle(companion, sandbox, within=30)

        assert await count(database, InboxUpdate, InboxUpdate.status == InboxStatus.FAILED) == 0
        assert await snapshot(database) == before, "a forged press changed something"
        for who, before_count in sent_before.items():
            assert sandbox.sent_to(who)[before_count:] == [], f"{who} was sent a message"
        assert sandbox.sent_to(OUTSIDER) == []
        for user_id, data, update in queries:
            answer = sandbox.callback_answers.get(update["callback_query"]["id"])
            assert answer is not None, f"{data!r} from {user_id} was not answered"
            if user_id != OUTSIDER:
                assert answer.get("text"), f"{data!r} from {user_id} was answered with no word"
