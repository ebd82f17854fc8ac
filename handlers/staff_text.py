"""Typed text from a connector: the next step of whichever draft they have open.

A connector has at most one draft (``StaffDraft``): logging time for a partner, a "you said,
we did" message, or a ``/meeting``. This one handler, registered before the meetings' own,
sends the text to the draft's feature; without a log or "you said" draft it goes on to
``/meeting``'s handler as before (which falls back to the usual reply).
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, MessageHandler, filters

from bot.connector import impact
from bot.context import BotContext
from bot.involvement import log as involvement_log
from handlers import log, meetings, yousaid
from handlers.filters import FromRole
from handlers.guards import connector_only
from storage.models import Role, StaffDraft


@connector_only
async def connector_text(update: Update, context: BotContext) -> None:
    """Route the text to the open draft's feature."""
    person = context.person
    if person is None:
        return
    draft = await context.session.get(StaffDraft, person.id)
    kind = draft.kind if draft is not None else None
    if draft is not None and kind == involvement_log.DRAFT_KIND:
        await log.connector_text(update, context, draft)
    elif draft is not None and kind == impact.DRAFT_KIND:
        await yousaid.draft_text(update, context, draft)
    else:
        await meetings.draft_text(update, context)


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    MessageHandler(
        filters.UpdateType.MESSAGE
        & filters.ChatType.PRIVATE
        & filters.TEXT
        & ~filters.COMMAND
        & FromRole(Role.CONNECTOR),
        connector_text,
    )
]
