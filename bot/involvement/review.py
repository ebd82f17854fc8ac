"""Telling the connectors that a partner logged time, with buttons to approve or correct it."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.words import day_words, duration_words, money_words
from bot.involvement.buttons import kind_words, review_keyboard
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.models import Involvement
from storage.queries.people import connector_chat_ids


def entry_values(prompts: Prompts, entry: Involvement, zone: ZoneInfo) -> dict[str, Any]:
    """An entry's facts in words, for the templates."""
    return {
        "kind": kind_words(prompts, entry.kind),
        "day": day_words(prompts, entry.occurred_at, zone),
        "length": duration_words(prompts, entry.minutes),
        "expenses": money_words(prompts, entry.expenses_pence) if entry.expenses_pence else None,
    }


async def ask_connectors_to_review(
    session: AsyncSession, prompts: Prompts, entry: Involvement, name: str, zone: ZoneInfo
) -> int:
    """Queue the review request to every active connector; return how many were asked."""
    text = prompts.render("involvement/review", name=name, **entry_values(prompts, entry, zone))
    chats = await connector_chat_ids(session)
    for chat_id in chats:
        await enqueue(
            session,
            key=f"involvement:review:{entry.id}:{chat_id}",
            chat_id=chat_id,
            text=text,
            reply_markup=review_keyboard(prompts, entry.id),
            kind="involvement",
        )
    return len(chats)
