"""/mydata: one person's data, all of it and no one else's, as JSON and CSV in a zip."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import select

from bot.privacy.mydata import collect, export_person
from prompts import Prompts
from storage.models import (
    AuditEvent,
    OutboxMessage,
    OutboxStatus,
    SafeguardingAlert,
)
from tests.factories import enrol
from tests.tools_support import (
    CIPHER,
    Given,
    add_checkin,
    day,
    running_companion,
    settle,
)

PROMPTS = Prompts()


async def two_partners_with_history(database):
    sam = await enrol(database, 8001, name="Sam")
    kim = await enrol(database, 8002, name="Kim")
    await add_checkin(
        database,
        sam.id,
        [
            Given("confidence", 2, day(3, 3), superseded=True),
            Given("confidence", 3, day(3, 3, 13)),
            Given("reflection", "Sam's secret reflection", day(3, 3)),
        ],
    )
    kim_checkin = await add_checkin(
        database, kim.id, [Given("reflection", "Kim's private words", day(3, 4))]
    )
    async with database.transaction() as session:
        session.add(SafeguardingAlert(person_id=sam.id, rule="phrase", source="answer"))
        session.add(SafeguardingAlert(person_id=kim.id, rule="phrase", source="message"))
        session.add(
            AuditEvent(
                action="alert.acknowledged",
                actor_person_id=999,
                detail={"person_id": sam.id, "by_person_id": 999},
            )
        )
        session.add(AuditEvent(action="person.unreachable", detail={"person": kim.pseudonym}))
        session.add(
            OutboxMessage(
                idempotency_key="to-sam",
                chat_id=8001,
                person_id=sam.id,
                kind="reply",
                payload={"text": "Hello Sam"},
                status=OutboxStatus.SENT,
            )
        )
        session.add(
            OutboxMessage(
                idempotency_key="to-kim",
                chat_id=8002,
                person_id=kim.id,
                kind="reply",
                payload={"text": "Hello Kim"},
                status=OutboxStatus.SENT,
            )
        )
    return sam, kim, kim_checkin


def _leaves(value: object) -> Iterator[object]:
    """Every value anywhere in a nested export that is not a dict or a list."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _numbers_in(value: object) -> Iterator[int]:
    """Every integer anywhere in a nested export, strings of digits included."""
    for leaf in _leaves(value):
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            yield leaf
        elif isinstance(leaf, str) and leaf.isascii() and leaf.isdigit():
            yield int(leaf)


