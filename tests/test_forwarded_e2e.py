"""Forwarded messages through the sandbox: never taken as a partner's own answer (a check-in's
free-text question, the name at onboarding or in /settings, a time zone, /log's expenses);
the partner is asked to answer in their own words and the question stays open. With no
question open, a forwarded message reaches the connector marked as forwarded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.partners import onboarding as ob
from bot.partners import preferences
from storage.models import Answer, PartnerProfile, TelegramIdentity
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import count, data_for, settle

SAM = 9701
OWN_WORDS = "That looks like a message forwarded from somewhere else"


async def profile_and_name(database, person_id: int) -> tuple[str | None, str | None, str | None]:
    async with database.sessions() as session:
        profile = await session.get_one(PartnerProfile, person_id)
        identity = (
            await session.execute(
                select(TelegramIdentity).where(TelegramIdentity.person_id == person_id)
            )
        ).scalar_one()
        return profile.awaiting_input, profile.timezone, identity.preferred_name


async def test_a_forwarded_message_is_not_a_checkin_answer(companion, sandbox, database) -> None:
    await enrol(database, SAM, name="Sam")
    sam = sandbox.user(SAM, "Sam")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    [first] = sandbox.sent_to(SAM)
    sam.press(first, data_for(first, "2"))  # confidence 2: "what would help" (free text) next
    await settle(companion, sandbox)
    question = sandbox.sent_to(SAM)[-1]
    assert "What would help" in question["text"]

    sam.forward("Ten tips for a calmer week", author="Wellbeing Weekly")
    sam.forward(voice=4, author="Alex", author_id=4242)
    await settle(companion, sandbox)
    [text_reply, voice_reply] = sandbox.sent_to(SAM)[-2:]
    for reply in (text_reply, voice_reply):
        assert reply["text"].startswith(OWN_WORDS)
        assert "type it, or say it in a voice note, in your own words" in reply["text"]
        assert "still open" in reply["text"]
    assert await count(database, Answer, Answer.question_key == "confidence_help") == 0
    assert sandbox.sent_to(CONNECTOR_ID) == [], "nothing relayed, no alert"

    # The question stayed open: the partner's own words are the answer.
    sam.send_text("More time to read the papers.")
    await settle(companion, sandbox)
    assert await count(database, Answer, Answer.question_key == "confidence_help") == 1
    assert "views count" in sandbox.sent_to(SAM)[-1]["text"]


@pytest.mark.parametrize(
    "awaiting",
    [ob.AWAITING_NAME, preferences.AWAITING_NAME, preferences.AWAITING_TIMEZONE, "log:expenses"],
)
async def test_a_forwarded_message_answers_no_typed_question(
    companion, sandbox, database, awaiting
) -> None:
    onboarding = awaiting == ob.AWAITING_NAME
    person = await enrol(database, SAM, name="Sam", onboarded=not onboarding)
    async with database.transaction() as session:
        profile = await session.get_one(PartnerProfile, person.id)
        if onboarding:
            ob.enter_step(profile, ob.NAME)
        else:
            profile.awaiting_input = awaiting
    before = await profile_and_name(database, person.id)
    sam = sandbox.user(SAM, "Sam")

    sam.forward("Europe/Paris", author="Alex", author_id=4242)
    await settle(companion, sandbox)

    [reply] = sandbox.sent_to(SAM)
    assert reply["text"].startswith(OWN_WORDS)
    assert "type it in your own words" in reply["text"], "no voice note offered here"
    assert await profile_and_name(database, person.id) == before
    assert sandbox.sent_to(CONNECTOR_ID) == []


async def test_with_no_question_open_a_forwarded_message_reaches_the_connector_marked(
    companion, sandbox, database
) -> None:
    await enrol(database, SAM, name="Sam")
    sandbox.user(CONNECTOR_ID, "Priya").send_command("help")  # enrols the connector
    await settle(companion, sandbox)
    sandbox.user(SAM, "Sam").forward("The bus timetable changes on Monday", author="Council")
    await settle(companion, sandbox)
    relayed = sandbox.sent_to(CONNECTOR_ID)[-1]
    assert relayed["text"].startswith("💬 Sam (North West) forwarded a message:")
    assert "bus timetable" in relayed["text"]
    assert not sandbox.sent_to(SAM)[-1]["text"].startswith(OWN_WORDS)
