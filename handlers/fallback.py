"""Anything an enrolled person sends that no feature handles: a kind pointer to /help.

A partner's free text (or a caption) is first checked by safeguarding: on a match the crisis
reply is the answer and the team is alerted, in this same update. Edited messages from
partners are checked too, and get a reply only on a match.
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.context import BotContext
from bot.partners import checkins, safeguarding
from bot.partners.views.checkins import use_buttons
from bot.partners.views.general import not_understood
from handlers.relay import relay_partner_message
from storage.clock import utcnow
from storage.models import PersonStatus, Role


async def screened(update: Update, context: BotContext, message: Message | None) -> bool:
    """Run safeguarding on a partner's message text or caption; True if it matched."""
    person = context.person
    if message is None or person is None or person.role != Role.PARTNER:
        return False
    if person.status == PersonStatus.WITHDRAWN:
        return False  # nothing may be sent to a withdrawn partner; see the withdraw feature
    text = message.text or message.caption
    alert = await safeguarding.screen_text(
        context.session,
        context.protocol,
        context.prompts,
        person,
        text,
        chat_id=message.chat_id,
        source="message",
        now=utcnow(),
    )
    return alert is not None


async def unknown_message(update: Update, context: BotContext) -> None:
    """Unknown commands, stickers, photos, long texts: one gentle reply, nothing stored."""
    if update.effective_chat is None or update.effective_chat.type != "private":
        return
    if await screened(update, context, update.message):
        await relay_partner_message(update, context, acknowledge=False)  # it still goes on
        return
    person, message = context.person, update.message
    text = message.text if message is not None else None
    typed = bool(text) and not (text or "").startswith("/")
    if typed and person is not None and person.role == Role.PARTNER:
        # Typing while a button question waits: point at the buttons, not at /help.
        going = await checkins.current_open(
            context.session,
            person.id,
            now=utcnow(),
            none_at_start=context.scope.had_open_checkin is False,
        )
        current = going.current_question if going is not None else None
        asked = checkins.find_question(context.protocol, current)
        if asked is not None and asked.kind != "text":
            await context.send(update, use_buttons(context.prompts))
            return
    if await relay_partner_message(update, context):  # to their connector
        return
    await context.send(update, not_understood(context.prompts))


async def edited_message(update: Update, context: BotContext) -> None:
    """An edited message: checked by safeguarding; no reply unless it matched."""
    await screened(update, context, update.edited_message)


async def unknown_button(update: Update, context: BotContext) -> None:
    """A button no feature recognises (stale or forged): answer politely, change nothing."""
    query = update.callback_query
    if query is not None:
        context.answer_button(update, context.prompts.label("buttons.not_available"))


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    MessageHandler(filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE, unknown_message),
    MessageHandler(filters.UpdateType.EDITED_MESSAGE & filters.ChatType.PRIVATE, edited_message),
    CallbackQueryHandler(unknown_button),
]