def _is_timestamp(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


async def test_collect_holds_everything_about_one_person_and_nothing_of_others(database):
    sam, kim, _ = await two_partners_with_history(database)
    async with database.sessions() as session:
        tables = await collect(session, sam, CIPHER)
    dumped = json.dumps(tables)
    for foreign in ("Kim", kim.pseudonym, "Kim's private words"):
        assert foreign not in dumped, f"{foreign!r} leaked into Sam's export"
    # Ids are looked for as values and inside every text but a timestamp, whose microseconds
    # are now and then "...999".
    numbers = set(_numbers_in(tables))
    texts = [t for t in _leaves(tables) if isinstance(t, str) and not _is_timestamp(t)]
    for foreign_id in (8002, 999):
        assert foreign_id not in numbers, f"{foreign_id} leaked into Sam's export"
        assert not [t for t in texts if str(foreign_id) in t], f"{foreign_id} leaked as text"
    assert tables["telegram_identity"][0]["telegram_user_id"] == 8001
    assert tables["telegram_identity"][0]["preferred_name"] == "Sam"
    assert len(tables["answers"]) == 3, "history included"
    assert sum(1 for a in tables["answers"] if a["superseded_at"]) == 1
    assert "Sam's secret reflection" in [a["value_text"] for a in tables["answers"]]
    assert {c["item_key"] for c in tables["consent_decisions"]} == {
        "take_part",
        "quote_anonymously",
        "credit_by_name",
    }
    assert tables["support_checks"] == [
        {
            "noticed_at": tables["support_checks"][0]["noticed_at"],
            "reason": "phrase",
            "noticed_in": "answer",
            "answer_id": None,
            "team_followed_up_at": None,
        }
    ]
    assert [e["action"] for e in tables["audit_events"]] == ["alert.acknowledged"]
    assert tables["audit_events"][0]["by_you"] is False
    assert "by_person_id" not in tables["audit_events"][0]["detail"]
    assert [m["text"] for m in tables["messages_to_you"]] == ["Hello Sam"]
    assert tables["partner_profile"][0]["timezone"] == "Europe/London"


async def test_the_export_zip_has_json_csv_readme_and_is_audited(database, tmp_path):
    sam, _, _ = await two_partners_with_history(database)
    voice = tmp_path / "voice" / "sam.oga"
    voice.parent.mkdir()
    voice.write_bytes(b"OggS fake audio")
    await add_checkin(
        database, sam.id, [Given("reflection", None, day(4, 1), voice_path="voice/sam.oga")]
    )
    now = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)
    async with database.transaction() as session:
        export = await export_person(
            session,
            sam,
            cipher=CIPHER,
            prompts=PROMPTS,
            data_dir=tmp_path,
            study_name="DeStress Involvement",
            now=now,
        )
    assert export.relative_path.startswith(f"exports/{sam.pseudonym}-")
    assert export.filename == "my-data-2025-05-01.zip"
    with zipfile.ZipFile(export.path) as archive:
        names = set(archive.namelist())
        assert {"README.txt", "my_data.json", "answers.csv", "checkins.csv"} <= names
        assert "voice/sam.oga" in names
        data = json.loads(archive.read("my_data.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("answers.csv").decode("utf-8-sig"))))
        readme = archive.read("README.txt").decode()
    assert data["about"]["pseudonym"] == sam.pseudonym
    assert len(data["tables"]["answers"]) == 4
    assert {r["question_key"] for r in rows} == {"confidence", "reflection"}
    assert "Sam's secret reflection" in {r["value_text"] for r in rows}
    assert "answers.csv  your answers" in readme
    async with database.sessions() as session:
        audit = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "data.access"))
        ).scalar_one()
    assert audit.actor_person_id == sam.id and audit.detail["rows"]["answers"] == 4


async def test_a_new_export_replaces_the_old_file(database, tmp_path):
    sam = await enrol(database, 8003)
    paths = []
    for minute in (1, 2):
        async with database.transaction() as session:
            export = await export_person(
                session,
                sam,
                cipher=CIPHER,
                prompts=PROMPTS,
                data_dir=tmp_path,
                study_name="S",
                now=datetime(2025, 5, 1, 9, minute, tzinfo=UTC),
            )
        paths.append(export.path)
    assert not paths[0].exists() and paths[1].exists()


async def test_mydata_sends_a_zip_document_through_the_sandbox(
    sandbox, database, database_url, tmp_path
):
    await two_partners_with_history(database)
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        sandbox.user(8001, "Sam").send_command("mydata")
        [message] = await sandbox.wait_for_messages(8001, 1, timeout=10)
        await settle(companion, sandbox)
    assert "document" in message, message
    assert message["document"]["file_name"].startswith("my-data-")
    assert "copy of all that this bot holds about you" in message["caption"]
    stored = sandbox.files.get(message["document"]["file_id"])
    with zipfile.ZipFile(io.BytesIO(stored.data)) as archive:
        data = json.loads(archive.read("my_data.json"))
        answers_csv = archive.read("answers.csv").decode("utf-8-sig")
    assert "Sam's secret reflection" in answers_csv
    assert "Kim's private words" not in json.dumps(data)
    assert data["tables"]["telegram_identity"][0]["telegram_user_id"] == 8001
    async with database.sessions() as session:
        actions = (await session.execute(select(AuditEvent.action))).scalars().all()
    assert "data.access" in actions
