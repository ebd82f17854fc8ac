"""/partners end to end: the roster grouped and worded kindly, a partner's card with their
chart and their own words only where they agreed to be quoted, a connector named for a group
sees that group only, and partners and outsiders are refused (also with forged buttons)."""

from __future__ import annotations

import os
from pathlib import Path

from prompts import Prompts
from storage.models import Invite, Role, StaffDraft
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import buttons, count, data_for, settle
from tests.test_journey import png_size
from tests.tools_support import Given, add_checkin, day

SAM, ALI, NOOR, OUTSIDER, TOM = 8901, 8902, 8903, 8909, 900_002
NOT_FOR_YOU = Prompts().label("guards.not_for_you")
SECRET_WORDS = "my private thoughts about the team"


def keep_chart(data: bytes, name: str) -> None:
    """Save a chart for a person to look at when CHARTS_OUT names a folder."""
    folder = os.environ.get("CHARTS_OUT")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(data)


async def seed(database) -> tuple:
    sam = await enrol(database, SAM, name="Sam", group="north")
    ali = await enrol(
        database,
        ALI,
        name="Ali",
        group="south",
        consents={"take_part": True, "quote_anonymously": False, "credit_by_name": False},
    )
    noor = await enrol(database, NOOR, name="Noor", group="north", onboarded=False)
    for month, value in ((3, 2), (4, 3), (5, 4)):
        await add_checkin(
            database,
            sam.id,
            [
                Given("confidence", value, day(month, 3)),
                Given("valued", 3, day(month, 3)),
                Given("reflection", f"Month {month}: it felt good to be heard", day(month, 3)),
            ],
        )
    await add_checkin(
        database,
        ali.id,
        [Given("confidence", 3, day(5, 3)), Given("reflection", SECRET_WORDS, day(5, 3))],
    )
    return sam, ali, noor


async def test_roster_and_cards_for_a_connector(companion, sandbox, database) -> None:
    sam, ali, _noor = await seed(database)
    priya = sandbox.user(CONNECTOR_ID, "Priya")
    priya.send_command("partners")
    await settle(companion, sandbox)
    roster = sandbox.sent_to(CONNECTOR_ID)[-1]
    text = roster["text"]
    assert "Your partners (3)" in text
    assert text.index("North West") < text.index("Noor") < text.index("Sam")
    assert text.index("Sam") < text.index("South West") < text.index("Ali")
    assert "Noor: setting up. Last check-in: not yet." in text
    assert "Sam: taking part." in text and "months ago" in text
    assert [label for label, _ in buttons(roster)] == ["Noor", "Sam", "Ali"]

    # Sam's card: the chart with its story in words, and their words marked with the choices.
    priya.press(roster, data_for(roster, "Sam"))
    photo, card = (await sandbox.wait_for_messages(CONNECTOR_ID, 3, timeout=20))[1:]
    await settle(companion, sandbox)
    assert "photo" in photo
    assert "Confidence: from 2 to 4, 3 March to 3 May." in photo["caption"]
    stored = sandbox.files.get(photo["photo"][-1]["file_id"])
    assert png_size(stored.data) == (800, 1000)
    keep_chart(stored.data, "card.png")
    assert "Sam (North West): taking part." in card["text"]
    assert "Quote them without their name." in card["text"]
    assert "Month 5: it felt good to be heard" in card["text"]
    assert ("Log time for them", f"lc:new:{sam.id}") in buttons(card)
    assert ("Message them", f"rl:w:{sam.id}") in buttons(card)

    # Ali declined quotes: nothing Ali wrote appears anywhere the connector was sent.
    priya.press(card, f"pt:c:{ali.id}")
    await settle(companion, sandbox)
    ali_card = sandbox.sent_to(CONNECTOR_ID)[-1]
    assert "chose not to be quoted" in ali_card["text"]
    everything = " ".join(
        (m.get("text") or "") + (m.get("caption") or "") for m in sandbox.sent_to(CONNECTOR_ID)
    )
    assert SECRET_WORDS not in everything


async def test_a_connector_for_one_group_sees_that_group_and_others_are_refused(
    companion, sandbox, database
) -> None:
    sam, ali, _noor = await seed(database)
    tom = await enrol(database, TOM, role=Role.CONNECTOR, name="Tom", group=None)
    async with database.transaction() as session:
        session.add(
            Invite(
                code_hash="x" * 64,
                role=Role.CONNECTOR,
                group_key="south",
                expires_at=day(1, 1),
                used_at=day(1, 1),
                used_by_person_id=tom.id,
            )
        )
    tom_chat = sandbox.user(TOM, "Tom")
    tom_chat.send_command("partners")
    await settle(companion, sandbox)
    roster = sandbox.sent_to(TOM)[-1]
    assert "Ali" in roster["text"] and "Sam" not in roster["text"]
    forged = tom_chat.press(roster, f"pt:c:{sam.id}")  # not one of Tom's groups
    await settle(companion, sandbox)
    answer = sandbox.callback_answers[forged["callback_query"]["id"]]["text"]
    assert "not available" in answer
    forged = tom_chat.press(roster, f"rl:w:{sam.id}")  # "Message them" for someone not his
    await settle(companion, sandbox)
    answer = sandbox.callback_answers[forged["callback_query"]["id"]]["text"]
    assert "not available" in answer
    assert sandbox.sent_to(TOM)[-1] == roster, "nothing about Sam was sent"
    assert await count(database, StaffDraft) == 0

    # A partner and an outsider: /partners and forged card buttons are refused.
    sam_chat, stranger = sandbox.user(SAM, "Sam"), sandbox.user(OUTSIDER, "Stranger")
    sam_chat.send_command("partners")
    presses = [sam_chat.press(1, f"pt:c:{ali.id}"), stranger.press(1, f"pt:c:{ali.id}")]
    stranger.send_command("partners")
    await settle(companion, sandbox)
    assert [m["text"] for m in sandbox.sent_to(SAM)] == [Prompts().render("guards/not_for_you")]
    answers = [sandbox.callback_answers[p["callback_query"]["id"]].get("text") for p in presses]
    assert answers == [NOT_FOR_YOU, None]
    assert all("Ali" not in (m.get("text") or "") for m in sandbox.sent_to(OUTSIDER))
