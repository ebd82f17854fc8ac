"""The buttons of the involvement log, for a partner (``lg:``) and for a connector (``lc:``).

The same steps serve both; the prefix says whose buttons they are, so each is guarded for its
own role. A connector's review buttons are ``iv:ok:<entry>`` (approve as logged),
``iv:c:<entry>`` (correct: shows the lengths) and ``iv:m:<entry>:<minutes>`` (approve with
those minutes).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.calendar.words import day_words, duration_words
from bot.involvement.log import DAYS_BACK, DURATIONS, KINDS, day_of
from prompts import Prompts


def _button(text: str, data: str) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text, callback_data=data)]


def _label(prompts: Prompts, key: str, **values: object) -> str:
    return prompts.label(f"involvement.buttons.{key}", **values)


def step_keyboard(
    prompts: Prompts, prefix: str, step: str, zone: ZoneInfo, now: datetime
) -> InlineKeyboardMarkup:
    """The choices of one step of logging time, then Cancel (``<prefix>:x``)."""
    rows: list[list[InlineKeyboardButton]] = []
    if step == "kind":
        rows = [_button(kind_words(prompts, k), f"{prefix}:k:{k}") for k in KINDS]
    elif step == "day":
        rows = [
            _button(day_words(prompts, day_of(n, zone, now), zone), f"{prefix}:d:{n}")
            for n in range(DAYS_BACK)
        ]
    elif step == "minutes":
        rows = [_button(duration_words(prompts, m), f"{prefix}:m:{m}") for m in DURATIONS]
    elif step == "expenses":
        rows = [_button(_label(prompts, "no_expenses"), f"{prefix}:e:0")]
    elif step == "confirm":
        rows = [_button(_label(prompts, "send" if prefix == "lg" else "save"), f"{prefix}:ok")]
    rows.append(_button(_label(prompts, "cancel"), f"{prefix}:x"))
    return InlineKeyboardMarkup(rows)


def kind_words(prompts: Prompts, kind: str) -> str:
    """What the time was given to, in words."""
    return prompts.label(f"involvement.kinds.{kind}") if kind in KINDS else kind


def review_keyboard(prompts: Prompts, entry_id: int) -> InlineKeyboardMarkup:
    """Approve as logged, or correct the length."""
    return InlineKeyboardMarkup(
        [
            _button(_label(prompts, "approve"), f"iv:ok:{entry_id}"),
            _button(_label(prompts, "correct"), f"iv:c:{entry_id}"),
        ]
    )


def correct_keyboard(prompts: Prompts, entry_id: int) -> InlineKeyboardMarkup:
    """The lengths a connector can correct an entry to (approving it)."""
    return InlineKeyboardMarkup(
        [_button(duration_words(prompts, m), f"iv:m:{entry_id}:{m}") for m in DURATIONS]
    )
