"""Dates, times, weekly slots and quiet hours in words, built from the prompts' labels so that
no word lives in code."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from bot.calendar.quiet import QuietHours, parse_hhmm
from bot.protocol import CheckinSlot, StudyProtocol
from prompts import PromptNotFoundError, Prompts
from storage.models import PartnerProfile


def time_words(prompts: Prompts, value: time | str) -> str:
    """A local time the British way: ``6pm``, ``10:30am``, ``12pm``."""
    if isinstance(value, str):
        value = parse_hhmm(value)
    hour = value.hour % 12 or 12
    clock = f"{hour}" if value.minute == 0 else f"{hour}:{value.minute:02d}"
    return prompts.label("tools.dates.am" if value.hour < 12 else "tools.dates.pm", time=clock)


def day_words(prompts: Prompts, when: datetime, zone: ZoneInfo) -> str:
    """The local day of ``when``, e.g. ``Thursday 12 March``."""
    local = when.astimezone(zone)
    return prompts.label(
        "tools.dates.day",
        weekday=prompts.labels("tools.dates.weekdays")[str(local.weekday())],
        day=local.day,
        month=prompts.labels("tools.dates.months")[str(local.month)],
    )


def date_words(prompts: Prompts, when: datetime, zone: ZoneInfo) -> str:
    """The local date of ``when``, e.g. ``12 March``."""
    local = when.astimezone(zone)
    return prompts.label(
        "tools.dates.date",
        day=local.day,
        month=prompts.labels("tools.dates.months")[str(local.month)],
    )


def slot_words(prompts: Prompts, slot: CheckinSlot) -> str:
    """A check-in slot's button words (its protocol label, or weekday and time)."""
    try:
        return prompts.label(slot.label)
    except PromptNotFoundError:
        return weekly_words(prompts, slot.weekday, slot.time)


def weekly_words(prompts: Prompts, weekday: int | None, hhmm: str | None) -> str:
    """A weekly time as words, e.g. ``Thursday at 6pm`` (``not set yet`` when missing)."""
    if weekday is None or hhmm is None:
        return prompts.label("tools.settings.not_set")
    return prompts.label(
        "tools.dates.slot",
        weekday=prompts.labels("tools.dates.weekdays")[str(weekday)],
        time=time_words(prompts, hhmm),
    )


def checkin_words(prompts: Prompts, profile: PartnerProfile, protocol: StudyProtocol) -> str:
    """The partner's weekly check-in time in words (the slot's own label when it matches)."""
    for slot in protocol.checkin_slots:
        if slot.weekday == profile.checkin_weekday and slot.time == profile.checkin_time:
            return slot_words(prompts, slot)
    return weekly_words(prompts, profile.checkin_weekday, profile.checkin_time)


def quiet_words(prompts: Prompts, window: QuietHours | None) -> str:
    """Quiet hours in words: ``9pm to 8am``, or ``none``."""
    if window is None:
        return prompts.label("tools.settings.none")
    return prompts.label(
        "tools.settings.quiet_range",
        start=time_words(prompts, window.start),
        end=time_words(prompts, window.end),
    )


def timezone_words(prompts: Prompts, zone: str) -> str:
    """A time zone's plain name if it is one of the offered ones, else its IANA name."""
    return prompts.labels("tools.settings.zones").get(zone, zone.replace("_", " "))


# -- buttons ------------------------------------------------------------------------------
