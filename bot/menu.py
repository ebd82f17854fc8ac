"""The command menu: what each role sees in Telegram's "/" list and in /help."""

from __future__ import annotations

import logging

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
)
from telegram.error import TelegramError

from prompts import Prompts
from storage.models import Role

log = logging.getLogger(__name__)


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


async def publish_chat_menu(bot: Bot, prompts: Prompts, chat_id: int, role: str | None) -> None:
    """Give one chat the menu of ``role`` (None: back to the default, after a withdrawal).

    Made after the commit that enrolled them (or changed their role); a failure only costs
    the menu, so it is logged and let go.
    """
    scope = BotCommandScopeChat(chat_id)
    try:
        if role is None:
            await bot.delete_my_commands(scope=scope)
            return
        commands = [BotCommand(c, d) for c, d in commands_for(prompts, role).items()]
        await bot.set_my_commands(commands, scope=scope)
    except TelegramError as exc:
        log.info("could not set a chat's command menu (%s)", type(exc).__name__)
