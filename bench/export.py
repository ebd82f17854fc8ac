"""Export benchmark: ``companion export`` (CSV) against the database's own CSV dump of the same
join, in the same run, with the export's peak RSS.

Data: PARTNERS partners x ANSWERS_EACH answers (default 10,000 x 100 = 1,000,000), five answers
per check-in (three scales, one choice, one free text encrypted with the study key, as the bot
stores it), written with bulk inserts. SQLite: against ``sqlite3 -csv`` of the export's own
``responses`` query. PostgreSQL (``--pg URL``): against ``psql \\copy (query) TO file CSV``.

    .venv/bin/python bench/export.py [--partners 10000] [--each 100] [--pg postgresql+asyncpg://...]

Budget (DESIGN.md): at most 2x the dump's time (aim 1.2x), peak RSS under 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.crypto import TextCipher
from storage.migrate import upgrade
from storage.queries.research import Window, answers

SECRET = "bench-secret-key-for-pseudonyms-and-text"
START = datetime(2025, 1, 6, 18, tzinfo=UTC)
QUESTIONS = ("confidence", "valued", "part_of_team", "relationships", "reflection")
CHOICES = ("better", "same", "harder")


def rows(partners: int, each: int):
    """Persons, profiles, check-ins and answers as tuples (ids from 1)."""
    cipher = TextCipher(SECRET)
    sealed = [
        cipher.encrypt(f"A reflection about week {n}, in my own words.")[0] for n in range(50)
    ]
    persons, profiles, checkins, answer_rows = [], [], [], []
    checkin_id = answer_id = 0
    for p in range(1, partners + 1):
        persons.append((p, f"P-{p:08d}", "partner", "active", START))
        profiles.append((p, ("north", "south", "online")[p % 3], "Europe/London", START, START))
        for week in range(each // 5):
            checkin_id += 1
            due = START + timedelta(days=7 * week, minutes=p % 600)
            checkins.append(
                (
                    checkin_id,
                    f"weekly:{p}:{week}",
                    p,
                    "weekly",
                    "completed",
                    due,
                    due,
                    due + timedelta(hours=48),
                    due + timedelta(minutes=5),
                )
            )
            for q, key in enumerate(QUESTIONS):
                answer_id += 1
                at = due + timedelta(seconds=30 * (q + 1))
                number = choice = text = None
                if q < 3:
                    number = 1 + (p + week + q) % 5
                elif q == 3:
                    choice = CHOICES[(p + week) % 3]
                else:
                    text = sealed[(p + week) % 50]
                answer_rows.append(
                    (answer_id, checkin_id, p, key, number, choice, text, text is not None, at)
                )
    return persons, profiles, checkins, answer_rows


def sqlite_ts(value: datetime) -> str:
    """The text SQLAlchemy writes for a UTC datetime on SQLite (as the bot stores it)."""
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def fill_sqlite(path: Path, partners: int, each: int) -> None:
    persons, profiles, checkins, answer_rows = rows(partners, each)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    with db:
        db.executemany(
            "INSERT INTO person (id, pseudonym, role, status, created_at) VALUES (?,?,?,?,?)",
            [(a, b, c, d, sqlite_ts(e)) for a, b, c, d, e in persons],
        )
        db.executemany(
            "INSERT INTO partner_profile (person_id, group_key, timezone, onboarding_step,"
            " enrolled_at, onboarded_at) VALUES (?,?,?,'done',?,?)",
            [(a, b, c, sqlite_ts(d), sqlite_ts(e)) for a, b, c, d, e in profiles],
        )
        db.executemany(
            "INSERT INTO checkin (id, occurrence_key, person_id, checkin_key, status, due_at,"
            " opened_at, closes_at, completed_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [(*r[:5], *(sqlite_ts(t) for t in r[5:])) for r in checkins],
        )
        db.executemany(
            "INSERT INTO answer (id, checkin_id, person_id, question_key, value_number,"
            " value_choice, value_text, text_encrypted, skipped, answered_at)"
            " VALUES (?,?,?,?,?,?,?,?,0,?)",
            [(*r[:8], sqlite_ts(r[8])) for r in answer_rows],
        )
    db.close()


async def fill_postgres(url: str, partners: int, each: int) -> None:
    import asyncpg

    persons, profiles, checkins, answer_rows = rows(partners, each)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        names = "answer, checkin, partner_profile, consent_decision, telegram_identity, person"
        await connection.execute(f"TRUNCATE {names}, audit_event RESTART IDENTITY CASCADE")
        await connection.copy_records_to_table(
            "person",
            records=persons,
            columns=["id", "pseudonym", "role", "status", "created_at"],
        )
        await connection.copy_records_to_table(
            "partner_profile",
            records=[(*r, "done") for r in profiles],
            columns=[
                "person_id",
                "group_key",
                "timezone",
                "enrolled_at",
                "onboarded_at",
                "onboarding_step",
            ],
        )
        await connection.copy_records_to_table(
            "checkin",
            records=checkins,
            columns=[
                "id",
                "occurrence_key",
                "person_id",
                "checkin_key",
                "status",
                "due_at",
                "opened_at",
                "closes_at",
                "completed_at",
            ],
        )
        await connection.copy_records_to_table(
            "answer",
            records=[(*r, False) for r in answer_rows],
            columns=[
                "id",
                "checkin_id",
                "person_id",
                "question_key",
                "value_number",
                "value_choice",
                "value_text",
                "text_encrypted",
                "answered_at",
                "skipped",
            ],
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def responses_sql(dialect: object) -> str:
    """The export's own responses query, as plain SQL."""
    statement = answers(Window(), in_force=True)
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def timed(command: list[str], env: dict[str, str] | None = None, stdout=None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=stdout)
    return time.perf_counter() - started


