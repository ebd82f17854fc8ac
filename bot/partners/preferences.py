"""A partner's own settings: name, group, time zone, weekly check-in time and quiet hours.

The functions here change the profile in the caller's session and never commit; a change that
moves the partner's schedule (group, time zone, check-in slot) re-plans it at once. What the
settings mean (zones, quiet hours, their words) is in :mod:`bot.calendar`; how they are shown,
in :mod:`bot.partners.views.settings`.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.quiet import NO_QUIET_HOURS, QuietHours, parse_hhmm
from bot.calendar.zones import is_known_zone
from bot.protocol import CheckinSlot, Group, StudyProtocol
from bot.schedule.planner import schedule_changed
from storage.models import PartnerProfile, TelegramIdentity

NAME_LIMIT = 64

#: ``PartnerProfile.awaiting_input`` while /settings waits for something typed.
AWAITING_PREFIX = "settings:"
AWAITING_NAME = "settings:name"
AWAITING_TIMEZONE = "settings:tz"

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


def wait_for(profile: PartnerProfile, awaiting: str) -> None:
    """Take the partner's next typed text as the answer to ``awaiting`` (e.g. the name)."""
    profile.awaiting_input = awaiting


def stop_waiting(profile: PartnerProfile) -> None:
    """Stop waiting for a typed setting (anything else being waited for stays)."""
    if profile.awaiting_input and profile.awaiting_input.startswith(AWAITING_PREFIX):
        profile.awaiting_input = None


async def rename(session: AsyncSession, profile: PartnerProfile, name: str) -> None:
    """Call the partner ``name`` from now on (a cleaned name), and stop waiting for it."""
    await set_name(session, profile.person_id, name)
    stop_waiting(profile)


async def _replan(
    session: AsyncSession, protocol: StudyProtocol, profile: PartnerProfile, horizon_days: int
) -> None:
    """Their check-in time, zone or group changed: move what is planned at once."""
    await schedule_changed(session, protocol, profile.person_id, horizon_days=horizon_days)


async def change_group(
    session: AsyncSession,
    protocol: StudyProtocol,
    profile: PartnerProfile,
    key: str,
    *,
    horizon_days: int,
) -> Group | None:
    """Move the partner to group ``key`` and re-plan; None (nothing changed) if unknown."""
    group = set_group(profile, protocol, key)
    if group is not None:
        await _replan(session, protocol, profile, horizon_days)
    return group


async def change_timezone(
    session: AsyncSession,
    protocol: StudyProtocol,
    profile: PartnerProfile,
    zone: str,
    *,
    horizon_days: int,
) -> bool:
    """Set a known IANA zone and re-plan; False (nothing changed) if ``zone`` is unknown."""
    if not set_timezone(profile, zone):
        return False
    await _replan(session, protocol, profile, horizon_days)
    return True


async def change_checkin_slot(
    session: AsyncSession,
    protocol: StudyProtocol,
    profile: PartnerProfile,
    key: str,
    *,
    horizon_days: int,
) -> CheckinSlot | None:
    """Move the weekly check-in to slot ``key`` and re-plan; None if there is no such slot."""
    slot = set_checkin_slot(profile, protocol, key)
    if slot is not None:
        await _replan(session, protocol, profile, horizon_days)
    return slot
