"""A big export's responses.csv written in parts, with helper processes (bot.research.parts).

The split is forced on a small study (any size counts as big, three cores): the parts must add
up to exactly the file one process writes, on SQLite and on PostgreSQL, and a helper that fails
must fail the export plainly and leave nothing behind.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from datetime import timedelta
from typing import Any

import pytest

from bot.research import export, parts, reading
from bot.research.export import ExportError, ExportOptions, write_export
from bot.research.rows import answer_csv
from storage.db import Database
from storage.queries import research as q
from tests.factories import enrol
from tests.support import SECRET
from tests.test_research_export_e2e import export_to
from tests.tools_support import Given, add_checkin, day, force_export_parts


async def a_small_study(database) -> None:
    """Three partners, four check-ins each: scales, a choice, encrypted words, a voice note."""
    for n in range(3):
        person = await enrol(database, 987_660_000 + n, name=f"P{n}", group="north")
        for week in range(4):
            at = day(3, 3 + 7 * week) + timedelta(minutes=n)
            await add_checkin(
                database,
                person.id,
                [
                    Given("confidence", 1 + (n + week) % 5, at),
                    Given("valued", 3, at + timedelta(seconds=31), superseded=week == 1),
                    Given("valued", 4, at + timedelta(seconds=45)),
                    Given("relationships", "better", at + timedelta(seconds=50)),
                    Given("reflection", f"Week {week}, in my own words, from {n}.", at),
                    Given("voice", None, at + timedelta(minutes=2), voice_path=f"v/{n}-{week}"),
                ],
            )


async def test_the_parts_add_up_to_the_file_one_process_writes(
    companion, database, tmp_path, monkeypatch
):
    await a_small_study(database)
    folder = tmp_path / "out"
    folder.mkdir()
    whole = await export_to(companion, folder / "whole.zip")
    used = force_export_parts(monkeypatch, cores=3)
    split = await export_to(companion, folder / "split.zip")
    assert len(used[0]) == 3, "three parts: the export's own and two helpers'"
    assert split["responses.csv"] == whole["responses.csv"]
    assert split["responses.csv"].count(b"\n") == 1 + 3 * 4 * 6 - 3  # one answer was changed
    assert "Week 2, in my own words, from 1." in split["responses.csv"].decode()
    for name in whole:
        if name not in ("README.txt", "datapackage.json", "SHA256SUMS"):  # these say when
            assert split[name] == whole[name], name
    assert sorted(p.name for p in folder.iterdir()) == ["split.zip", "whole.zip"], "no part left"
    alone = await export_to(companion, folder / "alone.zip", jobs=1)
    assert used[-1] == [], "--jobs 1: no helper"
    assert alone["responses.csv"] == whole["responses.csv"]
    # A database no other connection can see (SQLite in memory) is read through the session:
    # the rows SQLAlchemy gives make the same files as the driver's own.
    monkeypatch.setattr(Database, "plain_driver_target", lambda self: None)
    session = await export_to(companion, folder / "session.zip")
    for name in whole:
        if name not in ("README.txt", "datapackage.json", "SHA256SUMS"):
            assert session[name] == whole[name], name


async def test_a_helper_that_fails_fails_the_export_plainly_and_leaves_nothing(
    companion, database, tmp_path, monkeypatch
):
    await a_small_study(database)
    force_export_parts(monkeypatch, cores=2)
    monkeypatch.setattr(parts, "HELPER_MODULE", "bot.research.no_such_helper")
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(ExportError) as failed:
        await export_to(companion, folder / "broken.zip")
    assert failed.value.reason == "part_failed"
    sentence = failed.value.sentence(companion.prompts)
    assert "no_such_helper" in sentence and "running the export again is safe" in sentence
    assert list(folder.iterdir()) == [], "no zip, no partial file, no part file"


def test_the_plan_splits_only_big_exports_into_non_empty_ranges(monkeypatch):
    monkeypatch.setattr(parts, "PART_MIN_ANSWERS", 100)
    assert parts.plan(q.AnswerSpan(100, 1, 50), cores=2) == [], "not above the threshold"
    # the export's own part (first) at 0.6 of a helper's: 19 and 31 check-in ids
    assert parts.plan(q.AnswerSpan(101, 1, 50), cores=2, own_share=0.6) == [(1, 20), (20, 51)]
    assert parts.plan(q.AnswerSpan(101, 1, 50), cores=2) == [(1, 26), (26, 51)], "all alike"
    assert parts.plan(q.AnswerSpan(500, 7, 7), cores=4) == [], "one check-in: one process"
    # four check-in ids on three cores: no empty range
    assert parts.plan(q.AnswerSpan(500, 1, 4), cores=3) == [(1, 2), (2, 4), (4, 5)]
    assert parts.plan(q.AnswerSpan(500, 1, 2), cores=3) == [(1, 2), (2, 3)]
    assert parts.plan(q.AnswerSpan(10**6, 1, 10**5), cores=16, own_share=0.6) == [
        (1, 16668),
        (16668, 44445),
        (44445, 72223),
        (72223, 100001),
    ], "at most four parts"


def test_a_helper_reaches_postgresql_with_the_urls_own_options():
    """``?ssl=`` is asyncpg's; ``prepared_statement_cache_size`` is SQLAlchemy's and must not
    reach the server as a setting."""
    db = Database(
        "postgresql+asyncpg://u:secret@db.example:6543/study"
        "?ssl=require&prepared_statement_cache_size=0"
    )
    driver, keywords = db.plain_driver_target() or ("", {})
    assert driver == "postgresql"
    assert keywords == {
        "host": "db.example",
        "port": 6543,
        "user": "u",
        "password": "secret",
        "database": "study",
        "ssl": "require",
    }
    assert Database("sqlite+aiosqlite:///:memory:").plain_driver_target() is None


async def test_progress_counts_the_exports_own_part_and_then_each_helpers_up_to_the_total(
    companion, database, tmp_path, monkeypatch
):
    await a_small_study(database)
    force_export_parts(monkeypatch, cores=3)
    reports: list[tuple[int, int | None]] = []
    await write_export(
        companion.db,
        companion.protocol,
        companion.prompts,
        ExportOptions(out=tmp_path / "progress.zip"),
        secret=SECRET,
        data_dir=companion.settings.companion_data_dir,
        progress=lambda table, done, total: (
            reports.append((done, total)) if table == "responses" else None
        ),
    )
    answers = 3 * 4 * 6 - 3  # one answer in each of three check-ins was changed
    assert [total for _, total in reports] == [answers] * len(reports)
    done = [d for d, _ in reports]
    assert done == sorted(done) and done[-1] == answers
    assert len(done) >= 3, "the export's own part, then each of the two helpers' parts"


async def test_a_failure_in_the_exports_own_part_stops_the_helpers_and_leaves_nothing(
    companion, database, tmp_path, monkeypatch
):
    await a_small_study(database)
    force_export_parts(monkeypatch, cores=3)
    started: list[parts.Part] = []
    real_start = parts.start

    async def start(**job: Any) -> list[parts.Part]:
        started.extend(await real_start(**job))
        return started

    def broken_rows(ctx: Any, rows: Any, *, history: bool) -> Any:
        if not history:  # the export's own part of responses.csv
            raise OSError("disk full")
        return answer_csv(ctx, rows, history=history)

    monkeypatch.setattr(parts, "start", start)
    monkeypatch.setattr(export, "answer_csv", broken_rows)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(OSError, match="disk full"):
        await export_to(companion, folder / "broken.zip")
    assert len(started) == 2, "two helpers had started"
    assert all(p.process.returncode is not None for p in started), "every helper is reaped"
    assert not any(p.path.parent.exists() for p in started), "no part folder is left"
    assert list(folder.iterdir()) == [], "no zip, no partial file"


async def test_parts_are_private_to_their_owner(companion, database, tmp_path, monkeypatch):
    """A part holds partners' decrypted words until it is appended: its folder and file are
    readable by the export's owner only."""
    await a_small_study(database)
    force_export_parts(monkeypatch, cores=3)
    modes: list[tuple[int, int]] = []
    real_finish = parts.finish

    async def finish(part: parts.Part) -> parts.Written:
        written = await real_finish(part)
        modes.append((part.path.stat().st_mode & 0o777, part.path.parent.stat().st_mode & 0o777))
        return written

    monkeypatch.setattr(parts, "finish", finish)
    folder = tmp_path / "out"
    folder.mkdir()
    await export_to(companion, folder / "private.zip")
    assert modes == [(0o600, 0o700), (0o600, 0o700)], "two helpers, two parts"
    assert [p.name for p in folder.iterdir()] == ["private.zip"]


