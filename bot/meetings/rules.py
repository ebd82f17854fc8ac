"""What a meeting may be: its limits, tidy typed text, its groups and zone, who it is for.

Small pure rules the rest of the meetings room shares; :class:`MeetingError`, the one way it
says that something cannot be done; and what a partner's answer button did
(:class:`ResponseOutcome`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.protocol import StudyProtocol
from storage.models import Meeting, MeetingAnswer, PartnerProfile

ANSWERS: tuple[str, ...] = tuple(a.value for a in MeetingAnswer)
TITLE_LIMIT = 200  # the column's length
PLACE_LIMIT = 500
MAX_LENGTH_MINUTES = 12 * 60
RECENT_DAYS = 14  # attendance can be marked for meetings this recent


class MeetingError(ValueError):
    """Something about a meeting that cannot be done; ``reason`` names the wording to show.

    Reasons: ``title``, ``place``, ``length``, ``unknown_group``, ``timezone``, ``bad_date``,
    ``gap`` (a local time skipped by a clock change), ``past``, ``cancelled``, ``started``,
    ``nothing`` (a change that changes nothing), ``not_started`` (attendance too early).
    """

    def __init__(self, reason: str, **values: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


class ResponseOutcome(enum.StrEnum):
    """What a partner's answer button did."""

    RECORDED = "recorded"  # a first answer
    CHANGED = "changed"  # a different answer from before
    UNCHANGED = "unchanged"  # the same answer again
    CANCELLED = "cancelled"  # the meeting was cancelled: nothing changes
    PAST = "past"  # the meeting has started or is over: nothing changes
    NOT_INVITED = "not_invited"  # not one of the people it is for (now)
    INVALID = "invalid"  # not a partner, not an answer


@dataclass(frozen=True)
class ResponseResult:
    """The outcome of an answer, and the answer in force afterwards."""

    outcome: ResponseOutcome
    answer: str | None = None


def meeting_zone(protocol: StudyProtocol, groups: Sequence[str]) -> str:
    """The zone a meeting is arranged in: its first group's (the protocol's first for all)."""
    group = protocol.group(groups[0]) if groups else None
    return (group or protocol.groups[0]).timezone


def is_invited(meeting: Meeting, profile: PartnerProfile | None) -> bool:
    """Whether a partner with ``profile`` is one of the people the meeting is for."""
    if profile is None or profile.onboarded_at is None:
        return False
    return not meeting.groups or profile.group_key in meeting.groups


def check_groups(protocol: StudyProtocol, groups: Iterable[str]) -> list[str]:
    """The group keys in protocol order, without repeats; unknown ones raise MeetingError."""
    wanted = list(dict.fromkeys(groups))
    known = [g.key for g in protocol.groups]
    unknown = [g for g in wanted if g not in known]
    if unknown:
        raise MeetingError("unknown_group", group=unknown[0], known=", ".join(known))
    return [key for key in known if key in wanted]


def check_length(minutes: int) -> int:
    """``minutes`` if a meeting may last that long; else MeetingError ``length``."""
    if not 1 <= minutes <= MAX_LENGTH_MINUTES:
        raise MeetingError("length", most=MAX_LENGTH_MINUTES)
    return minutes


def why_not_usable(meeting: Meeting | None, now: datetime, *, started: bool = False) -> str | None:
    """Why a connector cannot act on ``meeting`` now (None: they can).

    Changing or cancelling needs a meeting that has not started; marking who came
    (``started``) one that has. Reasons: ``gone``, ``cancelled``, ``started``, ``not_started``.
    """
    if meeting is None:
        return "gone"
    if meeting.cancelled_at is not None:
        return "cancelled"
    if started and meeting.starts_at > now:
        return "not_started"
    if not started and meeting.starts_at <= now:
        return "started"
    return None
