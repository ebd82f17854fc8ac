"""``/stats`` as pictures and words: one chart per figure, each with its numbers in the caption.

:func:`stats_charts` lists what to send (a chart's series and its caption's values);
:func:`draw_all` draws them (blocking: run it in a thread). Months and weeks with too few
people are gaps in the lines, marked "too few to show", and say so in the captions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.calendar.words import date_words, day_words, month_words
from bot.charts.lines import ChartWords, Scale, Series, draw_lines
from bot.connector.stats import ScaleStats, Spread, StudyStats
from prompts import Prompts

CAPTION_MONTHS = 12
#: Months per group in a by-group chart's caption (a caption holds at most 1,024 characters).
CAPTION_GROUP_MONTHS = 3


@dataclass(frozen=True)
class StatsChart:
    """One picture to send: what to draw, and the caption template with its values."""

    name: str
    series: list[Series]
    words: ChartWords
    scale: Scale
    caption: str
    values: dict[str, Any]


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _spread_values(spread: Spread) -> dict[str, Any]:
    if spread.median is None or spread.low is None or spread.high is None:
        return {"median": None, "low": None, "high": None}
    return {
        "median": _number(spread.median),
        "low": _number(spread.low),
        "high": _number(spread.high),
    }


def _axis(scale: ScaleStats) -> Scale:
    """A scale question's y axis: its whole range, every point labelled."""
    return Scale(scale.low, scale.high, tuple(range(scale.low, scale.high + 1)))


def _scale_words(label: str, scale: ScaleStats) -> dict[str, Any]:
    """What every scale caption says first: the question and what its ends mean."""
    return {"label": label, "low_end": scale.low, "high_end": scale.high}


def stats_charts(prompts: Prompts, stats: StudyStats) -> list[StatsChart]:
    """The charts of ``stats``: check-ins answered per week, then for each scale question its
    overall chart and, when the study has more than one group, one line per group."""
    months_short = prompts.labels("tools.dates.months_short")
    too_few = prompts.label("stats.too_few")
    zone = stats.zone
    charts = [
        StatsChart(
            name="checkins",
            series=[
                Series(
                    prompts.label("stats.answered_line"),
                    [(w, None if s is None else s * 100) for w, s in stats.weeks],
                )
            ],
            words=ChartWords(
                prompts.label("stats.checkins_title"),
                months_short,
                subtitle=prompts.label("stats.checkins_subtitle"),
                too_few=too_few,
                value_format="{:.0f}%",
            ),
            scale=Scale(0, 100, (0, 25, 50, 75, 100)),
            caption="stats/checkins_caption",
            values={
                "sent": stats.sent,
                "share": None
                if stats.answered_share is None
                else round(stats.answered_share * 100),
                "weeks": [
                    {
                        "date": date_words(prompts, w, zone),
                        "share": None if s is None else round(s * 100),
                    }
                    for w, s in stats.weeks[-6:]
                ],
            },
        )
    ]
    names = prompts.labels("tools.journey.lines")
    for scale in stats.scales:
        label = names.get(scale.key, scale.key)
        band = [
            (m, s.low, s.high)
            for m, s in scale.months
            if s.median is not None and s.low is not None and s.high is not None
        ]
        charts.append(
            StatsChart(
                name=scale.key,
                series=[Series(label, [(m, s.median) for m, s in scale.months], band=band)],
                words=ChartWords(
                    prompts.label("stats.scale_title", label=label),
                    months_short,
                    subtitle=prompts.label("stats.scale_subtitle", low=scale.low, high=scale.high),
                    too_few=too_few,
                ),
                scale=_axis(scale),
                caption="stats/scale_caption",
                values={
                    **_scale_words(label, scale),
                    "months": [
                        {
                            "month": month_words(prompts, m, zone),
                            **_spread_values(s),
                        }
                        for m, s in scale.months[-CAPTION_MONTHS:]
                    ],
                    "groups": [{"name": g, **_spread_values(s)} for g, s in scale.groups],
                },
            )
        )
        if len(scale.group_months) > 1:
            charts.append(_by_group(prompts, stats, scale, label))
    return charts


def _by_group(
    prompts: Prompts,
    stats: StudyStats,
    scale: ScaleStats,
    label: str,
) -> StatsChart:
    """One scale question's middle answer per month, one line per group (no bands: with
    several lines they would hide each other)."""
    return StatsChart(
        name=f"{scale.key}-groups",
        series=[Series(g, [(m, s.median) for m, s in months]) for g, months in scale.group_months],
        words=ChartWords(
            prompts.label("stats.scale_groups_title", label=label),
            prompts.labels("tools.dates.months_short"),
            subtitle=prompts.label("stats.scale_subtitle", low=scale.low, high=scale.high),
            too_few=prompts.label("stats.too_few"),
            too_few_for=prompts.label("stats.too_few_for"),
        ),
        scale=_axis(scale),
        caption="stats/scale_groups_caption",
        values={
            **_scale_words(label, scale),
            "groups": [
                {
                    "name": g,
                    "months": [
                        {
                            "month": month_words(prompts, m, stats.zone),
                            **_spread_values(s),
                        }
                        for m, s in months[-CAPTION_GROUP_MONTHS:]
                    ],
                }
                for g, months in scale.group_months
            ],
        },
    )


def summary_values(prompts: Prompts, stats: StudyStats) -> dict[str, Any]:
    """The words of the summary message: people, meetings and hours (None: too few)."""
    return {
        "period": prompts.label(f"stats.periods.{stats.period}"),
        "since": date_words(prompts, stats.since, stats.zone),
        "people": [{"name": n, "count": c} for n, c in stats.people],
        "people_total": stats.people_total,
        "meetings": [
            {"title": t, "day": day_words(prompts, at, stats.zone), "came": n}
            for t, at, n in stats.meetings[-8:]
        ],
        "meetings_count": len(stats.meetings),
        "hours": [{"name": n, "hours": None if h is None else _number(h)} for n, h in stats.hours],
        "hours_total": None if stats.hours_total is None else _number(stats.hours_total),
    }


def draw_all(charts: list[StatsChart], folder: Path, stem: str, stats: StudyStats) -> list[Path]:
    """Draw every chart under ``folder`` as ``<stem>-<name>.png`` (blocking)."""
    return [
        draw_lines(
            chart.series,
            folder / f"{stem}-{chart.name}.png",
            words=chart.words,
            scale=chart.scale,
            zone=stats.zone,
        )
        for chart in charts
    ]
