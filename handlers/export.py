"""``/export`` for researchers: choose a period with buttons; the zip arrives as a document."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.context import BotContext
from bot.research.telegram import (
    CALLBACK_PREFIX,
    Delivery,
    export_and_send,
    parse_period,
    period_keyboard,
)
from handlers.guards import researcher_only


@researcher_only
async def export_command(update: Update, context: BotContext) -> None:
    """Offer the periods."""
    await context.reply(
        update, "research/export_choose", reply_markup=period_keyboard(context.prompts)
    )


@researcher_only
async def export_button(update: Update, context: BotContext) -> None:
    """Start the export for the chosen period; it is made after this update commits."""
    query, chat, person = update.callback_query, update.effective_chat, context.person
    period = parse_period(query.data if query is not None else None)
    if period is None or chat is None or person is None:
        context.answer_button(update, context.prompts.label("research.stale"))
        return
    context.answer_button(update, context.prompts.label("research.busy"))
    context.edit_buttons(update, None)
    await context.reply(update, "research/export_busy")
    services = context.services
    delivery = Delivery(
        db=services.db,
        settings=services.settings,
        protocol=services.protocol,
        prompts=services.prompts,
        chat_id=chat.id,
        person_id=person.id,
        wake_sender=services.sender.wake if services.sender is not None else None,
    )
    context.after_commit(lambda: export_and_send(delivery, period))


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("export", export_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(export_button, pattern=rf"^{CALLBACK_PREFIX}:"),
]
