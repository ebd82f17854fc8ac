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
        month=month_words(prompts, when, zone),
    )


def date_words(prompts: Prompts, when: datetime, zone: ZoneInfo) -> str:
    """The local date of ``when``, e.g. ``12 March``."""
    local = when.astimezone(zone)
    return prompts.label(
        "tools.dates.date",
        day=local.day,
        month=month_words(prompts, when, zone),
    )


def month_words(prompts: Prompts, when: datetime, zone: ZoneInfo) -> str:
    """The local month of ``when``, e.g. ``March``."""
    return prompts.labels("tools.dates.months")[str(when.astimezone(zone).month)]


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


def duration_words(prompts: Prompts, minutes: int) -> str:
    """A length of time in words: ``45 minutes``, ``1 hour``, ``2 hours 30 minutes``."""
    hours, rest = divmod(minutes, 60)
    if hours == 0:
        return prompts.label("meetings.length.minutes", minutes=rest)
    hour_words = prompts.label(
        "meetings.length.one_hour" if hours == 1 else "meetings.length.hours", hours=hours
    )
    if rest == 0:
        return hour_words
    return prompts.label("meetings.length.and_minutes", hours=hour_words, minutes=rest)


def hours_words(prompts: Prompts, minutes: int) -> str:
    """Time given as hours, for lists and sums: ``0 hours``, ``1.5 hours``, ``12 hours``."""
    hours = minutes / 60
    shown = f"{hours:.1f}".removesuffix(".0")
    return prompts.label("tools.dates.hours_one" if shown == "1" else "tools.dates.hours", n=shown)


def ago_words(prompts: Prompts, when: datetime | None, now: datetime, zone: ZoneInfo) -> str:
    """How long ago, kindly and roughly: ``today``, ``yesterday``, ``last week``, ``never``."""
    if when is None:
        return prompts.label("tools.ago.never")
    days = (now.astimezone(zone).date() - when.astimezone(zone).date()).days
    if days <= 0:
        return prompts.label("tools.ago.today")
    if days == 1:
        return prompts.label("tools.ago.yesterday")
    if days < 7:
        return prompts.label("tools.ago.this_week")
    if days < 14:
        return prompts.label("tools.ago.last_week")
    if days < 60:
        return prompts.label("tools.ago.weeks", n=days // 7)
    return prompts.label("tools.ago.months", n=days // 30)


def money_words(prompts: Prompts, pence: int) -> str:
    """An amount of money: ``£12.50``, ``£8``."""
    pounds, rest = divmod(pence, 100)
    amount = f"{pounds}" if rest == 0 else f"{pounds}.{rest:02d}"
    return prompts.label("tools.dates.money", amount=amount)
