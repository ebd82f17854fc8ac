"""``/withdraw``: asks once to confirm, then stops all contact at once (bot.privacy.withdrawal).

The confirm button carries the time it was offered (``wd:yes:<unix seconds>``) and works for a
day: an old, stale or forged one answers politely and changes nothing. "No" changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.context import BotContext
from bot.menu import publish_chat_menu
from bot.privacy import views
from bot.privacy.withdrawal import withdraw
from bot.transport.callbacks import fields, number
from handlers.guards import partner_tool
from storage.clock import utcnow

CONFIRM_VALID = timedelta(days=1)
_CLOCK_SKEW = timedelta(minutes=5)


@partner_tool(onboarded=False)
async def withdraw_command(update: Update, context: BotContext) -> None:
    """Explain what stopping means (as the protocol says) and ask once to confirm."""
    await context.send(
        update,
        views.confirm_withdrawal(context.prompts, context.protocol, context.profile, now=utcnow()),
    )


def _fresh(stamp: str) -> bool:
    """Whether a confirm button's time is a number within the last day (not the future)."""
    offered = number(stamp)
    if offered is None:
        return False
    now = utcnow().timestamp()
    return now - CONFIRM_VALID.total_seconds() <= offered <= now + _CLOCK_SKEW.total_seconds()


@partner_tool(onboarded=False)
async def withdraw_button(update: Update, context: BotContext) -> None:
    """ "Yes, stop" withdraws at once; "No, keep going" changes nothing."""
    query = update.callback_query
    if query is None:
        return
    parts = fields(query.data, "wd")
    if parts == ["no"]:
        context.answer_button(update)
        await context.send(update, views.kept_going(context.prompts))
        return
    if parts is None or len(parts) != 2 or parts[0] != "yes" or not _fresh(parts[1]):
        context.answer_button(update, context.prompts.label("tools.withdraw.old_button"))
        return
    context.answer_button(update)
    person = context.person
    if person is None:
        return
    await withdraw(
        context.session,
        person,
        protocol=context.protocol,
        prompts=context.prompts,
        data_dir=context.settings.companion_data_dir,
    )
    if update.effective_chat is not None:  # the default menu again
        chat_id = update.effective_chat.id
        context.after_commit(
            partial(publish_chat_menu, context.bot, context.prompts, chat_id, None)
        )


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("withdraw", withdraw_command),
    CallbackQueryHandler(withdraw_button, pattern=r"^wd:"),
]
