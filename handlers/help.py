"""``/help``: what this person can do, and where to get help at any hour."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler

from bot.context import BotContext
from bot.partners.views.general import help_message


async def help_command(update: Update, context: BotContext) -> None:
    """List the commands for the person's role and the crisis resources."""
    person = context.person
    role = person.role if person is not None else None
    await context.send(update, help_message(context.prompts, context.protocol, role))


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [CommandHandler("help", help_command)]
