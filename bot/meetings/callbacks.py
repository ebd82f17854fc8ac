"""What the meeting buttons carry, written and read in one place.

Partners answer with ``mt:<meeting id>:<yes|no|maybe>``. Connectors' ``/meeting`` buttons are
``mc:<action>[:<argument>...]`` (the actions are listed in :mod:`bot.meetings.draft`). Anything
read back is checked: a forged or truncated button reads as None.
"""

from __future__ import annotations

from bot.meetings.rules import ANSWERS
from bot.transport.callbacks import fields, number
from prompts import CALLBACK_DATA_LIMIT

CALLBACK_PREFIX = "mt"  # a partner's answer button: mt:<meeting id>:<yes|no|maybe>
STAFF_PREFIX = "mc"  # a connector's /meeting button: mc:<action>[:<argument>...]
EVERYONE = "*"  # mc:g:* chooses everyone instead of some groups


def callback_data(meeting_id: int, answer: str) -> str:
    """``mt:<meeting id>:<answer>`` for one answer button."""
    data = f"{CALLBACK_PREFIX}:{meeting_id}:{answer}"
    assert len(data.encode()) <= CALLBACK_DATA_LIMIT
    return data


def parse_callback(data: str | None) -> tuple[int, str] | None:
    """``(meeting id, answer)`` from answer-button data, or None when it is not well formed."""
    parts = fields(data, CALLBACK_PREFIX)
    if parts is None or len(parts) != 2:
        return None
    meeting_id = number(parts[0])
    if meeting_id is None or parts[1] not in ANSWERS:
        return None
    return meeting_id, parts[1]


def staff_data(action: str, *args: object) -> str:
    """``mc:<action>:<arg>...`` for a connector's button."""
    return ":".join([STAFF_PREFIX, action, *(str(a) for a in args)])


def parse_staff(data: str | None) -> tuple[str, list[str]]:
    """``(action, arguments)`` from a connector's button (``("", [])`` when there is none)."""
    parts = fields(data, STAFF_PREFIX)
    return (parts[0], parts[1:]) if parts else ("", [])