def test_big_tables_read_sqlite_from_a_folder_with_a_question_mark_in_its_name(tmp_path):
    """SQLite is opened read-only by URI, where a bare "?" or "#" would cut the path."""
    odd = tmp_path / "study?2025#north"
    odd.mkdir()
    path = odd / "companion.db"
    with sqlite3.connect(path) as made:
        made.execute("CREATE TABLE t (n INTEGER)")
        made.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    read = reading.sqlite_batches(str(path), "SELECT n FROM t")
    assert [list(b) for b in read] == [[(1,), (2,)]]


async def _helper(script: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_part_is_appended_while_its_helper_is_still_writing_it(tmp_path):
    """The export compresses a part as it grows, so little is left to do when the helper ends;
    a helper that has not made its file yet is waited for."""
    out = tmp_path / "part0.csv"
    script = (
        "import json, sys, time\n"
        "time.sleep(0.2)\n"  # the file does not exist yet when the export first looks
        "f = open(sys.argv[1], 'w')\n"
        "f.write('1,first\\n'); f.flush()\n"
        "sys.stdin.readline()\n"  # wait for the test to say it has seen the first row
        "f.write('2,second\\n'); f.close()\n"
        "print(json.dumps({'rows': 2, 'voice_files': [], 'peak_mb': None}))\n"
    )
    process = await _helper(script, str(out))
    assert process.stdin is not None
    received: list[bytes] = []

    def write(chunk: bytes) -> None:
        received.append(chunk)
        if b"first" in chunk and process.returncode is None:
            process.stdin.write(b"go on\n")  # type: ignore[union-attr]

    written = await asyncio.wait_for(
        parts.append_all([parts.Part(process, out)], write, lambda rows: None), 10
    )
    assert received[0] == b"1,first\n", "the first row was appended before the helper ended"
    assert b"".join(received) == b"1,first\n2,second\n"
    assert written.rows == 2 and not out.exists()


async def test_a_helper_naming_thousands_of_voice_notes_is_heard_to_the_end(tmp_path):
    """Its last line is far bigger than a pipe holds: the export reads it as it comes, or the
    helper would wait for ever to write it."""
    out = tmp_path / "part0.csv"
    script = (
        "import json, sys\n"
        "open(sys.argv[1], 'w').write('1,a\\n')\n"
        "notes = [[f'voice/2025/{n:05d}.ogg.enc', f'voice/R-ABCDEFGHIJKL-{n}.ogg']"
        " for n in range(20000)]\n"
        "print(json.dumps({'rows': 1, 'voice_files': notes, 'peak_mb': None}))\n"
    )
    process = await _helper(script, str(out))
    written = await asyncio.wait_for(
        parts.append_all([parts.Part(process, out)], lambda chunk: None, lambda rows: None), 20
    )
    assert len(written.voice_files) == 20_000


async def test_stopping_a_helper_stuck_on_a_full_pipe_ends_it(tmp_path):
    script = "import sys\nsys.stdout.write('x' * 2_000_000)\n"
    part = parts.Part(await _helper(script), tmp_path / "part0.csv")
    await asyncio.sleep(0.5)  # it has filled the pipe and waits for it to be read
    await asyncio.wait_for(parts.stop([part]), 10)
    assert part.process.returncode is not None
