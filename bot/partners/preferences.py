"""A partner's own settings: name, group, time zone, weekly check-in time and quiet hours.

Quiet hours are stored on the profile as local ``"HH:MM"`` strings (``quiet_start``,
``quiet_end``), read in the profile's time zone:

* both ``None``: never chosen, the protocol's default ``quiet_hours`` apply;
* ``start == end`` (stored as ``"00:00"``/``"00:00"``): the partner chose no quiet hours;
* otherwise the window from ``start`` (included) to ``end`` (excluded), which may run past
  midnight (``21:00``-``08:00``).

:func:`quiet_hours` turns that into a :class:`QuietHours` (or None), and :func:`is_quiet` says
whether a moment falls inside them. The functions here change the profile in the caller's
session and never commit. Also here: the words for local dates and times, built from the
prompts' labels so that no word lives in code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.protocol import CheckinSlot, Group, StudyProtocol
from prompts import PromptNotFoundError, Prompts
from storage.models import PartnerProfile, TelegramIdentity

DEFAULT_ZONE = "Europe/London"
NAME_LIMIT = 64
NO_QUIET_HOURS = "00:00"

#: The quiet-hours choices offered in /settings (their words are in labels/tools.yaml).
QUIET_PRESETS: dict[str, tuple[str, str] | None] = {
    "2100-0800": ("21:00", "08:00"),
    "2200-0700": ("22:00", "07:00"),
    "2000-0900": ("20:00", "09:00"),
    "none": None,
}

#: The ``/settings`` menu: each item's callback value and the key of its button label.
SETTINGS_MENU: dict[str, str] = {
    "name": "name",
    "group": "group",
    "tz": "timezone",
    "slot": "checkin",
    "quiet": "quiet",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class QuietHours:
    """A daily local window in which nothing scheduled is sent (may cross midnight)."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        """Whether the local wall-clock time ``local`` is inside the window."""
        local = local.replace(second=0, microsecond=0, tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    @property
    def key(self) -> str:
        """The ``"HHMM-HHMM"`` form used for presets and callback data."""
        return f"{self.start:%H%M}-{self.end:%H%M}"


def _parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_hours(profile: PartnerProfile, protocol: StudyProtocol) -> QuietHours | None:
    """The partner's quiet hours (the protocol's default if never chosen); None: none at all."""
    start, end = profile.quiet_start, profile.quiet_end
    if start is None or end is None:
        start, end = protocol.quiet_hours.start, protocol.quiet_hours.end
    if start == end:
        return None
    return QuietHours(_parse_hhmm(start), _parse_hhmm(end))


def zone_named(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (London if it is missing or somehow not a known zone)."""
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def zone_of(profile: PartnerProfile | None) -> ZoneInfo:
    """The partner's time zone (London if the stored name is somehow not a known zone)."""
    return zone_named(profile.timezone if profile is not None else None)


