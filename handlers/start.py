"""``/start`` for someone already enrolled (invite codes arrive with the partner journey)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler

from bot.context import BotContext
from bot.partners.views.general import welcome_back


async def start(update: Update, context: BotContext) -> None:
    """Greet an enrolled person who opens the bot again."""
    person = context.person
    if person is None:
        return
    name = await context.sender_name()
    await context.send(update, welcome_back(context.prompts, name=name))


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [CommandHandler("start", start)]
