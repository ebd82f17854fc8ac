"""The connector's messages (not commands), sorted to the step they belong to.

A connector's message may be: a Telegram reply to a partner's relayed message (sent to that
partner), a message begun with "Message them" on a partner's card, the content of a
``/broadcast`` draft, the note that resolves an alert, the next
step of a ``/meeting``, ``/log`` (for a partner) or ``/yousaid`` draft, or a reply to
something else (one line says how answering works). Anything else gets the fallback's usual reply.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, MessageHandler, filters

from bot.connector import impact, relay
from bot.context import BotContext
from bot.involvement import log as involvement_log
from bot.meetings import draft as meeting_draft
from handlers import alerts, fallback, log, meetings, yousaid
from handlers import broadcast as broadcast_handlers
from handlers import relay as relay_handlers
from handlers.filters import FromRole
from handlers.guards import connector_only
from storage.models import Role
from storage.queries.drafts import staff_draft_of


@connector_only
async def connector_message(update: Update, context: BotContext) -> None:
    """Route a connector's message (see the module docstring)."""
    message, person = update.effective_message, context.person
    if message is None or person is None:
        return
    if await relay_handlers.answer_partner(update, context):
        return
    draft = await staff_draft_of(context.session, person.id)
    kind, step = (draft.kind, draft.step) if draft is not None else (None, None)
    if draft is not None and kind == relay.MESSAGE_DRAFT:
        await relay_handlers.message_from_card(update, context, draft)
    elif draft is not None and kind == broadcast_handlers.DRAFT_KIND and step == "content":
        await broadcast_handlers.take_content(update, context, draft)
    elif draft is not None and kind == alerts.DRAFT_KIND:
        await alerts.take_note(update, context, draft)
    elif draft is not None and kind == involvement_log.DRAFT_KIND and message.text is not None:
        await log.connector_text(update, context, draft)
    elif draft is not None and kind == impact.DRAFT_KIND and message.text is not None:
        await yousaid.draft_text(update, context, draft)
    elif kind == meeting_draft.DRAFT_KIND and message.text is not None:
        await meetings.draft_text(update, context)
    elif message.reply_to_message is not None:
        await context.reply(update, "relay/not_a_relay")
    else:
        await fallback.unknown_message(update, context)


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    MessageHandler(
        filters.UpdateType.MESSAGE
        & filters.ChatType.PRIVATE
        & ~filters.COMMAND
        & FromRole(Role.CONNECTOR),
        connector_message,
    ),
]
