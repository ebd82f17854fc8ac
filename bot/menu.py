"""The command menu: what each role sees in Telegram's "/" list and in /help."""

from __future__ import annotations

from telegram import Bot, BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeDefault

from prompts import Prompts
from storage.models import Role


def commands_for(prompts: Prompts, role: str | None) -> dict[str, str]:
    """Commands and their descriptions for ``role`` (None: someone not enrolled)."""
    if role is None:
        return prompts.labels("commands.default")
    if role == Role.CONNECTOR:
        return {**prompts.labels("commands.connector"), **prompts.labels("commands.staff")}
    if role == Role.RESEARCHER:
        return {**prompts.labels("commands.researcher"), **prompts.labels("commands.staff")}
    return prompts.labels("commands.member")


async def publish_menu(bot: Bot, prompts: Prompts) -> None:
    """Set the default command menu at start-up (private chats show the same list)."""
    commands = [BotCommand(c, d) for c, d in commands_for(prompts, None).items()]
    await bot.set_my_commands(commands, scope=BotCommandScopeDefault())
    await bot.set_my_commands(commands, scope=BotCommandScopeAllPrivateChats())
