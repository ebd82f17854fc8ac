"""``/pause`` (a break of a length the protocol offers) and ``/resume`` (end it now).

Buttons: ``pause:<days>`` and ``pause:cancel``. A length the protocol does not offer (a forged
or out-of-date button) answers politely and changes nothing.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.calendar.breaks import is_paused
from bot.context import BotContext
from bot.partners.pausing import pause, resume
from bot.partners.views import pause as views
from bot.transport.callbacks import fields, number
from handlers.guards import partner_tool
from storage.clock import utcnow


@partner_tool(onboarded=True)
async def pause_command(update: Update, context: BotContext) -> None:
    """Offer the lengths of break, and say when the current one ends if there is one."""
    profile = context.profile
    if profile is None:
        return
    until = profile.paused_until if is_paused(profile, utcnow()) else None
    await context.send(
        update, views.choose(context.prompts, context.protocol, profile, until=until)
    )


@partner_tool(onboarded=True)
async def pause_button(update: Update, context: BotContext) -> None:
    """Start the chosen break, or leave things as they are."""
    query = update.callback_query
    profile = context.profile
    if query is None or profile is None:
        return
    parts = fields(query.data, "pause")
    if parts == ["cancel"]:
        context.answer_button(update, context.prompts.label("tools.pause.cancelled"))
        return
    days = number(parts[0], digits=4) if parts and len(parts) == 1 else None
    if days is None or days not in context.protocol.pause_options_days:
        context.answer_button(update, context.prompts.label("tools.pause.old_button"))
        return
    context.answer_button(update)
    until = pause(profile, context.protocol, days, now=utcnow())
    await context.send(update, views.paused(context.prompts, profile, until=until))


@partner_tool(onboarded=True)
async def resume_command(update: Update, context: BotContext) -> None:
    """End a break now (or say there is none)."""
    profile = context.profile
    if profile is None:
        return
    if not resume(profile, now=utcnow()):
        await context.send(update, views.not_paused(context.prompts))
        return
    await context.send(update, views.resumed(context.prompts, context.protocol, profile))


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("pause", pause_command),
    CommandHandler("resume", resume_command),
    CallbackQueryHandler(pause_button, pattern=r"^pause:"),
]
