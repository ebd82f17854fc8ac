"""Line charts drawn for a phone first.

A chart in a phone's chat is shown about 245 points wide, so an 800-pixel picture shrinks to
under a third: type here is big enough (about 32 points at 100 dpi) to stay readable at that
size. Few series; each line is named by a label next to its last point instead of a legend;
a month or week with too few people to show is a gap in the line, with the words "too few to
show" written where it would be. The caption (from the prompts) carries the story in words.

matplotlib is imported inside :func:`draw_lines` and no pyplot state is used, so drawing can
run in a worker thread and nothing is loaded until the first chart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

SIZE_PX = (800, 1000)
DPI = 100
TITLE_PT = 36
TEXT_PT = 30
LABEL_PT = 30

# Okabe-Ito colours: told apart by people with colour-blindness, strong on white.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
DASHES = ("-", "--", "-.", ":")


@dataclass(frozen=True)
class Series:
    """One line: points in time (None: too few to show there), and an optional spread band."""

    label: str
    points: Sequence[tuple[datetime, float | None]]
    band: Sequence[tuple[datetime, float, float]] = ()


@dataclass(frozen=True)
class ChartWords:
    """Every word on a chart, from the prompts (drawing happens off the event loop)."""

    title: str
    months_short: Mapping[str, str]
    subtitle: str = ""
    too_few: str = ""
    value_format: str = "{:g}"  # how a y tick reads, e.g. "{:.0f}%"
    #: With several lines, a gap names whose it is: "{names}: too few to show".
    too_few_for: str = ""


@dataclass(frozen=True)
class Scale:
    """The y axis: its range and the ticks to label."""

    low: float
    high: float
    ticks: Sequence[float] = field(default_factory=tuple)


def _day(when: datetime, zone: ZoneInfo) -> datetime:
    local = when.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone)


def _spread_labels(wanted: list[float], gap: float, low: float, high: float) -> list[float]:
    """Move label heights apart so that no two are closer than ``gap`` (order kept)."""
    order = sorted(range(len(wanted)), key=lambda i: wanted[i])
    placed = [0.0] * len(wanted)
    floor = low
    for i in order:
        placed[i] = max(wanted[i], floor)
        floor = placed[i] + gap
    overflow = max((placed[i] - high for i in order), default=0.0)
    if overflow > 0:
        placed = [p - overflow for p in placed]
    return placed


def _plot(
    axes: Any, series: Sequence[Series], words: ChartWords, scale: Scale, zone: ZoneInfo
) -> list[tuple[float, float, str, str]]:
    """Draw each line (and band); return where each line's label goes: (x, y, text, colour)."""
    from matplotlib.dates import date2num

    span = scale.high - scale.low
    labels: list[tuple[float, float, str, str]] = []
    gaps: dict[float, list[str]] = {}  # x -> the lines with a gap there
    for index, line in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        xs = [float(date2num(_day(w, zone))) for w, _ in line.points]
        ys = [math.nan if v is None else float(v) for _, v in line.points]
        if line.band:
            axes.fill_between(
                [float(date2num(_day(w, zone))) for w, _, _ in line.band],
                [lo for _, lo, _ in line.band],
                [hi for _, _, hi in line.band],
                color=colour,
                alpha=0.18,
                linewidth=0,
            )
        axes.plot(
            xs,
            ys,
            color=colour,
            marker=MARKERS[index % len(MARKERS)],
            linestyle=DASHES[index % len(DASHES)],
            linewidth=5,
            markersize=18,
            markeredgecolor="black",
            markeredgewidth=1.5,
        )
        shown = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
        if shown:
            labels.append((shown[-1][0], shown[-1][1], line.label, colour))
        for x, y in zip(xs, ys, strict=True):
            if math.isnan(y):
                gaps.setdefault(x, []).append(line.label)
    if len(series) > 1 and words.too_few_for:
        _name_gaps(axes, series, gaps, words.too_few_for)
        return labels
    for x in sorted(gaps) if words.too_few else ():  # a gap: say why, where a point would be
        axes.text(
            x,
            scale.low + span * 0.08,
            words.too_few,
            rotation=90,
            fontsize=TEXT_PT * 0.6,
            color="#444444",
            ha="center",
            va="bottom",
        )
    return labels


