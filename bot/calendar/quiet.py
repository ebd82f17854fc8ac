"""Quiet hours: a daily local window in which nothing scheduled is sent.

Quiet hours are stored on the profile as local ``"HH:MM"`` strings (``quiet_start``,
``quiet_end``), read in the profile's time zone:

* both ``None``: never chosen, the protocol's default ``quiet_hours`` apply;
* ``start == end`` (stored as ``"00:00"``/``"00:00"``): the partner chose no quiet hours;
* otherwise the window from ``start`` (included) to ``end`` (excluded), which may run past
  midnight (``21:00``-``08:00``).

:func:`quiet_hours` turns that into a :class:`QuietHours` (or None), and :func:`is_quiet` says
whether a moment falls inside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.calendar.zones import zone_of
from bot.protocol import StudyProtocol
from storage.models import PartnerProfile

NO_QUIET_HOURS = "00:00"


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


def parse_hhmm(value: str) -> time:
    """A ``"HH:MM"`` string as a time."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_hours(profile: PartnerProfile, protocol: StudyProtocol) -> QuietHours | None:
    """The partner's quiet hours (the protocol's default if never chosen); None: none at all."""
    start, end = profile.quiet_start, profile.quiet_end
    if start is None or end is None:
        start, end = protocol.quiet_hours.start, protocol.quiet_hours.end
    if start == end:
        return None
    return QuietHours(parse_hhmm(start), parse_hhmm(end))


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
