"""The bot works in private chats only: nothing private is ever posted to a group."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import OutboxMessage, Person, PersonStatus
from tests.factories import enrol
from tests.support import settle

GROUP = -100_4242


async def test_added_to_a_group_it_says_so_once_and_leaves(companion, sandbox, database) -> None:
    sam = await enrol(database, 7301, name="Sam")
    group = sandbox.group(GROUP, "Family chat")
    group.add_bot(7301)
    await settle(companion, sandbox)
    [said] = group.messages
    assert "only work in private chats" in said["text"]
    assert "Sam" not in said["text"], "no study content, not even a name"
    assert [r.method for r in sandbox.requests if r.method == "leaveChat"] == ["leaveChat"]
    async with database.sessions() as session:
        person = await session.get(Person, sam.id)
    assert person is not None and person.status == PersonStatus.ACTIVE


async def test_a_partners_commands_in_a_group_post_nothing_there(
    companion, sandbox, database
) -> None:
    """/mydata, /journey and /settings typed in a group would have posted their data there."""
    await enrol(database, 7302, name="Kim")
    group = sandbox.group(GROUP - 1, "Old group")  # the bot was in it before this version
    for command in ("mydata", "journey", "settings", "checkin", "help"):
        group.send_command(7302, command)
    group.send_text(7302, "I feel awful today")
    await settle(companion, sandbox)
    assert group.messages == []
    assert sandbox.sent_to(7302) == [], "nor in their private chat"
    assert "leaveChat" in [r.method for r in sandbox.requests]
    async with database.sessions() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert rows == [], "nothing queued for anyone"


async def test_removing_the_bot_from_a_group_leaves_the_partner_reachable(
    companion, sandbox, database
) -> None:
    kim = await enrol(database, 7303, name="Kim")
    sandbox.user(7303, "Kim")
    group = sandbox.group(GROUP - 2, "Team")
    group.remove_bot(7303)
    await settle(companion, sandbox)
    async with database.sessions() as session:
        person = await session.get(Person, kim.id)
    assert person is not None and person.status == PersonStatus.ACTIVE
