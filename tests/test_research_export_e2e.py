"""The research export end to end: real check-ins through the sandbox, then an export that holds
the answers under stable pseudonyms, no identifiers anywhere, and a codebook for every column;
its filters; and one clear sentence for every bad input."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from bot.research.export import ExportOptions, make_window, record_export, write_export
from bot.tools.cli import app
from prompts import DEFAULT_STUDY_PATH, Prompts
from storage.models import (
    Answer,
    AuditEvent,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    PersonStatus,
    TelegramIdentity,
)
from tests.factories import enrol
from tests.support import SECRET, data_for, settle
from tests.tools_support import Given, add_checkin, day, protocol_with

ZED, QUILL = 987_650_001, 987_650_002
NAMES = {ZED: ("Zebedee", "Zeb the Brave", "zebedee_tg"), QUILL: ("Quillon", "Quill", "quill_tg")}


async def press(companion, sandbox, user_id: int, label: str) -> None:
    message = sandbox.sent_to(user_id)[-1]
    sandbox.user(user_id).press(message, data_for(message, label))
    await settle(companion, sandbox)


async def enrol_named(database, user_id: int, group: str):
    first, chosen, username = NAMES[user_id]
    person = await enrol(database, user_id, name=first, group=group)
    async with database.transaction() as session:
        await session.execute(
            update(TelegramIdentity)
            .where(TelegramIdentity.person_id == person.id)
            .values(preferred_name=chosen, username=username)
        )
    return person


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def table(files: dict[str, bytes], name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(files[f"{name}.csv"].decode("utf-8"))))


async def export_to(companion, out: Path, **options) -> dict[str, bytes]:
    result = await write_export(
        companion.db,
        companion.protocol,
        companion.prompts,
        ExportOptions(out=out, **options),
        secret=SECRET,
        data_dir=companion.settings.companion_data_dir,
        study_file=DEFAULT_STUDY_PATH,
    )
    async with companion.db.transaction() as session:
        record_export(session, result, via="test")
    return read_zip(out)


async def test_an_export_after_real_checkins_has_the_answers_under_stable_pseudonyms(
    companion, sandbox, database, tmp_path
):
    zed = await enrol_named(database, ZED, "north")
    await enrol_named(database, QUILL, "south")
    # Zebedee: confidence 2, writes what would help, 4, 5, and a voice note to reflect.
    sandbox.user(ZED, "Zebedee", username="zebedee_tg").send_command("checkin")
    await settle(companion, sandbox)
    await press(companion, sandbox, ZED, "2")
    sandbox.user(ZED).send_text("More time to read the papers.")
    await settle(companion, sandbox)
    await press(companion, sandbox, ZED, "4")
    await press(companion, sandbox, ZED, "5")
    audio = b"OggS" + b"partner-voice-bytes" * 50
    sandbox.user(ZED).send_voice(duration=6, data=audio)
    await settle(companion, sandbox)
    # Quillon: 4, 3, 3 and Skip.
    sandbox.user(QUILL, "Quillon", username="quill_tg").send_command("checkin")
    await settle(companion, sandbox)
    for label in ("4", "3", "3", "Skip"):
        await press(companion, sandbox, QUILL, label)
    async with database.sessions() as session:
        stored = list((await session.execute(select(Answer).order_by(Answer.id))).scalars())
    assert len(stored) == 9 and all(a.superseded_at is None for a in stored)

    files = await export_to(companion, tmp_path / "one.zip")
    for name in (
        "responses.csv",
        "answer_history.csv",
        "checkins.csv",
        "participants.csv",
        "meetings.csv",
        "attendance.csv",
        "involvement.csv",
        "datapackage.json",
        "codebook.csv",
        "README.txt",
        "SHA256SUMS",
        "protocol/study.yaml",
    ):
        assert name in files, name
    responses = table(files, "responses")
    assert len(responses) == 9, "one row per answer in force"
    pseudonyms = {r["pseudonym"] for r in responses}
    assert len(pseudonyms) == 2 and all(p.startswith("R-") for p in pseudonyms)
    assert zed.pseudonym not in pseudonyms, "not the bot's internal code either"
    zeds = [r for r in responses if r["group"] == "north"]
    assert [(r["question_id"], r["value"], r["value_label"]) for r in zeds] == [
        ("confidence", "2", "2"),
        ("confidence_help", "", ""),
        ("valued", "4", "4"),
        ("part_of_team", "5", "5 = Very much"),
        ("reflection", "", ""),
    ]
    assert zeds[0]["question_wording"].startswith("How confident do you feel")
    assert len(zeds[0]["wording_version"]) == 8
    assert zeds[1]["free_text"] == "More time to read the papers."
    assert zeds[0]["checkin_kind"] == "partner" and zeds[0]["planned_local_date"]
    assert zeds[0]["answered_at_utc"].endswith("Z")
    assert zeds[0]["answered_at_local"][-6:] in ("+00:00", "+01:00")
    assert all(r["seconds_to_answer"].isdigit() for r in responses)
    voice = zeds[-1]
    assert voice["voice_seconds"] == "6" and voice["voice_file"].startswith("voice/R-")
    assert files[voice["voice_file"]] == audio, "the voice note, decrypted"
    quills = [r for r in responses if r["group"] == "south"]
    assert quills[-1]["skipped"] == "true" and quills[0]["value"] == "4"

    # Stable: a second export gives the same pseudonyms to the same answers.
    again = await export_to(companion, tmp_path / "two.zip")
    assert [(r["answer_id"], r["pseudonym"]) for r in table(again, "responses")] == [
        (r["answer_id"], r["pseudonym"]) for r in responses
    ]

    # No identifier anywhere: Telegram ids, usernames, first names and chosen names.
    forbidden = [str(ZED), str(QUILL)] + [word for names in NAMES.values() for word in names]
    for name, data in files.items():
        for word in forbidden:
            assert word.encode() not in data, f"{word!r} is in {name}"
            assert word.lower().encode() not in data.lower(), f"{word!r} is in {name}"

    # Every member is in SHA256SUMS with its right checksum.
    sums = dict(
        reversed(line.split("  ", 1)) for line in files["SHA256SUMS"].decode().splitlines()
    )
    assert set(sums) == set(files) - {"SHA256SUMS"}
    for name, sha in sums.items():
        assert hashlib.sha256(files[name]).hexdigest() == sha, name

    # The export is audited with who ran it, filters, counts and checksum.
    async with database.sessions() as session:
        events = list(
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.action == "research.export")
                )
            ).scalars()
        )
    assert len(events) == 2
    assert events[0].detail["rows"]["responses"] == 9
    assert (
        events[0].detail["sha256"]
        == hashlib.sha256((tmp_path / "one.zip").read_bytes()).hexdigest()
    )


async def test_the_codebook_describes_every_column_and_the_package_is_valid(
    companion, sandbox, database, tmp_path
):
    sam = await enrol(database, 5001, group="north")
    await add_checkin(
        database,
        sam.id,
        [
            Given("confidence", 3, day(3, 1)),
            Given("relationships", "better", day(3, 1, 13)),
            Given("reflection", "A good week", day(3, 1, 14)),
        ],
    )
    files = await export_to(companion, tmp_path / "export.zip")
    package = json.loads(files["datapackage.json"])
    codebook = table(files, "codebook")
    described = {(row["file"], row["column"]) for row in codebook}
    for resource in package["resources"]:
        header = files[resource["path"]].decode("utf-8").splitlines()[0].split(",")
        fields = resource["schema"]["fields"]
        assert [f["name"] for f in fields] == header, resource["name"]
        for field in fields:
            assert field["description"].strip(), (resource["name"], field["name"])
            if resource["name"] != "codebook":
                assert (resource["path"], field["name"]) in described
    status = next(
        f
        for r in package["resources"]
        if r["name"] == "checkins"
        for f in r["schema"]["fields"]
        if f["name"] == "status"
    )
    assert {"value": "completed", "label": "Completed"} in status["categories"]
    labels = table(files, "value_labels")
    assert {"question_id": "confidence", "value": "1", "label": "1 = Not at all confident"} in (
        labels
    )
    assert {"question_id": "relationships", "value": "better", "label": "Better"} in labels or any(
        r["question_id"] == "relationships" and r["value"] == "better" for r in labels
    )

    # The reference validator accepts the package and its data.
    frictionless = pytest.importorskip("frictionless")
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(tmp_path / "export.zip") as archive:
        archive.extractall(folder)
    report = frictionless.validate(str(folder / "datapackage.json"))
    assert report.valid, report.flatten(["resourcePath", "rowNumber", "fieldName", "type", "note"])


async def test_filters_keep_only_what_was_asked(companion, database, tmp_path):
    north = await enrol(database, 5101, group="north")
    south = await enrol(database, 5102, group="south")
    await add_checkin(database, north.id, [Given("confidence", 2, day(3, 1))])
    await add_checkin(
        database,
        north.id,
        [
            Given("confidence", 4, day(3, 10)),
            Given("reflection", "Private words", day(3, 10, 13)),
            Given("reflection", None, day(3, 10, 14), voice_path="voice/n.ogg"),
        ],
    )
    await add_checkin(database, south.id, [Given("confidence", 5, day(3, 20))])
    voice = companion.settings.companion_data_dir / "voice" / "n.ogg"
    voice.parent.mkdir(parents=True, exist_ok=True)
    voice.write_bytes(b"OggS-north")
    protocol = companion.protocol

    from datetime import date

    dated = await export_to(
        companion,
        tmp_path / "dated.zip",
        window=make_window(protocol, since=date(2025, 3, 5), until=date(2025, 3, 10)),
    )
    assert [r["value"] for r in table(dated, "responses")] == ["4", "", ""]
    assert {r["checkin_id"] for r in table(dated, "checkins")} == {"2"}

    grouped = await export_to(
        companion, tmp_path / "grouped.zip", window=make_window(protocol, groups=["south"])
    )
    assert [r["value"] for r in table(grouped, "responses")] == ["5"]
    assert [r["group"] for r in table(grouped, "participants")] == ["south"]

    bare = await export_to(companion, tmp_path / "bare.zip", free_text=False, voice=False)
    header = bare["responses.csv"].decode().splitlines()[0].split(",")
    assert "free_text" not in header and "voice_file" not in header
    assert b"Private words" not in b"".join(bare.values())
    assert not [n for n in bare if n.startswith("voice/")]
    assert "--no-free-text" in bare["README.txt"].decode()
    full = await export_to(companion, tmp_path / "full.zip")
    assert (
        b"Private words" in full["responses.csv"]
        and full[
            "voice/"
            + next(
                r["voice_file"] for r in table(full, "responses") if r["voice_file"]
            ).removeprefix("voice/")
        ]
        == b"OggS-north"
    )

    xlsx = await export_to(companion, tmp_path / "sheets.zip", format="xlsx")
    assert "export.xlsx" in xlsx and "responses.csv" not in xlsx
    with zipfile.ZipFile(io.BytesIO(xlsx["export.xlsx"])) as book:
        workbook = book.read("xl/workbook.xml").decode()
        strings = (
            book.read("xl/sharedStrings.xml").decode()
            if "xl/sharedStrings.xml" in (book.namelist())
            else ""
        )
        sheets = "".join(
            book.read(n).decode() for n in book.namelist() if n.startswith("xl/worksheets/")
        )
        responses = book.read("xl/worksheets/sheet1.xml").decode()
    for sheet in ("responses", "checkins", "participants", "codebook"):
        assert f'name="{sheet}"' in workbook
    assert '<sheet name="responses" sheetId="1"' in workbook
    assert "Private words" in strings + sheets
    # An integer column's cells are numbers (no t="..."), as the codebook types them.
    assert re.search(r'<c r="A2"( s="\d+")?><v>\d+</v></c>', responses), responses[:600]
    assert re.search(r'<c r="B2"[^>]* t="(inlineStr|s)"', responses), "the pseudonym is text"


async def test_withdrawn_partners_kept_data_is_marked(companion, database, tmp_path):
    gone = await enrol(database, 5201, group="north", status=PersonStatus.WITHDRAWN)
    await add_checkin(database, gone.id, [Given("confidence", 3, day(3, 1))])
    files = await export_to(companion, tmp_path / "w.zip")
    [row] = table(files, "responses")
    assert row["partner_withdrawn"] == "true"
    [person] = table(files, "participants")
    assert person["state"] == "withdrawn"


def run_cli(tmp_path: Path, database_url: str, *args: str, key: str | None = SECRET):
    env = {
        "DATABASE_URL": database_url,
        "COMPANION_DATA_DIR": str(tmp_path / "data"),
        "COMPANION_SECRET_KEY": key or "",
        "COMPANION_STUDY": str(DEFAULT_STUDY_PATH),
    }
    return CliRunner().invoke(app, ["export", *args], env=env)


@pytest.mark.parametrize(
    ("args", "key", "expected"),
    [
        (["--since", "31/03/2025"], SECRET, "--since must be a date like 2026-03-31"),
        (["--until", "2025-02-30"], SECRET, "--until must be a date like"),
        (["--since", "2025-04-01", "--until", "2025-03-01"], SECRET, "must not be after"),
        (["--group", "narnia"], SECRET, "There is no group 'narnia'"),
        (["--format", "ods"], SECRET, "--format must be csv or xlsx"),
        (["--jobs", "0"], SECRET, "--jobs must be 1 or more (it is 0)"),
        ([], None, "COMPANION_SECRET_KEY is not set"),
    ],
)
async def test_bad_inputs_get_one_clear_sentence_and_no_file(
    database, database_url, tmp_path, *, args, key, expected
):
    out = tmp_path / "out.zip"
    result = run_cli(tmp_path, database_url, "--out", str(out), *args, key=key)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob(".*partial"))


async def test_an_unwritable_path_is_refused_plainly(database, database_url, tmp_path):
    missing = tmp_path / "nowhere" / "out.zip"
    result = run_cli(tmp_path, database_url, "--out", str(missing))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Cannot write {missing}: the folder {missing.parent} does not exist."
    )
    result = run_cli(tmp_path, database_url, "--out", str(tmp_path / "out.csv"))
    assert "must be a file name ending in .zip" in result.stderr


async def test_the_command_writes_the_zip_and_says_so(database, database_url, tmp_path):
    sam = await enrol(database, 5301, group="north")
    await add_checkin(database, sam.id, [Given("confidence", 3, day(3, 1))])
    out = tmp_path / "study.zip"
    result = await asyncio.to_thread(
        run_cli, tmp_path, database_url, "--out", str(out), "--group", "north"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Wrote {out} (")
    assert [r["value"] for r in table(read_zip(out), "responses")] == ["3"]
    assert Prompts().label("research.cli.progress", table="responses") == "Exporting responses"
    assert protocol_with().min_group_size == 5


async def test_times_seconds_and_reminders_are_exact_across_a_clock_change(
    companion, database, tmp_path
):
    """The database formats the times: to the second (cut, not rounded), in UTC with a Z and
    in the partner's zone across the spring clock change, with the seconds each answer took and
    whether the reminder had gone out by then."""
    sam = await enrol(database, 987_650_003, name="Sam", timezone="Europe/London")
    due = datetime(2025, 3, 30, 0, 30, tzinfo=UTC)  # London moves to BST at 01:00 UTC
    checkin_id = await add_checkin(
        database,
        sam.id,
        [
            Given("confidence", 3, due + timedelta(seconds=29, microseconds=999_600)),
            Given("valued", 4, due + timedelta(seconds=59, microseconds=400_000)),
            Given("part_of_team", 2, datetime(2025, 3, 30, 1, 0, 5, tzinfo=UTC)),
        ],
        when=due,
    )
    async with database.transaction() as session:
        session.add(
            Occurrence(
                key=f"checkin_nudge:{checkin_id}",
                kind=OccurrenceKind.CHECKIN_NUDGE,
                person_id=sam.id,
                checkin_id=checkin_id,
                due_at=due + timedelta(seconds=50),
                window_ends_at=due + timedelta(hours=1),
                status=OccurrenceStatus.DONE,
                done_at=due + timedelta(seconds=50),
            )
        )
    files = await export_to(companion, tmp_path / "times.zip")
    rows = {r["question_id"]: r for r in table(files, "responses")}
    first, second, third = rows["confidence"], rows["valued"], rows["part_of_team"]
    assert first["answered_at_utc"] == "2025-03-30T00:30:29Z"
    assert first["answered_at_local"] == "2025-03-30T00:30:29+00:00"
    assert third["answered_at_utc"] == "2025-03-30T01:00:05Z"
    assert third["answered_at_local"] == "2025-03-30T02:00:05+01:00"
    assert first["planned_local_date"] == "2025-03-30"
    # 29.9996 s is 29 whole seconds; the second answer took 59.4 - 29.9996 = 29.4 s
    assert [first["seconds_to_answer"], second["seconds_to_answer"]] == ["29", "29"]
    assert third["seconds_to_answer"] == "1745"  # 01:00:05 - 00:30:59.4
    assert [r["reminder_sent"] for r in (first, second, third)] == ["false", "true", "true"]
    (checkin,) = [c for c in table(files, "checkins") if c["checkin_id"] == str(checkin_id)]
    assert checkin["due_at_utc"] == "2025-03-30T00:30:00Z"
    assert checkin["reminder_sent"] == "true"
