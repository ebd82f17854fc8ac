"""A partner's own settings: name, group, time zone, weekly check-in time and quiet hours.

The functions here change the profile in the caller's session and never commit. What the
settings mean (zones, quiet hours, their words) is in :mod:`bot.calendar`.
"""

from __future__ import annotations

import re

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.calendar.quiet import NO_QUIET_HOURS, QuietHours, parse_hhmm
from bot.calendar.words import slot_words
from bot.calendar.zones import is_known_zone
from bot.involvement.payment import payment_rows
from bot.protocol import CheckinSlot, Group, StudyProtocol
from prompts import Prompts
from storage.models import PartnerProfile, TelegramIdentity

NAME_LIMIT = 64

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
    "pay": "payment",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


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


def set_timezone(profile: PartnerProfile, zone: str) -> bool:
    """Set the partner's time zone if ``zone`` is a known IANA name; return whether it was."""
    if not is_known_zone(zone):
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
    return QuietHours(parse_hhmm(window[0]), parse_hhmm(window[1]))


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
    elif item == "pay":
        rows = payment_rows(prompts, "set:pay:")
    elif item != "name":
        raise ValueError(f"unknown setting {item!r}")
    rows.append(_row(prompts.label("tools.settings.cancel"), "set:cancel"))
    return InlineKeyboardMarkup(rows)