def export_run(url: str, out: Path) -> tuple[float, float, list[float]]:
    """Seconds and peak RSS (MB) of ``companion export`` in a child process of its own, and
    the peak RSS of each helper process it started to write parts of responses.csv.

    The peak is the child's own high-water mark (``VmHWM``), not ``ru_maxrss``: on Linux the
    latter survives ``exec`` and so reported this bench's own memory (the million rows it had
    just generated) as the export's.
    """
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMPANION_")},
        "DATABASE_URL": url,
        "COMPANION_SECRET_KEY": SECRET,
        "COMPANION_DATA_DIR": str(out.parent),
    }
    script = (
        "import sys; from bot.tools.cli import main; from bot.research import export as ex\n"
        "real = ex.write_export; peaks = []\n"
        "async def spy(*a, **k):\n"
        " result = await real(*a, **k); peaks.extend(result.helper_peaks_mb); return result\n"
        "ex.write_export = spy; sys.argv=sys.argv[:1]+sys.argv[2:]\n"
        "try:\n main()\nexcept SystemExit as e:\n code = e.code\nelse:\n code = 0\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1];"
        "print('PEAK', hwm, *(round(p * 1024) for p in peaks), file=sys.stderr);"
        "sys.exit(code)"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, "x", "export", "--out", str(out)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    peaks = next(
        [int(kb) / 1024 for kb in line.split()[1:]]
        for line in done.stderr.splitlines()
        if line.startswith("PEAK")
    )
    return seconds, peaks[0], peaks[1:]


def memory(peak: float, helpers: list[float]) -> str:
    """The export's peak RSS, with its helpers' and the sum of all (they run side by side)."""
    if not helpers:
        return f"peak RSS {peak:.0f} MB"
    each = " + ".join(f"{h:.0f}" for h in helpers)
    return f"peak RSS {peak:.0f} MB, helpers {each} MB, together {peak + sum(helpers):.0f} MB"


def best_of(runs: int, measure):
    return min((measure() for _ in range(runs)), key=lambda r: r[0] if isinstance(r, tuple) else r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument("--each", type=int, default=100)
    parser.add_argument("--pg", help="a PostgreSQL URL (its tables are emptied first!)")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    total = args.partners * (args.each // 5) * 5
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        path = work / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(upgrade(url))
        started = time.perf_counter()
        fill_sqlite(path, args.partners, args.each)
        print(f"SQLite: {total:,} answers written in {time.perf_counter() - started:.1f}s")
        query = responses_sql(sqlite.dialect())
        dump = work / "dump.csv"

        def sqlite_dump() -> float:
            with dump.open("wb") as sink:
                return timed(["sqlite3", "-csv", str(path), query], stdout=sink)

        base = best_of(args.runs, sqlite_dump)
        ours, peak, helpers = best_of(args.runs, lambda: export_run(url, work / "export.zip"))
        print(f"  sqlite3 -csv (same join): {base:.2f}s")
        print(f"  companion export (CSV):   {ours:.2f}s  {memory(peak, helpers)}")
        print(
            f"  ratio {ours / base:.2f}x (budget 2x, aim 1.2x); zip "
            f"{(work / 'export.zip').stat().st_size / 1e6:.0f} MB"
        )
        if args.pg:
            started = time.perf_counter()
            asyncio.run(upgrade(args.pg))
            asyncio.run(fill_postgres(args.pg, args.partners, args.each))
            print(f"PostgreSQL: {total:,} answers written in {time.perf_counter() - started:.1f}s")
            plain = make_url(args.pg).set(drivername="postgresql")
            dsn = plain.render_as_string(hide_password=False)
            copy = f"\\copy ({responses_sql(postgresql.dialect())}) TO '{dump}' CSV"
            base = best_of(args.runs, lambda: timed(["psql", dsn, "-q", "-c", copy]))
            ours, peak, helpers = best_of(
                args.runs, lambda: export_run(args.pg, work / "export.zip")
            )
            print(f"  psql \\copy (same join):   {base:.2f}s")
            print(f"  companion export (CSV):   {ours:.2f}s  {memory(peak, helpers)}")
            print(f"  ratio {ours / base:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
