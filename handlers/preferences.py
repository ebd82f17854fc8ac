"""``/settings``: change name, group, time zone, weekly check-in time and quiet hours.

Buttons (callback data, all validated; anything unknown answers politely and changes nothing):

* ``set:menu:<name|group|tz|slot|quiet>`` opens one choice;
* ``set:group:<group key>``, ``set:tz:<IANA zone from the offered list>``,
  ``set:slot:<protocol slot key>``, ``set:quiet:<preset key>`` make a change;
* ``set:tz:type`` and ``set:menu:name`` wait for the next text (``awaiting_input`` is
  ``settings:tz`` / ``settings:name``); ``set:cancel`` stops waiting.

Every change is confirmed in plain words. The changes are :mod:`bot.partners.preferences`'s
(which re-plans the partner when their schedule moves); the words,
:mod:`bot.partners.views.settings`'.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.calendar.zones import resolve_timezone
from bot.context import BotContext
from bot.involvement.payment import CHOICES as PAYMENT_CHOICES
from bot.involvement.payment import set_payment
from bot.partners import preferences
from bot.partners.views import settings as views
from bot.partners.views.general import not_understood
from bot.text import clean_name
from handlers.filters import AwaitingInput
from handlers.guards import partner_tool
from storage.clock import utcnow

MENU_ITEMS = tuple(preferences.SETTINGS_MENU)


@partner_tool(onboarded=True)
async def settings_command(update: Update, context: BotContext) -> None:
    """Show the current settings and a button for each."""
    profile = context.profile
    if profile is None:
        return
    preferences.stop_waiting(profile)
    name = await context.sender_name()
    await context.send(update, views.menu(context.prompts, context.protocol, profile, name=name))


def _valid(context: BotContext, what: str, value: str) -> bool:
    """Whether a button's change is one that was offered (forged or stale ones are not)."""
    protocol, prompts = context.protocol, context.prompts
    if what == "menu":
        return value in MENU_ITEMS
    if what == "group":
        return protocol.group(value) is not None
    if what == "tz":
        return value == "type" or value in prompts.labels("tools.settings.zones")
    if what == "slot":
        return preferences.checkin_slot(protocol, value) is not None
    if what == "quiet":
        return value in preferences.QUIET_PRESETS
    if what == "pay":
        return value in PAYMENT_CHOICES
    return False


@partner_tool(onboarded=True)
async def settings_button(update: Update, context: BotContext) -> None:
    """Open a choice or make a change, after checking the button is one we offered."""
    query = update.callback_query
    profile = context.profile
    if query is None or profile is None:
        return
    prompts, protocol = context.prompts, context.protocol
    horizon = context.settings.companion_plan_horizon_days
    session = context.session
    parts = (query.data or "").split(":", 2)
    if parts == ["set", "cancel"]:
        preferences.stop_waiting(profile)
        context.answer_button(update, prompts.label("tools.settings.cancelled"))
        return
    if len(parts) != 3 or not _valid(context, parts[1], parts[2]):
        context.answer_button(update, prompts.label("tools.settings.old_button"))
        return
    what, value = parts[1], parts[2]
    if what == "menu":
        context.answer_button(update)
        if value == "name":
            preferences.wait_for(profile, preferences.AWAITING_NAME)
        await context.send(update, views.choices(prompts, protocol, profile, value))
        return
    typing = what == "tz" and value == "type"
    context.answer_button(update, None if typing else prompts.label("tools.settings.saved"))
    if what == "group":
        group = await preferences.change_group(
            session, protocol, profile, value, horizon_days=horizon
        )
        assert group is not None
        await context.send(update, views.group_changed(prompts, group))
    elif typing:
        preferences.wait_for(profile, preferences.AWAITING_TIMEZONE)
        await context.send(update, views.ask_timezone(prompts))
    elif what == "tz":
        await preferences.change_timezone(session, protocol, profile, value, horizon_days=horizon)
        await context.send(update, views.timezone_changed(prompts, value, now=utcnow()))
    elif what == "slot":
        slot = await preferences.change_checkin_slot(
            session, protocol, profile, value, horizon_days=horizon
        )
        assert slot is not None
        await context.send(update, views.checkin_changed(prompts, slot))
    elif what == "quiet":
        window = preferences.set_quiet_preset(profile, value)
        await context.send(update, views.quiet_changed(prompts, window))
    elif what == "pay":
        set_payment(profile, value)
        await context.send(update, views.payment_changed(prompts, value))


@partner_tool(onboarded=True)
async def settings_text(update: Update, context: BotContext) -> None:
    """The name or time zone the partner was asked to type."""
    profile, message = context.profile, update.effective_message
    if profile is None or message is None or message.text is None:
        return
    prompts = context.prompts
    if profile.awaiting_input == preferences.AWAITING_NAME:
        name = clean_name(message.text, preferences.NAME_LIMIT)
        if name is None:
            await context.send(update, views.name_bad(prompts))
            return
        await preferences.rename(context.session, profile, name)
        await context.send(update, views.name_changed(prompts, name))
    elif profile.awaiting_input == preferences.AWAITING_TIMEZONE:
        zone = resolve_timezone(message.text)
        if zone is None or not await preferences.change_timezone(
            context.session,
            context.protocol,
            profile,
            zone,
            horizon_days=context.settings.companion_plan_horizon_days,
        ):
            await context.send(update, views.timezone_bad(prompts))
            return
        preferences.stop_waiting(profile)
        await context.send(update, views.timezone_changed(prompts, zone, now=utcnow()))
    else:  # a "settings:" state this version does not know: stop waiting for it
        preferences.stop_waiting(profile)
        await context.send(update, not_understood(prompts))


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("settings", settings_command),
    CallbackQueryHandler(settings_button, pattern=r"^set:"),
    MessageHandler(
        filters.TEXT
        & ~filters.COMMAND
        & filters.ChatType.PRIVATE
        & AwaitingInput(preferences.AWAITING_PREFIX),
        settings_text,
    ),
]
