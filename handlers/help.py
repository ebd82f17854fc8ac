"""``/help``: what this person can do, and where to get help at any hour."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler

from bot.context import BotContext
from bot.menu import commands_for


async def help_command(update: Update, context: BotContext) -> None:
    """List the commands for the person's role and the crisis resources."""
    person = context.person
    commands = commands_for(context.prompts, person.role if person else None)
    await context.reply(
        update,
        "help/member",
        commands=commands,
        crisis_resources=context.protocol.crisis_resources,
    )


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [CommandHandler("help", help_command)]
