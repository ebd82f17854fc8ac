"""A partner's journey: their scale answers over time as a chart, and what they contributed.

:func:`load_journey` reads only the partner's CURRENT answers (``superseded_at IS NULL``; a
changed answer counts once, as it is now). :func:`render_chart` draws the scale answers with
the phone-first line chart of :mod:`bot.charts.lines` (one labelled line per scale question,
with its own colour, marker and dash, so colour is never the only cue).
:func:`chart_lines_for_caption` gives the same facts in words, for the caption that stands in
for the picture (alt text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.words import date_words
from bot.charts.lines import ChartWords, Scale, Series, draw_lines
from bot.protocol import StudyProtocol
from prompts import Prompts
from storage.crypto import TextCipher
from storage.models import Answer

QUOTE_LIMIT = 200
CHARTS_FOLDER = "charts"


@dataclass(frozen=True)
class ScaleLine:
    """One scale question's current answers, oldest first (aware UTC times)."""

    question_key: str
    label: str
    low: int
    high: int
    points: tuple[tuple[datetime, int], ...]


@dataclass(frozen=True)
class Quote:
    """The latest free-text answer to a question the summary quotes back (shortened)."""

    question_key: str
    heading: str
    text: str


@dataclass(frozen=True)
class Journey:
    """Everything /journey shows."""

    lines: list[ScaleLine]
    checkins: int  # check-ins with at least one answer given (not skipped)
    shared: int  # answers in their own words: free text or a voice note
    first_at: datetime | None
    quotes: list[Quote] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when they have not answered anything yet."""
        return self.checkins == 0

    @property
    def scale_range(self) -> tuple[int, int]:
        """The lowest and highest value any charted scale allows."""
        return min(line.low for line in self.lines), max(line.high for line in self.lines)


@dataclass(frozen=True)
class ChartText:
    """The words on the chart, from the prompts (rendering happens off the event loop)."""

    title: str
    y_axis: str
    months_short: Mapping[str, str]


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


async def load_journey(
    session: AsyncSession,
    person_id: int,
    protocol: StudyProtocol,
    prompts: Prompts,
    cipher: TextCipher,
) -> Journey:
    """Read one partner's current answers and sum them up (nothing is written)."""
    answers = (
        (
            await session.execute(
                select(Answer)
                .where(
                    Answer.person_id == person_id,
                    Answer.in_force,
                    Answer.skipped.is_(False),
                )
                .order_by(Answer.answered_at, Answer.id)
            )
        )
        .scalars()
        .all()
    )
    names = prompts.labels("tools.journey.lines")
    scales = {q.key: q for q in protocol.questions if q.kind == "scale"}
    points: dict[str, list[tuple[datetime, int]]] = {}
    checkins: set[int] = set()
    shared = 0
    latest_text: dict[str, Answer] = {}
    for answer in answers:
        checkins.add(answer.checkin_id)
        if answer.value_text is not None or answer.voice_file_id is not None:
            shared += 1
        if answer.value_text is not None:
            latest_text[answer.question_key] = answer  # ordered by time: the last one wins
        if answer.question_key in scales and answer.value_number is not None:
            points.setdefault(answer.question_key, []).append(
                (answer.answered_at, answer.value_number)
            )
    lines = []
    for key, question in scales.items():  # the protocol's order, so colours stay put
        if key not in points:
            continue
        assert question.min is not None and question.max is not None  # a scale has both
        lines.append(
            ScaleLine(
                question_key=key,
                label=names.get(key, key.replace("_", " ").capitalize()),
                low=question.min,
                high=question.max,
                points=tuple(points[key]),
            )
        )
    quotes = []
    for key, heading in prompts.labels("tools.journey.quotes").items():
        latest = latest_text.get(key)
        if latest is None or latest.value_text is None:
            continue
        try:
            text = cipher.decrypt(latest.value_text, latest.text_encrypted)
        except ValueError:
            continue  # written under a key that is gone: nothing to quote
        if text.strip():
            quotes.append(Quote(question_key=key, heading=heading, text=shorten(text)))
    return Journey(
        lines=lines,
        checkins=len(checkins),
        shared=shared,
        first_at=answers[0].answered_at if answers else None,
        quotes=quotes,
    )


def chart_text(prompts: Prompts, journey: Journey) -> ChartText:
    """The chart's words for ``journey``."""
    low, high = journey.scale_range
    return ChartText(
        title=prompts.label("tools.journey.chart_title"),
        y_axis=prompts.label("tools.journey.y_axis", low=low, high=high),
        months_short=prompts.labels("tools.dates.months_short"),
    )


def chart_lines_for_caption(
    journey: Journey, prompts: Prompts, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Each line's story in values for the caption template (first and last answer, dates)."""
    described = []
    for line in journey.lines:
        (first_at, first), (last_at, last) = line.points[0], line.points[-1]
        described.append(
            {
                "label": line.label,
                "count": len(line.points),
                "first": first,
                "last": last,
                "first_date": date_words(prompts, first_at, zone),
                "last_date": date_words(prompts, last_at, zone),
            }
        )
    return described


def render_chart(journey: Journey, path: Path, *, zone: ZoneInfo, text: ChartText) -> Path:
    """Draw ``journey``'s scale answers to the PNG ``path`` (folders made); return ``path``.

    The phone-first line chart of :mod:`bot.charts.lines`, one labelled line per scale
    question. Blocking (about a tenth of a second): call it in a thread from async code.
    """
    if not journey.lines:
        raise ValueError("nothing to chart: no scale answers")
    low, high = journey.scale_range
    return draw_lines(
        [Series(line.label, line.points) for line in journey.lines],
        path,
        words=ChartWords(text.title, text.months_short, subtitle=text.y_axis),
        scale=Scale(low, high, tuple(range(low, high + 1))),
        zone=zone,
    )
