"""Time zones: a partner's IANA zone, and a zone someone typed."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from storage.models import PartnerProfile

DEFAULT_ZONE = "Europe/London"


def zone_named(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (London if it is missing or somehow not a known zone)."""
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def zone_of(profile: PartnerProfile | None) -> ZoneInfo:
    """The partner's time zone (London if the stored name is somehow not a known zone)."""
    return zone_named(profile.timezone if profile is not None else None)


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


def is_known_zone(zone: str) -> bool:
    """Whether ``zone`` is an IANA zone name this machine knows."""
    return zone in _zones_by_folded_name().values()
