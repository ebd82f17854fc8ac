"""/stats at scale: 2,000 partners with a year of weekly check-ins.

A fresh database (SQLite in a temporary folder by default, or ``--database-url``; it is
emptied first) gets N onboarded partners in three groups and a year of weekly check-ins
(about 100,000 check-ins, 400,000 answers: three scales and a reflection each), written by a
child process so that its memory does not count. Then, in this process and on the same
database:

1. **The baseline**: bare SQL aggregates of the same rows (scale answers counted by group,
   question and value; check-ins sent and answered), the least any /stats must do.
2. **/stats "all"**: what the handler does for the "all" button: the figures
   (``study_stats``, small groups protected), then every chart drawn (``draw_all``), timed
   apart, with the ratio of the figures' time to the baseline's.

Budget (issue 12): the figures within 3x the bare aggregates (plus the chart drawing), and
the process's peak RSS under 200 MB.

Usage: python bench/stats.py [--partners N] [--weeks W] [--database-url URL] [--no-seed]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text

from bot.connector.stats import study_stats
from bot.connector.stats_view import draw_all, stats_charts
from bot.protocol import load_protocol
from bot.settings import DEFAULT_STUDY_PATH
from prompts import Prompts
from storage.clock import utcnow
from storage.db import Database, is_sqlite
from storage.migrate import upgrade
from storage.models import (
    Answer,
    Base,
    Checkin,
    CheckinStatus,
    PartnerProfile,
    Person,
    Role,
)

GROUPS = ("north", "south", "online")
SCALES = ("confidence", "valued", "part_of_team")
CHUNK = 5_000


async def _seed(url: str, partners: int, weeks: int) -> None:
    await upgrade(url)  # first, so that a fresh PostgreSQL database has the tables to empty
    if not is_sqlite(url):
        db = Database(url)
        async with db.transaction() as session:
            names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
            await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await db.dispose()
    db = Database(url)
    rng = random.Random(12)
    now = utcnow()
    start = now - timedelta(weeks=weeks)
    async with db.transaction() as session:
        await session.execute(
            insert(Person),
            [
                {"id": i, "pseudonym": f"P-{i:08d}", "role": Role.PARTNER, "created_at": start}
                for i in range(1, partners + 1)
            ],
        )
        await session.execute(
            insert(PartnerProfile),
            [
                {
                    "person_id": i,
                    "group_key": GROUPS[i % len(GROUPS)],
                    "enrolled_at": start,
                    "onboarded_at": start,
                    "checkin_weekday": 3,
                    "checkin_time": "18:00",
                }
                for i in range(1, partners + 1)
            ],
        )
    checkin_id = 0
    checkins: list[dict] = []
    answers: list[dict] = []

    async def flush() -> None:
        async with db.transaction() as session:
            if checkins:
                await session.execute(insert(Checkin), checkins)
            if answers:
                await session.execute(insert(Answer), answers)
        checkins.clear()
        answers.clear()

    for week in range(weeks):
        due = start + timedelta(weeks=week, hours=rng.randint(0, 48))
        for person in range(1, partners + 1):
            checkin_id += 1
            answered = rng.random() < 0.8
            checkins.append(
                {
                    "id": checkin_id,
                    "occurrence_key": f"weekly:{person}:{week}",
                    "person_id": person,
                    "checkin_key": "weekly",
                    "status": CheckinStatus.COMPLETED if answered else CheckinStatus.EXPIRED,
                    "due_at": due,
                    "opened_at": due,
                    "closes_at": due + timedelta(hours=48),
                    "completed_at": due + timedelta(hours=1) if answered else None,
                }
            )
            at = due + timedelta(minutes=30)
            for key in SCALES:
                answers.append(
                    {
                        "checkin_id": checkin_id,
                        "person_id": person,
                        "question_key": key,
                        "value_number": min(5, max(1, round(rng.gauss(3 + week / weeks, 1)))),
                        "answered_at": at,
                        "skipped": False,
                        "text_encrypted": False,
                    }
                )
            answers.append(
                {
                    "checkin_id": checkin_id,
                    "person_id": person,
                    "question_key": "reflection",
                    "value_text": "a few words about the week",
                    "answered_at": at,
                    "skipped": False,
                    "text_encrypted": False,
                }
            )
            if len(answers) >= CHUNK * 4:
                await flush()
    await flush()
    if not is_sqlite(url):
        # What autovacuum does soon after a bulk load; without it the planner thinks the
        # tables are empty and joins them row by row.
        async with db.transaction() as session:
            await session.execute(text("ANALYZE"))
    await db.dispose()


def seed(url: str, partners: int, weeks: int) -> None:
    """Write the study (run in a child process, so its memory is not this process's)."""
    asyncio.run(_seed(url, partners, weeks))


async def bare(db: Database) -> float:
    """The bare aggregates of the same rows; seconds."""
    began = time.perf_counter()
    async with db.sessions() as session:
        await session.execute(
            select(
                PartnerProfile.group_key, Answer.question_key, Answer.value_number, func.count()
            )
            .join(PartnerProfile, PartnerProfile.person_id == Answer.person_id)
            .where(Answer.superseded_at.is_(None), Answer.value_number.is_not(None))
            .group_by(PartnerProfile.group_key, Answer.question_key, Answer.value_number)
        )
        await session.execute(select(Checkin.status, func.count()).group_by(Checkin.status))
    return time.perf_counter() - began


async def measure(url: str, data_dir: Path) -> dict[str, float]:
    protocol = load_protocol(DEFAULT_STUDY_PATH)
    prompts = Prompts()
    db = Database(url)
    try:
        await bare(db)  # warm the cache the same way for both
        baseline = min([await bare(db) for _ in range(3)])
        figures_times = []
        for _ in range(3):
            began = time.perf_counter()
            async with db.sessions() as session:
                stats = await study_stats(
                    session, protocol, "all", now=utcnow(), reads=db.sessions
                )  # as the handler does: the scale answers counted beside the rest
            figures_times.append(time.perf_counter() - began)
        figures = min(figures_times)
        began = time.perf_counter()
        charts = stats_charts(prompts, stats)
        paths = await asyncio.to_thread(draw_all, charts, data_dir, "bench", stats)
        drawing = time.perf_counter() - began
    finally:
        await db.dispose()
    return {
        "baseline_s": baseline,
        "figures_s": figures,
        "ratio": figures / baseline,
        "drawing_s": drawing,
        "charts": len(paths),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=2000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--database-url")
    parser.add_argument(
        "--no-seed", action="store_true", help="measure a database an earlier run seeded"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-stats-"))
    url = args.database_url or f"sqlite+aiosqlite:///{folder / 'stats.db'}"
    began = time.perf_counter()
    if not args.no_seed:
        child = multiprocessing.get_context("spawn").Process(
            target=seed, args=(url, args.partners, args.weeks)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit("seeding failed")
    seeded = time.perf_counter() - began
    result = asyncio.run(measure(url, folder / "charts"))
    backend = "SQLite" if is_sqlite(url) else "PostgreSQL"
    print(
        f"{backend}: {args.partners} partners x {args.weeks} weeks seeded in {seeded:.0f}s\n"
        f"  bare aggregates      {result['baseline_s'] * 1000:8.0f} ms\n"
        f"  /stats all, figures  {result['figures_s'] * 1000:8.0f} ms"
        f"  ({result['ratio']:.2f}x the bare aggregates; budget 3x)\n"
        f"  {result['charts']} charts drawn     {result['drawing_s'] * 1000:8.0f} ms\n"
        f"  peak RSS             {result['peak_rss_mb']:8.0f} MB (budget 200 MB)\n"
        f"  charts in {folder / 'charts'}"
    )


if __name__ == "__main__":
    main()
