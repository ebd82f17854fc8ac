"""Breaks: a partner who chose ``/pause`` hears nothing scheduled until the break is over."""

from __future__ import annotations

from datetime import datetime

from storage.models import PartnerProfile


def is_paused(profile: PartnerProfile | None, now: datetime) -> bool:
    """Whether the partner is on a break at ``now`` (aware); False without a profile."""
    if now.tzinfo is None:
        raise ValueError("is_paused needs an aware datetime")
    return profile is not None and profile.paused_until is not None and profile.paused_until > now
