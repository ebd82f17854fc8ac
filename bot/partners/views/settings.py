"""``/settings``: the menu, the choices for each setting, and the confirmation of a change."""

from __future__ import annotations

from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.calendar.quiet import QuietHours, quiet_hours
from bot.calendar.words import (
    checkin_words,
    quiet_words,
    slot_words,
    time_words,
    timezone_words,
)
from bot.calendar.zones import zone_named
from bot.involvement.payment import payment_rows, payment_words
from bot.partners.preferences import NAME_LIMIT, QUIET_PRESETS, SETTINGS_MENU
from bot.protocol import CheckinSlot, Group, StudyProtocol
from bot.transport.view import View, render_view
from prompts import Prompts
from storage.models import PartnerProfile


def _row(text: str, data: str) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text, callback_data=data)]


def cancel_keyboard(prompts: Prompts) -> InlineKeyboardMarkup:
    """Just a Cancel button (``set:cancel``), while the bot waits for something typed."""
    return InlineKeyboardMarkup([_row(prompts.label("tools.settings.cancel"), "set:cancel")])


def menu_keyboard(prompts: Prompts) -> InlineKeyboardMarkup:
    """The ``/settings`` menu: one button per setting (``set:menu:<item>``)."""
    return InlineKeyboardMarkup(
        [
            _row(prompts.label(f"tools.settings.{label}"), f"set:menu:{item}")
            for item, label in SETTINGS_MENU.items()
        ]
    )


def choice_keyboard(prompts: Prompts, protocol: StudyProtocol, item: str) -> InlineKeyboardMarkup:
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


def _group_name(prompts: Prompts, protocol: StudyProtocol, profile: PartnerProfile) -> str:
    group = protocol.group(profile.group_key)
    return group.name if group is not None else prompts.label("tools.settings.not_set")


def menu(prompts: Prompts, protocol: StudyProtocol, profile: PartnerProfile, *, name: str) -> View:
    """The current settings, with a button for each (``name``: the name we call them)."""
    return render_view(
        prompts,
        "settings/menu",
        menu_keyboard(prompts),
        name=name or prompts.label("tools.settings.not_set"),
        group=_group_name(prompts, protocol, profile),
        timezone=timezone_words(prompts, profile.timezone),
        checkin=checkin_words(prompts, profile, protocol),
        quiet=quiet_words(prompts, quiet_hours(profile, protocol)),
    )


def choices(prompts: Prompts, protocol: StudyProtocol, profile: PartnerProfile, item: str) -> View:
    """The question and choices for one setting (``item`` of :data:`SETTINGS_MENU`)."""
    markup = choice_keyboard(prompts, protocol, item)
    if item == "name":
        return render_view(prompts, "settings/ask_name", markup)
    if item == "group":
        current = _group_name(prompts, protocol, profile)
        return render_view(prompts, "settings/choose_group", markup, current=current)
    if item == "tz":
        return render_view(
            prompts,
            "settings/choose_timezone",
            markup,
            current=timezone_words(prompts, profile.timezone),
            type_it=prompts.label("tools.settings.type_it"),
        )
    if item == "slot":
        current = checkin_words(prompts, profile, protocol)
        return render_view(prompts, "settings/choose_checkin", markup, current=current)
    if item == "pay":
        current = payment_words(prompts, profile.payment_preference)
        return render_view(prompts, "settings/choose_payment", markup, current=current)
    current = quiet_words(prompts, quiet_hours(profile, protocol))
    return render_view(prompts, "settings/choose_quiet", markup, current=current)


def group_changed(prompts: Prompts, group: Group) -> View:
    """They moved to ``group``: its connector and its time zone."""
    return render_view(
        prompts,
        "settings/group_changed",
        group=group.name,
        connector=group.connector,
        timezone=timezone_words(prompts, group.timezone),
    )


def ask_timezone(prompts: Prompts) -> View:
    """Type the name of a place or a time zone."""
    return render_view(prompts, "settings/ask_timezone", cancel_keyboard(prompts))


def timezone_changed(prompts: Prompts, zone: str, *, now: datetime) -> View:
    """Their time zone is now ``zone``: the time there ``now``, to check it is right."""
    local = now.astimezone(zone_named(zone))
    return render_view(
        prompts,
        "settings/timezone_changed",
        timezone=timezone_words(prompts, zone),
        local_time=time_words(prompts, local.time()),
    )


def timezone_bad(prompts: Prompts) -> View:
    """A typed time zone that is not one we know."""
    return render_view(prompts, "settings/timezone_bad")


def checkin_changed(prompts: Prompts, slot: CheckinSlot) -> View:
    """Their weekly check-in moved to ``slot``."""
    return render_view(prompts, "settings/checkin_changed", checkin=slot_words(prompts, slot))


def quiet_changed(prompts: Prompts, window: QuietHours | None) -> View:
    """Their quiet hours are now ``window`` (None: none at all)."""
    quiet = quiet_words(prompts, window) if window is not None else None
    return render_view(prompts, "settings/quiet_changed", quiet=quiet)


def payment_changed(prompts: Prompts, choice: str) -> View:
    """How they would like to be thanked for their time is now ``choice``."""
    return render_view(prompts, "settings/payment_changed", choice=payment_words(prompts, choice))


def name_changed(prompts: Prompts, name: str) -> View:
    """The bot will call them ``name`` from now on."""
    return render_view(prompts, "settings/name_changed", name=name)


def name_bad(prompts: Prompts) -> View:
    """A typed name that cannot be used."""
    return render_view(prompts, "settings/name_bad", limit=NAME_LIMIT)
