"""``/export`` in Telegram: a researcher chooses a period and the zip arrives as a document;
partners and connectors are refused, also when they forge the button's data."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from sqlalchemy import select

from bot.protocol import Research, load_protocol
from bot.research import parts
from prompts import DEFAULT_STUDY_PATH, Prompts
from storage.models import AuditEvent, Role
from tests.factories import enrol
from tests.support import data_for, running_companion, settle
from tests.tools_support import Given, add_checkin, day, force_export_parts

RESEARCHER, CONNECTOR, PARTNER = 9601, 9602, 9603
NOT_FOR_YOU = Prompts().render("guards/not_for_you")


async def test_a_researcher_gets_the_export_as_a_document(companion, sandbox, database):
    sam = await enrol(database, PARTNER, name="Sam")
    await add_checkin(database, sam.id, [Given("confidence", 4, day(3, 1))])
    await enrol(database, RESEARCHER, role=Role.RESEARCHER, name="Rita")
    rita = sandbox.user(RESEARCHER, "Rita")
    rita.send_command("export")
    await settle(companion, sandbox)
    [choose] = sandbox.sent_to(RESEARCHER)
    assert "Which period" in choose["text"]
    rita.press(choose, data_for(choose, "Everything"))
    await settle(companion, sandbox)
    await settle(companion, sandbox)
    document = sandbox.sent_to(RESEARCHER)[-1]
    assert "document" in document, document
    assert document["document"]["file_name"].startswith("research-export-")
    assert "1 answer, pseudonymised" in document["caption"]
    data = sandbox.files.get(document["document"]["file_id"]).data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("responses.csv").decode())))
        assert b"Sam" not in archive.read("participants.csv")
    assert [(r["question_id"], r["value"]) for r in rows] == [("confidence", "4")]
    async with database.sessions() as session:
        [event] = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "research.export"))
        ).scalars()
    assert event.detail["via"] == "telegram" and event.actor_person_id is not None

    # A made-up period is refused politely and makes nothing.
    before = len(sandbox.sent_to(RESEARCHER))
    rita.press(choose, "export:forever")
    await settle(companion, sandbox)
    assert len(sandbox.sent_to(RESEARCHER)) == before


async def test_partners_and_connectors_are_refused_even_with_forged_buttons(
    companion, sandbox, database
):
    await enrol(database, PARTNER, name="Sam")
    await enrol(database, CONNECTOR, role=Role.CONNECTOR, name="Priya")
    for user_id in (PARTNER, CONNECTOR):
        user = sandbox.user(user_id)
        user.send_command("export")
        await settle(companion, sandbox)
        assert [m["text"] for m in sandbox.sent_to(user_id)] == [NOT_FOR_YOU]
        pressed = user.press(sandbox.sent_to(user_id)[-1], "export:all")
        await settle(companion, sandbox)
        answer = sandbox.callback_answers[pressed["callback_query"]["id"]]
        assert answer.get("text") == Prompts().label("guards.not_for_you")
        assert len(sandbox.sent_to(user_id)) == 1, "no export, no other message"
    async with database.sessions() as session:
        events = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "research.export"))
        ).all()
    assert events == []


async def test_connectors_may_export_when_the_protocol_says_so(
    sandbox, database, database_url, tmp_path
):
    protocol = load_protocol(DEFAULT_STUDY_PATH)
    allowed = protocol.model_copy(update={"research": Research(connectors_may_export=True)})
    await enrol(database, CONNECTOR, role=Role.CONNECTOR, name="Priya")
    async with running_companion(sandbox, database_url, tmp_path / "data", allowed) as bot:
        priya = sandbox.user(CONNECTOR)
        priya.send_command("export")
        await settle(bot, sandbox)
        [choose] = sandbox.sent_to(CONNECTOR)
        assert "Which period" in choose["text"]
        priya.press(choose, data_for(choose, "Last 30 days"))
        await settle(bot, sandbox)
        await settle(bot, sandbox)
        assert "document" in sandbox.sent_to(CONNECTOR)[-1]


async def test_a_big_export_in_telegram_is_written_in_parts_by_helpers(
    companion, sandbox, database, monkeypatch
):
    """/export runs in a thread of the bot with its own event loop: its helper processes (the
    parts of a big responses.csv) start and are waited for from there too."""
    planned = force_export_parts(monkeypatch, cores=2)
    helpers: list[int] = []
    real_start = parts.start

    async def start(**job: Any) -> list[parts.Part]:
        helpers.append(len(job["ranges"]))
        return await real_start(**job)

    monkeypatch.setattr(parts, "start", start)
    sam = await enrol(database, PARTNER, name="Sam")
    for week in range(3):
        await add_checkin(database, sam.id, [Given("confidence", 2 + week, day(3, 1 + 7 * week))])
    await enrol(database, RESEARCHER, role=Role.RESEARCHER, name="Rita")
    rita = sandbox.user(RESEARCHER, "Rita")
    rita.send_command("export")
    await settle(companion, sandbox)
    [choose] = sandbox.sent_to(RESEARCHER)
    rita.press(choose, data_for(choose, "Everything"))
    await settle(companion, sandbox)
    await settle(companion, sandbox)
    document = sandbox.sent_to(RESEARCHER)[-1]
    assert "document" in document, document
    assert [len(p) for p in planned] == [2] and helpers == [2], (
        "in the running bot, two helpers wrote every part of responses.csv"
    )
    data = sandbox.files.get(document["document"]["file_id"]).data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("responses.csv").decode())))
    assert [r["value"] for r in rows] == ["2", "3", "4"]
