"""Retention: the protocol says how long each kind of data is kept; a pass deletes or clears
what is older, removes the files after the commit, and is one line of the audit log."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.protocol import ProtocolError, Retention, load_protocol
from bot.research.retention import apply_retention
from bot.tools.cli import app
from prompts import DEFAULT_STUDY_PATH
from storage.clock import utcnow
from storage.models import (
    Answer,
    AuditEvent,
    InboxStatus,
    InboxUpdate,
    OutboxMessage,
    RelayedMessage,
)
from tests.factories import enrol
from tests.tools_support import Given, add_checkin

POLICY = Retention(
    answers_days=400,
    voice_notes_days=100,
    relay_messages_days=10,
    exports_days=2,
    outbox_payloads_days=30,
    inbox_ids_days=30,
)


async def history(database, data_dir: Path):
    """An old answer (500 days), a voice note of 200 days, and one of today, with files."""
    now = utcnow()
    sam = await enrol(database, 6001)
    (data_dir / "voice").mkdir(parents=True)
    for name in ("old.ogg.enc", "mid.ogg.enc", "new.ogg.enc"):
        (data_dir / "voice" / name).write_bytes(b"sealed")
    await add_checkin(
        database,
        sam.id,
        [
            Given("confidence", 3, now - timedelta(days=500)),
            Given("reflection", None, now - timedelta(days=500), voice_path="voice/old.ogg.enc"),
        ],
    )
    await add_checkin(
        database,
        sam.id,
        [Given("reflection", None, now - timedelta(days=200), voice_path="voice/mid.ogg.enc")],
    )
    await add_checkin(
        database, sam.id, [Given("reflection", None, now, voice_path="voice/new.ogg.enc")]
    )
    async with database.transaction() as session:
        for key, kind, age in (("a", "reply", 40), ("b", "relay", 20), ("c", "reply", 1)):
            session.add(
                OutboxMessage(
                    idempotency_key=key,
                    chat_id=6001,
                    kind=kind,
                    payload={"text": "private words"},
                    status="sent",
                    created_at=now - timedelta(days=age),
                )
            )
        session.add(
            InboxUpdate(update_id=1, status=InboxStatus.DONE, received_at=now - timedelta(days=31))
        )
        session.add(InboxUpdate(update_id=2, status=InboxStatus.DONE, received_at=now))
    exports = data_dir / "exports"
    exports.mkdir()
    old_zip, new_zip = exports / "old.zip", exports / "new.zip"
    old_zip.write_bytes(b"zip")
    new_zip.write_bytes(b"zip")
    three_days_ago = (now - timedelta(days=3)).timestamp()
    os.utime(old_zip, (three_days_ago, three_days_ago))
    return sam


async def test_a_dry_run_counts_and_changes_nothing_then_apply_deletes(database, tmp_path):
    data = tmp_path / "data"
    await history(database, data)
    expected = {
        "answers": 2,
        "voice_notes": 1,
        "relay_messages": 1,
        "exports": 1,
        "outbox_payloads": 1,
        "inbox_ids": 1,
    }
    async with database.transaction() as session:
        dry = await apply_retention(session, POLICY, data_dir=data, now=utcnow(), dry_run=True)
    assert dry.counts == expected
    async with database.sessions() as session:
        assert len((await session.execute(select(Answer))).all()) == 4
    assert len(list(data.rglob("*.enc"))) == 3 and (data / "exports" / "old.zip").exists()

    async with database.transaction() as session:
        done = await apply_retention(session, POLICY, data_dir=data, now=utcnow())
    assert done.counts == expected
    async with database.sessions() as session:
        answers = list((await session.execute(select(Answer).order_by(Answer.id))).scalars())
        payloads = {
            m.idempotency_key: m.payload
            for m in (await session.execute(select(OutboxMessage))).scalars()
        }
        inbox = [u.update_id for u in (await session.execute(select(InboxUpdate))).scalars()]
        events = list(
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.action == "retention.apply")
                    .order_by(AuditEvent.id)
                )
            ).scalars()
        )
    assert [a.voice_path for a in answers] == [None, "voice/new.ogg.enc"]
    assert sorted(p.name for p in data.rglob("*.enc")) == ["new.ogg.enc"]
    assert payloads == {"a": {}, "b": {}, "c": {"text": "private words"}}
    assert inbox == [2]
    assert sorted(p.name for p in (data / "exports").iterdir()) == ["new.zip"]
    assert [e.detail["dry_run"] for e in events] == [True, False]
    assert events[1].detail["counts"] == expected

    async with database.transaction() as session:
        again = await apply_retention(session, POLICY, data_dir=data, now=utcnow())
    assert set(again.counts.values()) == {0}, "a second pass finds nothing left to do"


async def test_a_failed_pass_keeps_every_file(database, tmp_path):
    data = tmp_path / "data"
    await history(database, data)
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await apply_retention(session, POLICY, data_dir=data, now=utcnow())
            raise RuntimeError("the pass fails before it commits")
    assert len(list(data.rglob("*.enc"))) == 3


async def test_the_command_and_the_daily_pass(database, database_url, tmp_path, companion):
    data = tmp_path / "cli-data"
    await history(database, data)
    env = {"DATABASE_URL": database_url, "COMPANION_DATA_DIR": str(data)}
    dry = await asyncio.to_thread(
        CliRunner().invoke, app, ["retention", "apply", "--dry-run"], env=env
    )
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing was changed" in dry.stdout
    assert "     1  voice notes deleted (older than 365 days)" in dry.stdout
    assert "     0  answers deleted (kept for the whole study)" in dry.stdout
    real = await asyncio.to_thread(CliRunner().invoke, app, ["retention", "apply"], env=env)
    assert real.exit_code == 0 and "Retention applied" in real.stdout
    assert "     1  voice notes deleted (older than 365 days)" in real.stdout
    assert sorted(p.name for p in data.rglob("*.enc")) == ["mid.ogg.enc", "new.ogg.enc"]

    # The running bot has the daily pass among its scheduler's jobs, and it is audited.
    assert companion.apply_retention in companion.scheduler.daily
    await companion.apply_retention()
    async with database.sessions() as session:
        vias = [
            e.detail["via"]
            for e in (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.action == "retention.apply")
                )
            ).scalars()
        ]
    assert vias == ["cli", "cli", "scheduler"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("inbox_ids_days: 30", "inbox_ids_days: 1"), "retention.inbox_ids_days input should be"),
        (
            ("answers_days: null", "answers_days: 30"),
            "retention voice_notes_days cannot be longer than answers_days",
        ),
    ],
)
def test_the_protocol_explains_a_bad_retention_section(tmp_path, change, expected):
    path = tmp_path / "study.yaml"
    path.write_text(DEFAULT_STUDY_PATH.read_text(encoding="utf-8").replace(*change))
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"{path}:"), "it says which line"


async def test_journey_charts_and_pages_go_with_the_exports(database, tmp_path):
    """A /journey full page quotes the partner's reflections: like a /mydata zip, it is made
    to be sent once and is removed after ``exports_days``."""
    charts = tmp_path / "charts"
    charts.mkdir()
    old_page, old_chart, new_page = (
        charts / "legacy-old.pdf",
        charts / "old.png",
        charts / "legacy-new.pdf",
    )
    for path in (old_page, old_chart, new_page):
        path.write_bytes(b"their words")
    three_days_ago = (utcnow() - timedelta(days=3)).timestamp()
    for path in (old_page, old_chart):
        os.utime(path, (three_days_ago, three_days_ago))
    async with database.transaction() as session:
        done = await apply_retention(session, POLICY, data_dir=tmp_path, now=utcnow())
    assert done.counts["exports"] == 2
    assert sorted(p.name for p in charts.iterdir()) == ["legacy-new.pdf"]


async def test_relayed_messages_lose_their_text_after_their_days(database, tmp_path):
    """``relay_messages_days`` clears the kept message itself (its encrypted text), not only
    the outbox copies; the row stays, so a connector's reply to it still finds its partner."""
    sam = await enrol(database, 6101)
    now = utcnow()
    async with database.transaction() as session:
        for age in (100, 2):
            session.add(
                RelayedMessage(
                    person_id=sam.id,
                    direction="in",
                    text=f"sealed words {age}",
                    text_encrypted=True,
                    created_at=now - timedelta(days=age),
                )
            )
    async with database.transaction() as session:
        done = await apply_retention(session, POLICY, data_dir=tmp_path, now=now)
    assert done.counts["relay_messages"] == 1
    async with database.sessions() as session:
        kept = (
            (await session.execute(select(RelayedMessage.text).order_by(RelayedMessage.id)))
            .scalars()
            .all()
        )
    assert kept == [None, "sealed words 2"]
