"""Property-based: arbitrary text, commands, callback data, stickers and edits from enrolled
partners, staff and strangers never make a handler fail, and nothing from strangers is kept."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from storage.models import InboxStatus, InboxUpdate, OutboxMessage, TelegramIdentity
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import count, settle

PARTNER, HALFWAY, STRANGER = 7401, 7402, 7403
STRANGERS = {STRANGER, 7404}
COMMANDS = [
    "start", "help", "checkin", "journey", "mydata", "settings", "pause", "resume",
    "withdraw", "meetings", "broadcast", "export", "nonsense",
]  # fmt: skip

text = st.text(min_size=1, max_size=4096).filter(lambda t: t.strip() != "")
callback = st.one_of(
    st.text(min_size=1, max_size=64).filter(lambda d: len(d.encode()) <= 64),
    st.sampled_from(["ci:1:confidence:5", "ci:999:valued:0", "ob:consent:take_part:yes",
                     "sg:ack:1", "set:tz:Europe/Paris", "wd:yes:0", "pa:7", "ci:1:#0:#9"]),
)  # fmt: skip
action = st.one_of(
    st.tuples(st.just("text"), text),
    st.tuples(st.just("command"), st.tuples(st.sampled_from(COMMANDS), st.none() | text)),
    st.tuples(st.just("press"), callback),
    st.tuples(st.just("sticker"), st.none()),
    st.tuples(st.just("edit"), text),
)
who = st.sampled_from([PARTNER, HALFWAY, CONNECTOR_ID, *sorted(STRANGERS)])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(st.tuples(who, action), min_size=1, max_size=6))
async def test_arbitrary_input_never_breaks_a_handler_or_stores_strangers(
    companion, sandbox, database, events
):
    if not await count(database, TelegramIdentity, TelegramIdentity.telegram_user_id == PARTNER):
        await enrol(database, PARTNER, name="Sam")
        await enrol(database, HALFWAY, name="Kim", onboarded=False)
    for user_id, (kind, value) in events:
        user = sandbox.user(user_id, "Fuzz")
        if kind == "text":
            user.send_text(value)
        elif kind == "command":
            command, payload = value
            user.send_command(command, payload.split()[0][:64] if payload else None)
        elif kind == "press":
            sent = sandbox.sent_to(user_id)
            user.press(sent[-1] if sent else 1, value)
        elif kind == "sticker":
            user.send_sticker()
        else:
            original = user.send_text("first version")
            user.edit(original["message"]["message_id"], value)
    await settle(companion, sandbox, within=15)

    assert await count(database, InboxUpdate, InboxUpdate.status == InboxStatus.FAILED) == 0
    async with database.sessions() as session:
        kept = (await session.execute(select(InboxUpdate.payload))).scalars().all()
        identities = set(
            (await session.execute(select(TelegramIdentity.telegram_user_id))).scalars()
        )
        chats = set((await session.execute(select(OutboxMessage.chat_id))).scalars())
    assert all(payload is None for payload in kept), "raw updates are not kept"
    assert not identities & STRANGERS, "a stranger was stored"
    assert not chats & STRANGERS, "a stranger's chat is in the outbox"
