"""Taking a break: ``/pause`` for a number of days the protocol offers, ``/resume`` to end it.

A pause is ``PartnerProfile.paused_until`` (aware UTC). While
:func:`bot.calendar.breaks.is_paused` is true the scheduler sends nothing it planned (check-in
prompts, reminders); replies to what the partner asks for themselves still go. Nothing
here commits: the caller owns the unit of work.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.calendar.breaks import is_paused
from bot.protocol import StudyProtocol
from storage.models import PartnerProfile


def pause_choices(protocol: StudyProtocol) -> list[int]:
    """The lengths of break (days) the protocol offers, shortest first."""
    return sorted(set(protocol.pause_options_days))


def pause(
    profile: PartnerProfile, protocol: StudyProtocol, days: int, *, now: datetime
) -> datetime:
    """Start (or change) a break of ``days`` days from ``now``; return when it ends.

    Raises ValueError when the protocol does not offer ``days``.
    """
    if days not in protocol.pause_options_days:
        raise ValueError(f"a break of {days} days is not offered")
    if now.tzinfo is None:
        raise ValueError("pause needs an aware datetime")
    profile.paused_until = now + timedelta(days=days)
    return profile.paused_until


def resume(profile: PartnerProfile, *, now: datetime) -> bool:
    """End a break now; return whether there was one."""
    was_paused = is_paused(profile, now)
    profile.paused_until = None
    return was_paused
