"""Fuzz: thousands of generated updates through the sandbox into a running companion.

A seeded generator (``FUZZ_SEED``, default 14; a failure prints the seed, the chunk and the
updates that broke) sends updates from outsiders, partners at every stage (invited, half
onboarded, onboarded, withdrawn) and staff; in private chats, groups, supergroups and
channels; text (empty, huge, junk commands), edits, forwards, stickers, photos, voice notes,
documents, button presses (real buttons, and forged or stale data: known prefixes with junk
fields, Unicode digits, overlong data) and membership changes. 10,000 updates when
``CI=true``, 1,000 otherwise (``FUZZ_UPDATES`` overrides). After each chunk:

* no update failed (the inbox records a failure as ``failed``, and alerts the connectors);
* nothing is stored about outsiders (no person, identity or outbox row for their ids; raw
  updates are not kept);
* no connector alert was caused by a failure (``failure:`` outbox rows);
* no forwarded message was taken as an answer, no Telegram name is stored uncleaned;
* the sandbox saw no Bot API spec violation (the sandbox fixture fails the test otherwise).

Each family also runs alone (``test_each_family_alone``), so a failure names its family.
"""

from __future__ import annotations

import json
import os
import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from bot.partners.invites import create_invites
from bot.protocol import load_protocol
from bot.sandbox.state import ChatInfo
from bot.settings import DEFAULT_STUDY_PATH
from storage.models import (
    Answer,
    InboxStatus,
    InboxUpdate,
    OutboxMessage,
    Person,
    PersonStatus,
    Role,
    TelegramIdentity,
)
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import running_companion, settle

#: Families of hostile input mixed into the main run, and each also run alone, focused.
FAMILIES = ("unicode-digit-callback", "forwarded-answer", "uncleaned-telegram-name")

SEED = int(os.environ.get("FUZZ_SEED", "14"))
UPDATES = int(
    os.environ.get("FUZZ_UPDATES", "10000" if os.environ.get("CI") == "true" else "1000")
)
CHUNK = 250

PARTNERS = [7_600_000 + i for i in range(6)]  # onboarded
HALFWAY = [7_600_100 + i for i in range(3)]  # onboarding not finished
WITHDRAWN = [7_600_200]
RESEARCHER = 7_600_300
NEW_STAFF = [7_600_400 + i for i in range(3)]  # allow-listed, first contact in the fuzz
INVITEES = [7_600_500 + i for i in range(4)]  # hold an invite code
OUTSIDERS = [7_700_000 + i for i in range(20)]
#: First ids of groups, supergroups and channels; each update usually comes from a new one, as
#: Telegram sends nothing from a chat the bot has left (and a group allows 20 messages a minute).
GROUP, SUPERGROUP, CHANNEL = -4_000_000, -1_000_000_000_000, -1_001_000_000_000

COMMANDS = [
    "start", "help", "checkin", "journey", "meetings", "contact", "settings", "pause",
    "resume", "mydata", "withdraw", "log", "broadcast", "meeting", "invite", "partners",
    "stats", "alerts", "yousaid", "export", "cancel", "nonsense", "START", "checkin@other_bot",
]  # fmt: skip
PREFIXES = [
    "ci", "ob", "pause", "pt", "set", "sg", "st", "wd", "ys", "iv", "mt", "mc", "export",
    "inv", "lg", "lc", "bc", "al", "", "x",
]  # fmt: skip
UNICODE_DIGITS = ["\u00b2", "\u0663", "\u0967", "\u2460", "\uff15", "\U0001d7d9"]
CLEAN_NAMES = ["Sam", "Ana María", "李雷", "O'Neil", "🌻", "x" * 64, "Jo-Jo"]
DIRTY_NAMES = ["\u202eevil\u202c", "Z\u200bero", "\u2066iso\u2069", "Bell\u0007"]
TEXTS = [
    "hello", "yes", "no", "1", "5", "Skip", "/", "//", "@companion", "<b>bold</b>", "&amp;",
    "I feel fine", "a" * 4096, "b" * 5000, "", " ", "\n\n", "🙂" * 300, "ok\u200b",
    "SELECT * FROM person;", "{{ name }}", "%s %d", "\u202eright-to-left",
]  # fmt: skip


