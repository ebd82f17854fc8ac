"""Reading a date and time a connector typed ("3 Dec 18:00", "tomorrow 10:30am").

:func:`parse_start` reads it in the meeting's time zone; :func:`example_start` writes one the
way it reads them, for the question that asks.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.meetings.rules import MeetingError
from prompts import Prompts

_ORDINAL = re.compile(r"(\d)(st|nd|rd|th)\b")
_TIME_AT_END = re.compile(
    r"(?:^|\s)(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?(?::\d{2})?\s*(?P<ap>[a-z]{2})?$"
)
_ISO_DATE = re.compile(r"^(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})$")
_NUMERIC_DATE = re.compile(r"^(?P<d>\d{1,2})[/.-](?P<mo>\d{1,2})(?:[/.-](?P<y>\d{4}|\d{2}))?$")
_DAY_MONTH = re.compile(r"^(?P<d>\d{1,2})\s+(?P<mo>[a-z]+)\.?(?:\s+(?P<y>\d{4}))?$")
_MONTH_DAY = re.compile(r"^(?P<mo>[a-z]+)\.?\s+(?P<d>\d{1,2})(?:\s+(?P<y>\d{4}))?$")


def _month_names(prompts: Prompts) -> dict[str, int]:
    """Month words (full, short, and any 3+ letter start of the full name) -> number."""
    names: dict[str, int] = {}
    for group in ("tools.dates.months", "tools.dates.months_short"):
        for number, word in prompts.labels(group).items():
            names[word.lower()] = int(number)
    for number, word in prompts.labels("tools.dates.months").items():
        lowered = word.lower()
        for end in range(3, len(lowered)):
            names.setdefault(lowered[:end], int(number))
    return names


def _clock(match: re.Match[str], prompts: Prompts) -> time | None:
    """The time of day in a ``_TIME_AT_END`` match (a bare number is not a time)."""
    hour, minute, suffix = int(match["h"]), int(match["m"] or 0), match["ap"]
    am, pm = prompts.label("meetings.parse.am"), prompts.label("meetings.parse.pm")
    if suffix is None and match["m"] is None:
        return None
    if suffix is not None:
        if suffix not in (am, pm) or not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix == pm else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _day(text: str, prompts: Prompts, today: date) -> tuple[int | None, int, int] | None:
    """(year or None, month, day) from the date part of what was typed."""
    if text == prompts.label("meetings.parse.today"):
        return today.year, today.month, today.day
    if text == prompts.label("meetings.parse.tomorrow"):
        tomorrow = today + timedelta(days=1)
        return tomorrow.year, tomorrow.month, tomorrow.day
    if match := _ISO_DATE.match(text):
        return int(match["y"]), int(match["mo"]), int(match["d"])
    found = _NUMERIC_DATE.match(text)
    if found is not None:
        year = found["y"]
        full = None if year is None else int(year) + (2000 if len(year) == 2 else 0)
        return full, int(found["mo"]), int(found["d"])
    months = _month_names(prompts)
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        found = pattern.match(text)
        if found is not None and found["mo"] in months:
            return (int(found["y"]) if found["y"] else None), months[found["mo"]], int(found["d"])
    return None


def parse_start(prompts: Prompts, text: str, zone: ZoneInfo, *, now: datetime) -> datetime:
    """The moment a person means by ``text`` in ``zone``, as an aware UTC datetime.

    Accepts, for example, ``3 Dec 18:00``, ``Thursday 3rd December at 6pm``,
    ``2026-12-03 18:00``, ``03/12/2026 6pm`` (day first, the British way) and
    ``tomorrow 10:30am``. Without a year, the next such date is meant. Raises MeetingError:
    ``bad_date`` (not understood, or no such date), ``gap`` (a time the clocks skip on that
    day) or ``past``.
    """
    cleaned = " ".join(text.strip().lower().replace(",", " ").split())
    cleaned = re.sub(r"(\d)t(\d)", r"\1 \2", cleaned)  # 2026-12-03T18:00
    cleaned = _ORDINAL.sub(r"\1", cleaned)
    skip = {prompts.label("meetings.parse.at")}
    for weekday in prompts.labels("tools.dates.weekdays").values():
        skip |= {weekday.lower(), weekday.lower()[:3]}
    cleaned = " ".join(w for w in cleaned.split() if w.rstrip(".") not in skip)
    if len(cleaned) > 60:
        raise MeetingError("bad_date")
    found = _TIME_AT_END.search(cleaned)
    clock = _clock(found, prompts) if found is not None else None
    if found is None or clock is None:
        raise MeetingError("bad_date")
    local_now = now.astimezone(zone)
    day = _day(cleaned[: found.start()].strip(), prompts, local_now.date())
    if day is None:
        raise MeetingError("bad_date")
    year, month, dom = day
    try:
        local = datetime.combine(date(year or local_now.year, month, dom), clock, tzinfo=zone)
        if year is None and local <= now:
            local = datetime.combine(date(local_now.year + 1, month, dom), clock, tzinfo=zone)
    except ValueError as exc:  # 31 February and the like
        raise MeetingError("bad_date") from exc
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise MeetingError("gap")
    if moment <= now:
        raise MeetingError("past")
    return moment


def example_start(prompts: Prompts, zone: ZoneInfo, *, now: datetime) -> str:
    """A date and time a week from now, written the way :func:`parse_start` reads it."""
    local = (now + timedelta(days=7)).astimezone(zone)
    month = prompts.labels("tools.dates.months_short")[str(local.month)]
    return f"{local.day} {month} 18:00"
