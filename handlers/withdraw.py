"""``/withdraw``: asks once to confirm, then stops all contact at once (bot.privacy.withdrawal).

Also home of :func:`partner_tool`, the wrapper every partner tool (/journey, /mydata,
/settings, /pause, /resume, /withdraw) uses: a withdrawn person gets no reply at all (a button
press is answered silently, so Telegram stops its spinner), staff get the guard's kind "not
for you", and a partner who has not finished onboarding is asked to finish first.

The confirm button carries the time it was offered (``wd:yes:<unix seconds>``) and works for a
day: an old, stale or forged one answers politely and changes nothing. "No" changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.context import BotContext
from bot.privacy.withdrawal import confirm_keyboard, is_withdrawn, withdraw
from handlers.guards import partner_only
from storage.types import utcnow

ToolCallback = Callable[[Update, BotContext], Coroutine[Any, Any, None]]

CONFIRM_VALID = timedelta(days=1)
_CLOCK_SKEW = timedelta(minutes=5)


def partner_tool(*, onboarded: bool) -> Callable[[ToolCallback], ToolCallback]:
    """Guard a partner tool: silent for the withdrawn, partners only, onboarded if asked."""

    def decorate(callback: ToolCallback) -> ToolCallback:
        @functools.wraps(callback)
        async def checked(update: Update, context: BotContext) -> None:
            if onboarded and (context.profile is None or context.profile.onboarded_at is None):
                if update.callback_query is not None:
                    context.answer_button(update)
                await context.reply(update, "settings/finish_setup_first")
                return
            await callback(update, context)

        guarded = partner_only(checked)

        @functools.wraps(guarded)  # keeps the guard's role marker for the guard test
        async def tool(update: Update, context: BotContext) -> None:
            if is_withdrawn(context.person):
                if update.callback_query is not None:
                    context.answer_button(update)
                return
            await guarded(update, context)

        return tool

    return decorate


@partner_tool(onboarded=False)
async def withdraw_command(update: Update, context: BotContext) -> None:
    """Explain what stopping means (as the protocol says) and ask once to confirm."""
    profile = context.profile
    group = context.protocol.group(profile.group_key if profile else None)
    stamp = int(utcnow().timestamp())
    await context.reply(
        update,
        "withdraw/confirm",
        reply_markup=confirm_keyboard(context.prompts, stamp),
        data_policy=context.protocol.withdrawal.data,
        connector=group.connector if group is not None else None,
    )


def _fresh(stamp: str) -> bool:
    """Whether a confirm button's time is a number within the last day (not the future)."""
    if not stamp.isdigit() or len(stamp) > 12:
        return False
    offered = int(stamp)
    now = utcnow().timestamp()
    return now - CONFIRM_VALID.total_seconds() <= offered <= now + _CLOCK_SKEW.total_seconds()


@partner_tool(onboarded=False)
async def withdraw_button(update: Update, context: BotContext) -> None:
    """ "Yes, stop" withdraws at once; "No, keep going" changes nothing."""
    query = update.callback_query
    if query is None:
        return
    parts = (query.data or "").split(":")
    if parts == ["wd", "no"]:
        context.answer_button(update)
        await context.reply(update, "withdraw/kept_going")
        return
    if len(parts) != 3 or parts[1] != "yes" or not _fresh(parts[2]):
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


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("withdraw", withdraw_command),
    CallbackQueryHandler(withdraw_button, pattern=r"^wd:"),
]