def junk(rng: random.Random) -> str:
    """One junk field: digits, Unicode-free words, negatives, empties, huge numbers."""
    return rng.choice(
        [
            str(rng.randint(0, 10)),
            str(rng.randint(-5, 10**13)),
            "",
            "-",
            "#" + str(rng.randint(0, 99)),
            "yes",
            "no",
            "99999999999999999999",
            "abc",
            "1.5",
            "%",
            "Europe/Paris",
            "None",
        ]
    )


@dataclass
class Fuzzer:
    """Generates updates into the sandbox; remembers what it sent, by update id."""

    sandbox: Any
    rng: random.Random
    families: set[str]  # the hostile families (FAMILIES) it may generate
    codes: list[str]
    sent: dict[int, dict[str, Any]] = field(default_factory=dict)
    forwarded: set[int] = field(default_factory=set)
    only: str | None = None
    chats_made: int = 0

    def _user(self, user_id: int) -> Any:
        dirty = "uncleaned-telegram-name" in self.families and user_id in NEW_STAFF + INVITEES
        names = DIRTY_NAMES if dirty else CLEAN_NAMES
        return self.sandbox.user(user_id, names[user_id % len(names)])

    def _chat(self, chat_id: int, kind: str) -> ChatInfo:
        chat = self.sandbox.chats.get(chat_id)
        if chat is None:
            chat = ChatInfo(id=chat_id, type=kind, title=f"Fuzz {kind}")
            self.sandbox.chats[chat_id] = chat
        return chat

    def _keep(self, update: dict[str, Any]) -> None:
        self.sent[int(update["update_id"])] = update

    def _push(self, update: dict[str, Any]) -> dict[str, Any]:
        self.sandbox.push_update(update)
        self._keep(update)
        return update

    def who(self) -> int:
        """Someone: a partner at some stage, staff, an invitee, or an outsider."""
        pool = self.rng.choice(
            [PARTNERS, PARTNERS, HALFWAY, WITHDRAWN, [CONNECTOR_ID, RESEARCHER], NEW_STAFF,
             INVITEES, OUTSIDERS]
        )  # fmt: skip
        return int(self.rng.choice(pool))

    def callback_data(self, user_id: int) -> tuple[str, int | None]:
        """Data for a press, and the message it is under (None: a message id made up)."""
        messages = self.sandbox.sent_to(user_id)
        real = [
            (b["callback_data"], m["message_id"])
            for m in messages
            for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row
            if "callback_data" in b
        ]
        roll = self.rng.random()
        if real and roll < 0.45:
            return self.rng.choice(real)
        message_id = self.rng.choice(real)[1] if real and self.rng.random() < 0.7 else None
        if real and roll < 0.65:  # a real button with a field replaced
            data, message_id = self.rng.choice(real)
            parts = data.split(":")
            parts[self.rng.randrange(len(parts))] = junk(self.rng)
            return ":".join(parts)[:64], message_id
        if roll < 0.72:  # overlong: Telegram allows 64 bytes, a forger may not care
            return self.rng.choice(PREFIXES) + ":" + "9" * self.rng.randint(60, 200), message_id
        fields = [junk(self.rng) for _ in range(self.rng.randint(0, 4))]
        return ":".join([self.rng.choice(PREFIXES), *fields])[:64], message_id

    def unicode_press(self, user_id: int) -> dict[str, Any]:
        """A press whose data carries Unicode digits where an ASCII number belongs."""
        digit = self.rng.choice(UNICODE_DIGITS) * self.rng.randint(1, 3)
        data = self.rng.choice(
            [f"pause:{digit}", f"wd:yes:{digit}", f"ci:{digit}:confidence:3", f"mt:{digit}:yes",
             f"pt:c:{digit}", f"al:r:alert:{digit}", f"lg:d:{digit}", f"sg:ack:{digit}"]
        )  # fmt: skip
        return self._keep_press(user_id, data, None)

    def _keep_press(self, user_id: int, data: str, message_id: int | None) -> dict[str, Any]:
        message = message_id if message_id is not None else self.rng.randint(1, 10**6)
        update = self._user(user_id).press(message, data)
        self._keep(update)
        return update

    def forward(self, user_id: int) -> dict[str, Any]:
        """A forwarded text (or voice) in the user's private chat."""
        user = self._user(user_id)
        origin = {
            "type": "user",
            "date": self.sandbox.unix_now() - 3600,
            "sender_user": {"id": 42, "is_bot": False, "first_name": "Someone"},
        }
        message: dict[str, Any] = {
            "message_id": user.chat.allocate_message_id(),
            "from": user.user_object,
            "chat": user.chat.chat_object(),
            "date": self.sandbox.unix_now(),
            "forward_origin": origin,
            "text": self.rng.choice(["Their words, not mine", "I feel fine", "1"]),
        }
        update = self._push({"message": message})
        self.forwarded.add(int(update["update_id"]))
        return update

    def towards_free_text(self, user_id: int) -> dict[str, Any]:
        """Forward a message when a free-text question waits; else get there (/checkin, a
        press on the newest question)."""
        for message in reversed(self.sandbox.sent_to(user_id)):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            data = [b["callback_data"] for row in rows for b in row if "callback_data" in b]
            if data and data[0].startswith("ci:"):
                if all(d.endswith(":-") for d in data):
                    return self.forward(user_id)
                return self._keep_press(user_id, data[0], message["message_id"])
        update = self._user(user_id).send_command("checkin")
        self._keep(update)
        return update

    def _new_chat(self) -> int:
        """A number for a group-like chat: mostly a new one, sometimes the last one again."""
        if self.chats_made == 0 or self.rng.random() < 0.8:
            self.chats_made += 1
        return self.chats_made

    def in_group(self, user_id: int) -> dict[str, Any]:
        """Something in a group, a supergroup or a channel."""
        roll = self.rng.random()
        if roll < 0.4:
            group = self.sandbox.group(GROUP - self._new_chat(), "Fuzz group")
            action = self.rng.choice(["text", "command", "add", "remove"])
            if action == "text":
                update = group.send_text(user_id, self.rng.choice(TEXTS) or "hi")
            elif action == "command":
                update = group.send_command(user_id, self.rng.choice(COMMANDS))
            elif action == "add":
                update = group.add_bot(user_id)
            else:
                update = group.remove_bot(user_id)
            self._keep(update)
            return update
        kind, first = ("supergroup", SUPERGROUP) if roll < 0.75 else ("channel", CHANNEL)
        chat_id = first - self._new_chat()
        chat = self._chat(chat_id, kind)
        base: dict[str, Any] = {
            "message_id": chat.allocate_message_id(),
            "chat": chat.chat_object(),
            "date": self.sandbox.unix_now(),
        }
        if kind == "channel":
            if self.rng.random() < 0.3:
                bot = self.sandbox.bot_user
                member = {
                    "chat": chat.chat_object(),
                    "from": self._user(user_id).user_object,
                    "date": self.sandbox.unix_now(),
                    "old_chat_member": {"status": "left", "user": bot},
                    "new_chat_member": {
                        "status": "administrator", "user": bot, "can_be_edited": False,
                        "is_anonymous": False, "can_manage_chat": True,
                        "can_delete_messages": True, "can_manage_video_chats": True,
                        "can_restrict_members": True, "can_promote_members": False,
                        "can_change_info": True, "can_invite_users": True,
                        "can_post_stories": False, "can_edit_stories": False,
                        "can_delete_stories": False,
                    },
                }  # fmt: skip
                return self._push({"my_chat_member": member})
            base["sender_chat"] = chat.chat_object()
            text = "/" + self.rng.choice(COMMANDS) if self.rng.random() < 0.5 else "news"
            base["text"] = text
            if text.startswith("/"):
                base["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
            return self._push({self.rng.choice(["channel_post", "edited_channel_post"]): base})
        base["from"] = self._user(user_id).user_object
        base["text"] = "/" + self.rng.choice(COMMANDS)
        base["entities"] = [{"type": "bot_command", "offset": 0, "length": len(base["text"])}]
        if self.rng.random() < 0.3:
            base["edit_date"] = self.sandbox.unix_now()
            return self._push({"edited_message": base})
        return self._push({"message": base})

    def private(self, user_id: int) -> dict[str, Any]:
        """Something in the user's own chat with the bot."""
        user = self._user(user_id)
        roll = self.rng.random()
        if roll < 0.25:
            update = user.send_text(self.rng.choice(TEXTS))
        elif roll < 0.45:
            command = self.rng.choice(COMMANDS)
            payload = None
            if self.rng.random() < 0.5:
                payload = self.rng.choice([junk(self.rng), "x" * 300, *self._codes_for(user_id)])
            update = user.send_command(command, payload or None)
        elif roll < 0.70:
            data, message_id = self.callback_data(user_id)
            return self._keep_press(user_id, data, message_id)
        elif roll < 0.75:
            update = user.send_sticker()
        elif roll < 0.79:
            update = user.send_photo(caption=self.rng.choice([None, "look", "a" * 1024]))
        elif roll < 0.84:
            update = user.send_voice(duration=self.rng.randint(0, 4), data=b"OggS" + b"0" * 64)
        elif roll < 0.86:
            update = user.send_document()
        elif roll < 0.93:
            own = [
                m["message_id"]
                for m in user.chat.messages.values()
                if m.get("from", {}).get("id") == user_id and "text" in m
            ]
            if not own:
                update = user.send_text("first")
            else:
                update = user.edit(self.rng.choice(own), self.rng.choice(TEXTS) or "edited")
        elif roll < 0.95:
            update = user.block()
        elif roll < 0.97:
            update = user.unblock()
        else:
            bot_messages = self.sandbox.sent_to(user_id)
            if bot_messages:
                replied = self.rng.choice(bot_messages)["message_id"]
                update = user.send_text(self.rng.choice(TEXTS) or "re", reply_to=replied)
            else:
                update = user.send_text("hi")
        self._keep(update)
        return update

    def one(self) -> dict[str, Any]:
        """One update, of any kind, from anyone."""
        if self.only == "unicode-digit-callback":
            return self.unicode_press(self.rng.choice(PARTNERS + HALFWAY + [CONNECTOR_ID]))
        if self.only == "forwarded-answer":
            return self.towards_free_text(self.rng.choice(PARTNERS))
        if self.only == "uncleaned-telegram-name":
            return self._start_as_newcomer()
        user_id = self.who()
        roll = self.rng.random()
        if roll < 0.12:
            return self.in_group(user_id)
        if roll < 0.14 and "unicode-digit-callback" in self.families:
            return self.unicode_press(user_id)
        if roll < 0.16 and "forwarded-answer" in self.families:
            return self.forward(user_id)
        return self.private(user_id)

    def _codes_for(self, user_id: int) -> list[str]:
        """Invite codes this person might type: their own if invited; anyone may try a forged
        one (a real code with one character changed). A real code makes an outsider a partner,
        so outsiders never get one."""
        forged = [c[:-1] + ("A" if c[-1] != "A" else "B") for c in self.codes[:1]]
        own = [self.codes[INVITEES.index(user_id)]] if user_id in INVITEES else []
        return own + forged

    def _start_as_newcomer(self) -> dict[str, Any]:
        user_id = self.rng.choice(NEW_STAFF + INVITEES)
        user = self._user(user_id)
        payload = self.codes[INVITEES.index(user_id)] if user_id in INVITEES else None
        update = user.send_command("start", payload) if self.rng.random() < 0.6 else None
        if update is None:
            update = user.send_command("help")
        self._keep(update)
        return update


async def prepare(sandbox: Any, database: Any) -> list[str]:
    """Partners at every stage, staff, and one invite code per invitee."""
    for user_id in PARTNERS:
        await enrol(database, user_id, name="Sam")
    for user_id in HALFWAY:
        await enrol(database, user_id, name="Kim", onboarded=False)
    for user_id in WITHDRAWN:
        await enrol(database, user_id, name="Lee", status=PersonStatus.WITHDRAWN)
    await enrol(database, CONNECTOR_ID, role=Role.CONNECTOR, name="Connie")
    sandbox.user(CONNECTOR_ID, "Connie")  # the connector's chat exists: relays reach it
    protocol = load_protocol(DEFAULT_STUDY_PATH)
    async with database.transaction() as session:
        invites = await create_invites(
            session, protocol, role=Role.PARTNER, group_key="north", count=len(INVITEES)
        )
    return [invite.code for invite in invites]


def _has_hidden_characters(name: str | None) -> bool:
    return bool(name) and any(unicodedata.category(c) in ("Cf", "Cc") for c in name or "")


async def problems(database: Any, fuzzer: Fuzzer) -> list[str]:
    """Everything the fuzz run must not have caused, as readable lines."""
    found: list[str] = []
    async with database.sessions() as session:
        failed = (
            await session.execute(
                select(InboxUpdate.update_id, InboxUpdate.error).where(
                    InboxUpdate.status == InboxStatus.FAILED
                )
            )
        ).all()
        for update_id, error in failed[:5]:
            update = json.dumps(fuzzer.sent.get(update_id), ensure_ascii=True)[:600]
            found.append(f"update {update_id} failed ({error}): {update}")
        if len(failed) > 5:
            found.append(f"... {len(failed)} failed updates in all")
        kept = (
            await session.execute(
                select(InboxUpdate.update_id).where(
                    InboxUpdate.status != InboxStatus.PENDING, InboxUpdate.payload.is_not(None)
                )
            )
        ).all()
        if kept:
            found.append(f"{len(kept)} processed updates keep their raw payload")
        people = set(
            (
                await session.execute(
                    select(TelegramIdentity.telegram_user_id).where(
                        TelegramIdentity.telegram_user_id.in_(OUTSIDERS)
                    )
                )
            ).scalars()
        )
        if people:
            found.append(f"outsiders stored as people: {sorted(people)}")
        chats = set(
            (
                await session.execute(
                    select(OutboxMessage.chat_id).where(OutboxMessage.chat_id.in_(OUTSIDERS))
                )
            ).scalars()
        )
        if chats:
            found.append(f"outsiders' chats in the outbox: {sorted(chats)}")
        alerts = (
            await session.execute(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.idempotency_key.like("failure:%")
                )
            )
        ).all()
        if alerts:
            found.append(f"{len(alerts)} failure alerts queued for the connectors")
        forwarded = (
            await session.execute(
                select(Answer.source_update_id).where(
                    Answer.source_update_id.in_(sorted(fuzzer.forwarded) or [-1])
                )
            )
        ).all()
        if forwarded:
            found.append(f"forwarded messages stored as answers: {[r[0] for r in forwarded]}")
        names = (
            await session.execute(
                select(
                    TelegramIdentity.telegram_user_id,
                    TelegramIdentity.first_name,
                    TelegramIdentity.preferred_name,
                )
            )
        ).all()
        for user_id, first, preferred in names:
            if _has_hidden_characters(first) or _has_hidden_characters(preferred):
                found.append(f"name of {user_id} stored with hidden characters: {first!r}")
        outsiders_as_people = (
            await session.execute(
                select(Person.id)
                .join(TelegramIdentity, TelegramIdentity.person_id == Person.id)
                .where(TelegramIdentity.telegram_user_id.in_(OUTSIDERS))
            )
        ).all()
        if outsiders_as_people:
            found.append("outsiders have person rows")
    return found


