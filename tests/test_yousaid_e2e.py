"""/yousaid end to end: a connector picks partners by a word in their reflections and by a
meeting, writes what changed, previews and sends; each partner gets it in their own chat, it
is kept linked to what they gave, and their /journey (and /journey full) lists it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from prompts import Prompts
from storage.clock import utcnow
from storage.models import ImpactEvent, ImpactRecipient, Involvement, Meeting, StaffDraft
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import count, data_for, settle
from tests.tools_support import Given, add_checkin

SAM, KIM, ALI = 9301, 9302, 9303
NOT_FOR_YOU = Prompts().label("guards.not_for_you")


async def test_you_said_we_did_reaches_the_right_partners_and_their_journey(
    companion, sandbox, database
) -> None:
    now = utcnow()
    # No quiet hours: what they are sent must arrive now, at whatever hour the test runs.
    sam = await enrol(database, SAM, name="Sam", group="north", quiet=None)
    kim = await enrol(database, KIM, name="Kim", group="north", quiet=None)
    await enrol(database, ALI, name="Ali", group="south")
    await add_checkin(
        database,
        kim.id,
        [Given("confidence", 3, now - timedelta(days=2)),
         Given("reflection", "The bus fare to meetings was a worry", now - timedelta(days=2))],
    )  # fmt: skip
    async with database.transaction() as session:
        meeting = Meeting(
            title="Planning day",
            starts_at=now - timedelta(days=5),
            length_minutes=90,
            timezone="Europe/London",
            place="Town hall",
            groups=[],
        )
        session.add(meeting)
        await session.flush()
        session.add(
            Involvement(
                person_id=sam.id, meeting_id=meeting.id, minutes=90, occurred_at=meeting.starts_at
            )
        )
        meeting_id = meeting.id

    priya = sandbox.user(CONNECTOR_ID, "Priya")

    async def latest() -> dict:
        await settle(companion, sandbox)
        return sandbox.sent_to(CONNECTOR_ID)[-1]

    # By a word in their reflections: only Kim wrote "bus".
    priya.send_command("yousaid")
    who = await latest()
    priya.press(who, data_for(who, "Those whose words mention"))
    await latest()
    priya.send_text("bus")
    ask = await latest()
    assert "That is 1 partner" in ask["text"]
    priya.send_text("We now pay bus fares on the day, in cash.")
    preview = await latest()
    assert "You said, we did" in preview["text"] and "bus fares" in preview["text"]
    assert sandbox.sent_to(KIM) == [], "nothing goes before the connector presses Send"
    priya.press(preview, data_for(preview, "Send it"))
    done = await latest()
    assert "Sent to 1 partner" in done["text"]
    async with database.sessions() as session:
        [recipient] = (await session.execute(select(ImpactRecipient))).scalars().all()
        event = await session.get(ImpactEvent, recipient.event_id)
    assert recipient.person_id == kim.id and recipient.answer_id is not None
    assert event is not None and event.selection == {"by": "word", "value": "bus"}

    # By a meeting: Sam came.
    priya.send_command("yousaid")
    who = await latest()
    priya.press(who, data_for(who, "Those who came to a meeting"))
    meetings = await latest()
    priya.press(meetings, f"ys:mm:{meeting_id}")
    await latest()
    priya.send_text("The report now has a page written by partners.")
    preview = await latest()
    priya.press(preview, "ys:ok")
    assert "Sent to 1 partner" in (await latest())["text"]
    assert await count(database, ImpactRecipient, ImpactRecipient.person_id == sam.id) == 1
    assert await count(database, ImpactRecipient, ImpactRecipient.meeting_id == meeting_id) == 1
    assert await count(database, StaffDraft) == 0

    # Kim's journey lists what changed, and /journey full is a one-page PDF to keep.
    kim_chat = sandbox.user(KIM, "Kim")
    kim_chat.send_command("journey")
    await settle(companion, sandbox, within=20)
    contribution = sandbox.sent_to(KIM)[-1]
    assert "What changed because of you" in contribution["text"]
    assert "We now pay bus fares on the day" in contribution["text"]
    kim_chat.send_command("journey", "full")
    await settle(companion, sandbox, within=20)
    document = sandbox.sent_to(KIM)[-1]
    assert "document" in document, document
    assert sandbox.files.get(document["document"]["file_id"]).data.startswith(b"%PDF")


async def test_yousaid_is_refused_to_partners_also_with_forged_buttons(
    companion, sandbox, database
) -> None:
    await enrol(database, SAM, name="Sam")
    sam = sandbox.user(SAM, "Sam")
    sam.send_command("yousaid")
    presses = [sam.press(1, "ys:g:*"), sam.press(1, "ys:ok")]
    await settle(companion, sandbox)
    assert [m["text"] for m in sandbox.sent_to(SAM)] == [Prompts().render("guards/not_for_you")]
    answers = [sandbox.callback_answers[p["callback_query"]["id"]].get("text") for p in presses]
    assert answers == [NOT_FOR_YOU, NOT_FOR_YOU]
    assert await count(database, ImpactEvent) == 0