def _name_gaps(
    axes: Any, series: Sequence[Series], gaps: dict[float, list[str]], words: str
) -> None:
    """With several lines, say below them, in words and in each line's colour, which have
    gaps (too few people there); the caption says which months."""
    gapped = {name for names in gaps.values() for name in names}
    notes = [(i, line.label) for i, line in enumerate(series) if line.label in gapped]
    for row, (index, name) in enumerate(notes):
        axes.text(
            0.03,
            0.03 + 0.07 * (len(notes) - 1 - row),
            words.format(names=name),
            transform=axes.transAxes,
            fontsize=TEXT_PT * 0.7,
            fontweight="bold",
            color=COLOURS[index % len(COLOURS)],
            ha="left",
            va="bottom",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 2},
        )


def _x_axis(axes: Any, days: list[datetime], words: ChartWords, zone: ZoneInfo) -> None:
    """At most three dates under the chart (first, middle, last), as ``12 Mar``."""
    from matplotlib.dates import date2num, num2date
    from matplotlib.ticker import FixedLocator, FuncFormatter

    if not days:
        axes.set_xticks([])
        axes.text(
            0.5,
            0.5,
            words.too_few,
            transform=axes.transAxes,
            fontsize=TEXT_PT,
            ha="center",
            va="center",
            color="#444444",
        )
        return
    start, end = days[0], days[-1]
    margin = max((end - start) * 0.08, timedelta(days=2))
    axes.set_xlim(float(date2num(start - margin)), float(date2num(end + margin)))
    picks = days if len(days) <= 3 else [days[0], days[len(days) // 2], days[-1]]
    axes.xaxis.set_major_locator(FixedLocator([float(date2num(d)) for d in picks]))
    months = words.months_short

    def day_month(value: float, _position: int | None = None) -> str:
        local = num2date(value, tz=zone)
        return f"{local.day} {months[str(local.month)]}"

    axes.xaxis.set_major_formatter(FuncFormatter(day_month))


def _label_lines(axes: Any, labels: list[tuple[float, float, str, str]], scale: Scale) -> None:
    """Name each line above its last point, right-aligned, nudged apart from the others."""
    span = scale.high - scale.low
    heights = _spread_labels(
        [y + span * 0.07 for _, y, _, _ in labels], span * 0.1, scale.low, scale.high
    )
    for (x, _y, text, colour), y in zip(labels, heights, strict=True):
        axes.text(
            x,
            y,
            text,
            fontsize=LABEL_PT,
            fontweight="bold",
            color=colour,
            ha="right",
            va="bottom",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 2},
        )


def draw_lines(
    series: Sequence[Series],
    path: Path,
    *,
    words: ChartWords,
    scale: Scale,
    zone: ZoneInfo,
    fmt: str = "png",
) -> Path:
    """Draw ``series`` to ``path`` (folders made) as a phone-sized picture; return ``path``.

    Blocking (about a tenth of a second): call it in a thread from async code. A chart with
    nothing to show draws the "too few to show" words in the middle.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter

    width, height = SIZE_PX
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.patch.set_facecolor("white")
    axes = figure.add_subplot()
    span = scale.high - scale.low
    labels = _plot(axes, series, words, scale, zone)
    _x_axis(axes, sorted({_day(w, zone) for s in series for w, _ in s.points}), words, zone)
    axes.set_ylim(scale.low - span * 0.06, scale.high + span * 0.06)
    if scale.ticks:
        axes.yaxis.set_major_locator(FixedLocator(list(scale.ticks)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: words.value_format.format(v)))
    if len(series) > 1:  # one line is named by the title; more are named on the lines
        _label_lines(axes, labels, scale)

    figure.suptitle(words.title, fontsize=TITLE_PT, fontweight="bold", x=0.05, ha="left")
    if words.subtitle:
        figure.text(0.05, 0.905, words.subtitle, fontsize=TEXT_PT * 0.8, color="#222222")
    axes.tick_params(axis="both", labelsize=TEXT_PT, colors="black", length=10, width=2)
    axes.grid(True, axis="y", color="#BBBBBB", linewidth=1.2)
    for name, spine in axes.spines.items():
        spine.set_visible(name in ("left", "bottom"))
        spine.set_color("black")
        spine.set_linewidth(2)
    widest = max((len(words.value_format.format(t)) for t in scale.ticks), default=1)
    figure.subplots_adjust(
        left=max(0.13, 0.05 + 0.036 * widest), right=0.95, top=0.86, bottom=0.09
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format=fmt, dpi=DPI, facecolor="white")
    return path
