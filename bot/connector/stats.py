"""``/stats``: the study's picture for a period, with small groups protected.

For "4 weeks", "3 months" or "all": people taking part by group; check-ins answered per week
(a share of those sent, never per person); each scale question's median and spread (the
middle half of answers) per month, overall and per group, and per group over the period;
meeting attendance; hours given. Any figure about fewer people than the protocol's
``min_group_size`` is None here, which every chart and sentence shows as "too few to show".
All counting is done by the database (see :mod:`storage.queries.stats`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.protocol import Question, StudyProtocol
from storage.queries import stats as q

PERIODS: dict[str, int | None] = {"4w": 28, "3m": 91, "all": None}


@dataclass(frozen=True)
class Spread:
    """A median and the middle half of answers (None: too few people to show)."""

    median: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class ScaleStats:
    """One scale question: per month overall, per group over the whole period, and per group
    per month (``group_months``: each group's name and its months)."""

    key: str
    low: int
    high: int
    months: list[tuple[datetime, Spread]]
    groups: list[tuple[str, Spread]]
    group_months: list[tuple[str, list[tuple[datetime, Spread]]]]


@dataclass(frozen=True)
class StudyStats:
    """Everything ``/stats`` shows for one period (None anywhere: too few to show)."""

    period: str
    since: datetime
    until: datetime
    zone: ZoneInfo
    people: list[tuple[str, int | None]]
    people_total: int | None
    weeks: list[tuple[datetime, float | None]]
    sent: int
    answered_share: float | None
    scales: list[ScaleStats]
    meetings: list[tuple[str, datetime, int | None]]
    hours: list[tuple[str, float | None]]
    hours_total: float | None


def quantile(histogram: dict[int, int], share: float) -> float:
    """The ``share`` quantile (0.5: the median) of answers counted by value."""
    total = sum(histogram.values())
    position = share * (total - 1)
    values = sorted(histogram)
    seen = 0
    below: int | None = None
    for value in values:
        count = histogram[value]
        if below is not None and position < seen:
            return below + (value - below) * (position - (seen - 1))
        if position <= seen + count - 1:
            return float(value)
        seen += count
        below = value
    return float(values[-1])


def spread(histogram: dict[int, int], people: int, least: int) -> Spread:
    """The median and middle half, or too few to show when fewer than ``least`` people."""
    if people < least or not histogram:
        return Spread(None)
    return Spread(quantile(histogram, 0.5), quantile(histogram, 0.25), quantile(histogram, 0.75))


def _week_starts(since: datetime, until: datetime, zone: ZoneInfo) -> list[datetime]:
    local = since.astimezone(zone).date()
    day = local - timedelta(days=local.weekday())
    starts = []
    while (start := datetime.combine(day, datetime.min.time(), tzinfo=zone)) < until:
        starts.append(start)
        day += timedelta(days=7)
    return starts


def _month_starts(since: datetime, until: datetime, zone: ZoneInfo) -> list[datetime]:
    local = since.astimezone(zone)
    year, month = local.year, local.month
    starts = []
    while (start := datetime(year, month, 1, tzinfo=zone)) < until:
        starts.append(start)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return starts


def _small(count: int, least: int) -> int | None:
    return count if count >= least else None


async def study_stats(
    session: AsyncSession,
    protocol: StudyProtocol,
    period: str,
    *,
    now: datetime,
    reads: Callable[[], AbstractAsyncContextManager[AsyncSession]] | None = None,
) -> StudyStats:
    """The figures for ``period`` (one of :data:`PERIODS`), small groups already hidden.

    ``reads`` opens a read-only session of its own: the scale answers (by far the longest
    count) are then counted on it while the other figures are read on ``session``, side by
    side on the database.
    """
    least, zone = protocol.min_group_size, protocol.groups[0].zone
    days = PERIODS[period]
    if days is None:
        first = await q.first_answer_at(session)
        since = first if first is not None and first < now else now - timedelta(days=28)
    else:
        since = now - timedelta(days=days)
    names = {g.key: g.name for g in protocol.groups}

    def group_name(key: str | None) -> str:
        return names.get(key or "", key or "-")

    scales = [qn for qn in protocol.questions if qn.kind == "scale"]
    months = _month_starts(since, now, zone)
    values = range(
        min((qn.min or 0 for qn in scales), default=0),
        max((qn.max or 0 for qn in scales), default=0) + 1,
    )

    async def count_scales() -> list[q.ScaleCell]:
        if reads is None:
            return await q.scale_cells(session, [s.key for s in scales], values, months)
        async with reads() as own:
            return await q.scale_cells(own, [s.key for s in scales], values, months)

    counting = asyncio.ensure_future(count_scales()) if reads is not None else None
    try:
        taking_part = await q.taking_part_by_group(session)
        weeks = _week_starts(since, now, zone)
        sent_by_week = {w.period: w for w in await q.checkin_periods(session, weeks, now)}
        attended = await q.attendance(session, since, now)
        given = await q.hours_by_group(session, since, now)
    except BaseException:
        if counting is not None:  # never leave the side count running on its own
            counting.cancel()
            await asyncio.gather(counting, return_exceptions=True)
        raise
    cells = await counting if counting is not None else await count_scales()

    people = [(group_name(k), _small(n, least)) for k, n in sorted(taking_part.items(), key=str)]

    week_shares = []
    for index, start in enumerate(weeks):
        week = sent_by_week.get(index)
        share = week.answered / week.sent if week and week.sent and week.people >= least else None
        week_shares.append((start, share))
    all_weeks = [w for w in sent_by_week.values() if w.period >= 0]
    sent = sum(w.sent for w in all_weeks)
    answered = sum(w.answered for w in all_weeks)
    overall_share = (
        answered / sent
        if sent and max((w.people for w in all_weeks), default=0) >= least
        else None
    )

    scale_stats = [_scale_stats(question, cells, months, least, group_name) for question in scales]

    meetings = [(m.title, m.starts_at, _small(n, least)) for m, n in attended]
    hours = [
        (group_name(g), round(m / 60, 1) if n >= least else None)
        for g, (m, n) in sorted(given.items(), key=str)
    ]
    total_minutes = sum(m for m, _ in given.values())
    total_people = sum(n for _, n in given.values())
    return StudyStats(
        period=period,
        since=since,
        until=now,
        zone=zone,
        people=people,
        people_total=_small(sum(taking_part.values()), least),
        weeks=week_shares,
        sent=sent,
        answered_share=overall_share,
        scales=scale_stats,
        meetings=meetings,
        hours=hours,
        hours_total=round(total_minutes / 60, 1) if total_people >= least else None,
    )


def _scale_stats(
    question: Question,
    cells: Sequence[q.ScaleCell],
    months: Sequence[datetime],
    least: int,
    group_name: Callable[[str | None], str],
) -> ScaleStats:
    """One scale question's figures from the counted cells, small groups hidden."""
    by_month: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    by_group: dict[str | None, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    month_people: dict[int, int] = defaultdict(int)
    cell_of: dict[tuple[str | None, int], tuple[dict[int, int], int]] = {}
    # Over the whole period, a group has at least as many people as in its fullest
    # month: a safe lower bound (it can only hide a figure, never show a small one).
    group_people: dict[str | None, int] = defaultdict(int)
    for cell in cells:
        if cell.question != question.key or cell.period < 0:
            continue
        for value, answers in cell.answers.items():
            by_month[cell.period][value] += answers
            by_group[cell.group][value] += answers
        month_people[cell.period] += cell.people  # a partner is in one group: sums add up
        group_people[cell.group] = max(group_people[cell.group], cell.people)
        cell_of[cell.group, cell.period] = (cell.answers, cell.people)
    assert question.min is not None and question.max is not None
    return ScaleStats(
        key=question.key,
        low=question.min,
        high=question.max,
        months=[
            (start, spread(by_month.get(i, {}), month_people.get(i, 0), least))
            for i, start in enumerate(months)
        ],
        groups=[
            (
                group_name(g),
                spread(by_group[g], group_people.get(g, 0), least),
            )
            for g in sorted(by_group, key=str)
        ],
        group_months=[
            (
                group_name(g),
                [
                    (start, spread(*cell_of.get((g, i), ({}, 0)), least))
                    for i, start in enumerate(months)
                ],
            )
            for g in sorted(by_group, key=str)
        ],
    )


def known(values: Iterable[float | None]) -> list[float]:
    """The values that are shown (not too few)."""
    return [v for v in values if v is not None]