def quiet_ends(window: QuietHours, moment: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after ``moment`` at which the quiet hours' end comes round, in UTC.

    Compared as instants, not wall times: when the clocks go back, an end inside the doubled
    hour is the first of the two that is still ahead; when they go forward, an end that does
    not exist that night becomes the same wall time on the new offset. Never earlier than a
    minute after ``moment``, so a caller can never be handed a time already past.
    """
    local_day = moment.astimezone(zone).date()
    candidates = []
    for offset in (0, 1, 2):
        wall = datetime.combine(local_day + timedelta(days=offset), window.end, tzinfo=zone)
        for fold in (0, 1):
            candidates.append(wall.replace(fold=fold).astimezone(UTC))
    later = [c for c in candidates if c > moment]
    return max(min(later), moment.astimezone(UTC) + timedelta(minutes=1))


def is_quiet(profile: PartnerProfile, protocol: StudyProtocol, when: datetime) -> bool:
    """Whether the aware moment ``when`` falls in the partner's quiet hours (their local time)."""
    if when.tzinfo is None:
        raise ValueError("is_quiet needs an aware datetime")
    window = quiet_hours(profile, protocol)
    if window is None:
        return False
    return window.contains(when.astimezone(zone_of(profile)).time())


# -- changes ------------------------------------------------------------------------------


def clean_name(text: str) -> str | None:
    """A usable preferred name from what someone typed, or None (empty, too long, lines)."""
    if "\n" in text.strip():
        return None
    name = " ".join(_CONTROL.sub("", text).split())
    if not name or len(name) > NAME_LIMIT or name.startswith("/"):
        return None
    return name


async def current_name(session: AsyncSession, person_id: int) -> str | None:
    """The name the partner chose, or Telegram's first name until they choose one."""
    row = (
        await session.execute(
            select(TelegramIdentity.preferred_name, TelegramIdentity.first_name).where(
                TelegramIdentity.person_id == person_id
            )
        )
    ).first()
    if row is None:
        return None
    return row.preferred_name or row.first_name


async def set_name(session: AsyncSession, person_id: int, name: str) -> None:
    """Store the name the partner would like to be called (on the identity table)."""
    await session.execute(
        update(TelegramIdentity)
        .where(TelegramIdentity.person_id == person_id)
        .values(preferred_name=name)
    )


def set_group(profile: PartnerProfile, protocol: StudyProtocol, key: str) -> Group | None:
    """Move the partner to group ``key`` and its time zone; None if there is no such group."""
    group = protocol.group(key)
    if group is None:
        return None
    profile.group_key = group.key
    profile.timezone = group.timezone
    return group


@cache
def _zones_by_folded_name() -> dict[str, str]:
    """Every IANA zone, keyed by its lower-case name and (when unique) its city."""
    zones = available_timezones()
    by_name: dict[str, str] = {}
    cities: dict[str, list[str]] = {}
    for zone in zones:
        by_name[zone.lower()] = zone
        if "/" in zone:
            cities.setdefault(zone.rsplit("/", 1)[1].lower(), []).append(zone)
    for city, matches in cities.items():
        if len(matches) == 1:
            by_name.setdefault(city, matches[0])
    return by_name


def resolve_timezone(text: str) -> str | None:
    """The IANA zone someone typed (``europe/london``, ``London``, ``New York``), or None."""
    folded = "_".join(text.strip().lower().split())
    if not folded or len(folded) > 64:
        return None
    return _zones_by_folded_name().get(folded)


def set_timezone(profile: PartnerProfile, zone: str) -> bool:
    """Set the partner's time zone if ``zone`` is a known IANA name; return whether it was."""
    if zone not in _zones_by_folded_name().values():
        return False
    profile.timezone = zone
    return True


def checkin_slot(protocol: StudyProtocol, key: str) -> CheckinSlot | None:
    """The protocol's weekly check-in slot ``key``, if there is one."""
    return next((slot for slot in protocol.checkin_slots if slot.key == key), None)


def set_checkin_slot(
    profile: PartnerProfile, protocol: StudyProtocol, key: str
) -> CheckinSlot | None:
    """Move the weekly check-in to slot ``key``; None if the protocol has no such slot."""
    slot = checkin_slot(protocol, key)
    if slot is None:
        return None
    profile.checkin_weekday = slot.weekday
    profile.checkin_time = slot.time
    return slot


def set_quiet_preset(profile: PartnerProfile, preset: str) -> QuietHours | None:
    """Apply a quiet-hours preset; return the new window (None: no quiet hours).

    Raises ValueError for a preset that is not in :data:`QUIET_PRESETS`.
    """
    if preset not in QUIET_PRESETS:
        raise ValueError(f"unknown quiet-hours preset {preset!r}")
    window = QUIET_PRESETS[preset]
    if window is None:
        profile.quiet_start = profile.quiet_end = NO_QUIET_HOURS
        return None
    profile.quiet_start, profile.quiet_end = window
    return QuietHours(_parse_hhmm(window[0]), _parse_hhmm(window[1]))


# -- words for dates and times --------------------------------------------------------------


def time_words(prompts: Prompts, value: time | str) -> str:
    """A local time the British way: ``6pm``, ``10:30am``, ``12pm``."""
    if isinstance(value, str):
        value = _parse_hhmm(value)
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


def _row(text: str, data: str) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text, callback_data=data)]


def settings_cancel_keyboard(prompts: Prompts) -> InlineKeyboardMarkup:
    """Just a Cancel button (``set:cancel``), while the bot waits for something typed."""
    return InlineKeyboardMarkup([_row(prompts.label("tools.settings.cancel"), "set:cancel")])


def settings_menu_keyboard(prompts: Prompts) -> InlineKeyboardMarkup:
    """The ``/settings`` menu: one button per setting (``set:menu:<item>``)."""
    return InlineKeyboardMarkup(
        [
            _row(prompts.label(f"tools.settings.{label}"), f"set:menu:{item}")
            for item, label in SETTINGS_MENU.items()
        ]
    )


def settings_choice_keyboard(
    prompts: Prompts, protocol: StudyProtocol, item: str
) -> InlineKeyboardMarkup:
    """The choices for one setting of :data:`SETTINGS_MENU`, then Cancel.

    ``name`` has no choices (the name is typed), so it is just Cancel.
    """
    rows: list[list[InlineKeyboardButton]] = []
    if item == "group":
        rows = [_row(g.name, f"set:group:{g.key}") for g in protocol.groups]
    elif item == "tz":
        zones = prompts.labels("tools.settings.zones")
        rows = [_row(words, f"set:tz:{zone}") for zone, words in zones.items()]
        rows.append(_row(prompts.label("tools.settings.type_it"), "set:tz:type"))
    elif item == "slot":
        rows = [_row(slot_words(prompts, s), f"set:slot:{s.key}") for s in protocol.checkin_slots]
    elif item == "quiet":
        words = prompts.labels("tools.settings.quiet_presets")
        rows = [_row(words[key], f"set:quiet:{key}") for key in QUIET_PRESETS]
    elif item != "name":
        raise ValueError(f"unknown setting {item!r}")
    rows.append(_row(prompts.label("tools.settings.cancel"), "set:cancel"))
    return InlineKeyboardMarkup(rows)
