"""A meeting's values in words: its length, when reminders go, its groups, its day and time.

The meeting templates and the command line take these values; the labels they are made of are
in ``prompts/<locale>/labels/meetings.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.calendar.words import day_words, duration_words, time_words, timezone_words
from bot.calendar.zones import zone_named
from bot.meetings.rules import ANSWERS
from bot.protocol import StudyProtocol
from prompts import Prompts
from storage.models import Meeting


def length_words(prompts: Prompts, minutes: int) -> str:
    """A meeting's length in words: ``1 hour``, ``2 hours``, ``1 hour 30 minutes``."""
    return duration_words(prompts, minutes)


def offset_words(prompts: Prompts, hours: int) -> str:
    """How long before a meeting: ``2 hours``, ``1 day``, ``2 days``."""
    if hours % 24 == 0:
        days = hours // 24
        return prompts.label(
            "meetings.offset.one_day" if days == 1 else "meetings.offset.days", days=days
        )
    return prompts.label(
        "meetings.offset.one_hour" if hours == 1 else "meetings.offset.hours", hours=hours
    )


def answer_label(prompts: Prompts, answer: str | None) -> str | None:
    """The button words of an answer ("I'll be there"), or None for no answer."""
    if answer not in ANSWERS:
        return None
    return prompts.label(f"meetings.answers.{answer}")


def details(prompts: Prompts, meeting: Meeting, zone: ZoneInfo) -> dict[str, Any]:
    """The values every meeting template shows, in the reader's time zone."""
    return {
        "title": meeting.title,
        "day": day_words(prompts, meeting.starts_at, zone),
        "time": time_words(prompts, meeting.starts_at.astimezone(zone).time()),
        "length": length_words(prompts, meeting.length_minutes),
        "place": meeting.place,
        "zone": timezone_words(prompts, str(zone.key)),
    }


def zone_values(prompts: Prompts, zone_name: str) -> dict[str, Any]:
    """A zone for the connectors' templates: its name and its words (``UK (London)``)."""
    return {"zone": zone_name, "zone_name": timezone_words(prompts, zone_name)}


def when_values(prompts: Prompts, moment: datetime, zone_name: str) -> dict[str, Any]:
    """A moment for the connectors' templates: its day and time in ``zone_name``, and the zone."""
    zone = zone_named(zone_name)
    return {
        "day": day_words(prompts, moment, zone),
        "time": time_words(prompts, moment.astimezone(zone).time()),
        **zone_values(prompts, zone_name),
    }


def group_words(prompts: Prompts, protocol: StudyProtocol, groups: Sequence[str]) -> list[str]:
    """The names of a meeting's groups (``Everyone`` when it is for all)."""
    if not groups:
        return [prompts.label("meetings.staff.everyone")]
    return [(g.name if (g := protocol.group(key)) else key) for key in groups]


def reminder_offsets_words(prompts: Prompts, protocol: StudyProtocol) -> list[str]:
    """When reminders go out, earliest first: ``["2 days", "2 hours"]``."""
    hours = sorted(protocol.meetings.reminder_offsets_hours, reverse=True)
    return [offset_words(prompts, h) for h in hours]
