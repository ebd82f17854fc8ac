"""``/journey``: the chart's caption (the chart in words), the summary, or "nothing yet"."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.calendar.words import date_words
from bot.partners.journey import Journey, chart_lines_for_caption
from bot.partners.legacy import Legacy, legacy_values
from bot.transport.view import View, render_view
from prompts import Prompts


def caption(prompts: Prompts, journey: Journey, zone: ZoneInfo) -> View:
    """The chart's caption: each line's story in words (it stands in for the picture)."""
    low, high = journey.scale_range
    return render_view(
        prompts,
        "journey/caption",
        lines=chart_lines_for_caption(journey, prompts, zone),
        low=low,
        high=high,
    )


def summary(prompts: Prompts, journey: Journey, zone: ZoneInfo) -> View:
    """What they have contributed since they started, with their words quoted back."""
    assert journey.first_at is not None  # a journey with something in it
    return render_view(
        prompts,
        "journey/summary",
        checkins=journey.checkins,
        shared=journey.shared,
        since=date_words(prompts, journey.first_at, zone),
        quotes=[{"heading": q.heading, "text": q.text} for q in journey.quotes],
    )


def contribution(prompts: Prompts, legacy: Legacy, zone: ZoneInfo) -> View:
    """What they took part in (meetings, activities, hours) and what changed because of them."""
    return render_view(prompts, "journey/contribution", **legacy_values(prompts, legacy, zone))


def empty(prompts: Prompts) -> View:
    """Nothing to show yet."""
    return render_view(prompts, "journey/empty")
