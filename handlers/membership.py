"""Telegram tells us when someone blocks or unblocks the bot (``my_chat_member``)."""

from __future__ import annotations

from telegram import ChatMember, Update
from telegram.ext import BaseHandler, ChatMemberHandler

from bot.context import BotContext
from bot.partners.reachability import mark_reachable, mark_unreachable

GONE = {ChatMember.BANNED, ChatMember.LEFT}


async def membership_changed(update: Update, context: BotContext) -> None:
    """Record that an enrolled person blocked or unblocked the bot."""
    change = update.my_chat_member
    person = context.person
    if change is None or person is None:
        return
    if change.new_chat_member.status in GONE:
        await mark_unreachable(context.session, context.prompts, person, reason="blocked")
    else:
        await mark_reachable(context.session, person)


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    ChatMemberHandler(membership_changed, ChatMemberHandler.MY_CHAT_MEMBER)
]
