"""Safeguarding end to end: a risky phrase gets the crisis reply in the same update, connectors
get an alert, the first "I'm on it" wins, and every step is in the audit log."""

from __future__ import annotations

from sqlalchemy import select

from storage.crypto import TextCipher
from storage.models import Answer, AuditEvent, Person, Role, SafeguardingAlert
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import SECRET, buttons, settle
from tests.test_checkins_e2e import callback_text, last, press

PARTNER = 7101
SECOND_CONNECTOR = 900_002
CRISIS = "116 123"


async def alerts(database) -> list[SafeguardingAlert]:
    async with database.sessions() as session:
        query = select(SafeguardingAlert).order_by(SafeguardingAlert.id)
        return list((await session.execute(query)).scalars())


async def audit(database) -> list[tuple[str, int | None, dict]]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(AuditEvent.action, AuditEvent.actor_person_id, AuditEvent.detail)
            .where(AuditEvent.action.like("alert.%"))
            .order_by(AuditEvent.id)
        )
        return [(a, actor, detail) for a, actor, detail in rows.all()]


async def connectors(companion, sandbox, database) -> tuple[Person, Person]:
    """The allow-listed connector (enrolled by their first message) and a second one."""
    sandbox.user(CONNECTOR_ID, "Jo").send_command("help")
    second = await enrol(database, SECOND_CONNECTOR, role=Role.CONNECTOR, name="Kim")
    sandbox.user(SECOND_CONNECTOR, "Kim").send_command("help")
    await settle(companion, sandbox)
    async with database.sessions() as session:
        jo = (await session.execute(select(Person).where(Person.id != second.id))).scalar_one()
    return jo, second


async def test_a_risky_answer_gets_help_at_once_and_a_connector_picks_it_up(
    companion, sandbox, database
):
    jo, kim = await connectors(companion, sandbox, database)
    partner = await enrol(database, PARTNER, name="Sam")
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), "1")
    before = len(sandbox.sent_to(PARTNER))

    sam.send_text("Honestly I can\u2019t  go on like this")
    await settle(companion, sandbox)
    replies = sandbox.sent_to(PARTNER)[before:]
    assert len(replies) == 2
    crisis, following = replies
    assert CRISIS in crisis["text"] and "85258" in crisis["text"] and "999" in crisis["text"]
    assert "Sam, thank you for telling me" in crisis["text"]
    assert "connector will get in touch" in crisis["text"]
    assert "views count" in following["text"], "the answer is stored and the check-in goes on"

    [alert] = await alerts(database)
    assert alert.person_id == partner.id and alert.rule == "phrase:can't go on"
    assert alert.source == "answer" and alert.acknowledged_at is None
    async with database.sessions() as session:
        answer = await session.get(Answer, alert.answer_id)
        assert answer is not None and answer.question_key == "confidence_help"
        stored = TextCipher(SECRET).decrypt(answer.value_text or "", answer.text_encrypted)
        assert stored == "Honestly I can\u2019t  go on like this"

    jo_alert = sandbox.sent_to(CONNECTOR_ID)[-1]
    kim_alert = sandbox.sent_to(SECOND_CONNECTOR)[-1]
    for message in (jo_alert, kim_alert):
        assert partner.pseudonym in message["text"] and "Sam" in message["text"]
        assert "can't go on" in message["text"]
        assert "Honestly" not in message["text"], "the alert carries no excerpt"
        assert buttons(message) == [("I'm on it", f"sg:ack:{alert.id}")]
    assert not any("Safeguarding" in m["text"] for m in sandbox.sent_to(PARTNER))

    # Jo picks it up; Kim is told; Kim's later press learns who has it.
    pressed = sandbox.user(CONNECTOR_ID).press(jo_alert, f"sg:ack:{alert.id}")
    await settle(companion, sandbox)
    assert callback_text(sandbox, pressed) == "Thank you. This alert is yours now."
    [done] = await alerts(database)
    assert done.acknowledged_by_person_id == jo.id and done.acknowledged_at is not None
    jo_now = next(
        m for m in sandbox.sent_to(CONNECTOR_ID) if m["message_id"] == jo_alert["message_id"]
    )
    assert buttons(jo_now) == [], "the button has done its job"
    assert "Jo is on it" in sandbox.sent_to(SECOND_CONNECTOR)[-1]["text"]

    late = sandbox.user(SECOND_CONNECTOR).press(kim_alert, f"sg:ack:{alert.id}")
    await settle(companion, sandbox)
    assert callback_text(sandbox, late).startswith("Jo picked this up at ")
    [still] = await alerts(database)
    assert still.acknowledged_by_person_id == jo.id

    # A partner cannot acknowledge (guarded), and a forged id finds nothing.
    forged = sam.press(await last(sandbox, PARTNER), f"sg:ack:{alert.id}")
    bogus = sandbox.user(CONNECTOR_ID).press(jo_alert, "sg:ack:99999")
    await settle(companion, sandbox)
    assert callback_text(sandbox, forged) == "Sorry, that is only for the study team."
    assert callback_text(sandbox, bogus) == "Sorry, this alert cannot be found."

    assert [(a, actor, d["alert_id"]) for a, actor, d in await audit(database)] == [
        ("alert.raised", None, alert.id),
        ("alert.acknowledged", jo.id, alert.id),
    ]
    assert kim.id != jo.id


async def test_free_text_outside_a_checkin_is_checked_first(companion, sandbox, database):
    await connectors(companion, sandbox, database)
    await enrol(database, PARTNER, name="Sam")
    sam = sandbox.user(PARTNER, "Sam")

    sam.send_text("Lovely meeting today, thank you")
    await settle(companion, sandbox)
    assert "Priya" in (await last(sandbox, PARTNER))["text"], "passed on to their connector"
    assert await alerts(database) == []

    sam.send_text("Some days I WANT TO DIE")
    await settle(companion, sandbox)
    [reply] = sandbox.sent_to(PARTNER)[1:]
    assert CRISIS in reply["text"], "the crisis reply, and not the 'not understood' one"
    sam.send_voice(duration=3, caption="thinking about self-harm")
    await settle(companion, sandbox)
    assert CRISIS in (await last(sandbox, PARTNER))["text"]
    sam.edit(1, "I want to end it all")
    await settle(companion, sandbox)
    assert CRISIS in (await last(sandbox, PARTNER))["text"]

    found = [(a.rule, a.source, a.answer_id) for a in await alerts(database)]
    assert found == [
        ("phrase:want to die", "message", None),
        ("phrase:self harm", "message", None),
        ("phrase:end it all", "message", None),
    ]
    # One alert per match, and each message (not the edit) relayed to the connectors.
    assert len(sandbox.sent_to(CONNECTOR_ID)) == 1 + 3 + 3
    assert len(sandbox.sent_to(SECOND_CONNECTOR)) == 1 + 3 + 3


async def test_a_risky_reply_after_expiry_still_gets_help(companion, sandbox, database):
    from datetime import timedelta

    from sqlalchemy import update

    from storage.clock import utcnow
    from storage.models import Checkin

    await connectors(companion, sandbox, database)
    await enrol(database, PARTNER, name="Sam")
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), "2")
    async with database.transaction() as session:
        await session.execute(update(Checkin).values(closes_at=utcnow() - timedelta(seconds=1)))
    sam.send_text("i want to kill myself")
    await settle(companion, sandbox)
    assert CRISIS in (await last(sandbox, PARTNER))["text"]
    [alert] = await alerts(database)
    assert alert.source == "message" and alert.answer_id is None