async def run_fuzz(
    sandbox: Any,
    database: Any,
    database_url: str,
    tmp_path: Any,
    *,
    updates: int,
    families: set[str],
    only: str | None = None,
    chunk_size: int = CHUNK,
) -> list[str]:
    """Send ``updates`` generated updates in chunks; return the problems of the first bad
    chunk (or of the whole run)."""
    codes = await prepare(sandbox, database)
    fuzzer = Fuzzer(sandbox, random.Random(SEED), families, codes, only=only)
    overrides = {
        "companion_global_rate": 100_000.0,
        "companion_chat_rate": 1_000.0,
        "companion_connector_ids": [CONNECTOR_ID, *NEW_STAFF[:2]],
        "companion_researcher_ids": [RESEARCHER, NEW_STAFF[2]],
    }
    async with running_companion(sandbox, database_url, tmp_path / "data", **overrides) as bot:
        for chunk, start in enumerate(range(0, updates, chunk_size)):
            for _ in range(min(chunk_size, updates - start)):
                fuzzer.one()
            await settle(bot, sandbox, within=60)
            found = await problems(database, fuzzer)
            if sandbox.spec_errors:
                found.append(f"Bot API spec violations: {sandbox.spec_errors[:3]}")
            if found:
                return [f"seed {SEED}, chunk {chunk} (updates {start}..)", *found]
    return []


async def test_thousands_of_generated_updates_break_nothing(
    sandbox, database, database_url, tmp_path
):
    families = set(FAMILIES)
    found = await run_fuzz(
        sandbox, database, database_url, tmp_path, updates=UPDATES, families=families
    )
    assert not found, "\n".join(found)


@pytest.mark.parametrize("family", sorted(FAMILIES))
async def test_each_family_alone(family, sandbox, database, database_url, tmp_path):
    found = await run_fuzz(
        sandbox,
        database,
        database_url,
        tmp_path,
        updates=60,
        families={family},
        only=family,
        chunk_size=len(PARTNERS),  # settle between rounds: a conversation moves on
    )
    assert not found, "\n".join(found)
