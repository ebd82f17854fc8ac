"""``/partners``: a short, paged roster of the partners a connector looks after.

Grouped by group, sorted by name (never by how much someone does: it shows who might like a
call, not a league table). Each line: the name we call them, how they take part, when they
last did a check-in in words, meetings attended and hours given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.calendar.words import ago_words, date_words, hours_words
from bot.protocol import StudyProtocol
from prompts import Prompts
from storage.models import PersonStatus
from storage.queries.involvement import Given, given_by
from storage.queries.roster import PartnerRow, partner_rows

PAGE_SIZE = 8
NAME_LIMIT = 30


def state_of(row: PartnerRow, now: datetime) -> str:
    """How they take part: setting_up, taking_part, paused, unreachable or withdrawn."""
    if row.status == PersonStatus.WITHDRAWN:
        return "withdrawn"
    if row.status == PersonStatus.UNREACHABLE:
        return "unreachable"
    if not row.onboarded:
        return "setting_up"
    if row.paused_until is not None and row.paused_until > now:
        return "paused"
    return "taking_part"


def state_words(prompts: Prompts, row: PartnerRow, zone: ZoneInfo, now: datetime) -> str:
    """The state in kind words, e.g. ``paused until 12 March``."""
    state = state_of(row, now)
    until = date_words(prompts, row.paused_until, zone) if row.paused_until else ""
    return prompts.label(f"roster.state.{state}", until=until)


def line_values(
    prompts: Prompts, row: PartnerRow, given: Given, zone: ZoneInfo, now: datetime
) -> dict[str, Any]:
    """One partner's facts in words (the roster line, and the top of their card)."""
    return {
        "name": row.name,
        "state": state_words(prompts, row, zone, now),
        "last": ago_words(prompts, row.last_checkin_at, now, zone),
        "meetings": given.meetings,
        "hours": hours_words(prompts, given.minutes),
    }


@dataclass(frozen=True)
class RosterPage:
    """One page of the roster: its groups and lines, and its buttons."""

    groups: list[dict[str, Any]]
    page: int
    pages: int
    total: int
    markup: InlineKeyboardMarkup | None


def _short(text: str) -> str:
    return text if len(text) <= NAME_LIMIT else text[: NAME_LIMIT - 1] + "\u2026"


async def roster_page(
    session: AsyncSession,
    prompts: Prompts,
    protocol: StudyProtocol,
    groups: frozenset[str] | None,
    page: int,
    *,
    now: datetime,
) -> RosterPage:
    """Page ``page`` (from 0; clamped) of the partners in ``groups`` (None: everyone)."""
    rows = await partner_rows(session, groups)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    shown = rows[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    given = await given_by(session, [r.person_id for r in shown])
    zone = protocol.groups[0].zone
    grouped: list[dict[str, Any]] = []
    for row in shown:
        group = protocol.group(row.group_key)
        name = group.name if group else prompts.label("roster.no_group")
        if not grouped or grouped[-1]["name"] != name:
            grouped.append({"name": name, "lines": []})
        values = line_values(prompts, row, given.get(row.person_id, Given()), zone, now)
        grouped[-1]["lines"].append(values)
    buttons = [
        [
            InlineKeyboardButton(
                _short(r.name or prompts.label("people.unnamed")),
                callback_data=f"pt:c:{r.person_id}",
            )
        ]
        for r in shown
    ]
    nav = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(
                prompts.label("roster.previous"), callback_data=f"pt:p:{page - 1}"
            )
        )
    if page < pages - 1:
        nav.append(
            InlineKeyboardButton(prompts.label("roster.next"), callback_data=f"pt:p:{page + 1}")
        )
    if nav:
        buttons.append(nav)
    return RosterPage(
        groups=grouped,
        page=page,
        pages=pages,
        total=len(rows),
        markup=InlineKeyboardMarkup(buttons) if buttons else None,
    )
