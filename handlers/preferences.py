"""``/settings``: change name, group, time zone, weekly check-in time and quiet hours.

Buttons (callback data, all validated; anything unknown answers politely and changes nothing):

* ``set:menu:<name|group|tz|slot|quiet|pay>`` opens one choice;
* ``set:group:<group key>``, ``set:tz:<IANA zone from the offered list>``,
  ``set:slot:<protocol slot key>``, ``set:quiet:<preset key>``, ``set:pay:<choice>`` make a
  change;
* ``set:tz:type`` and ``set:menu:name`` wait for the next text (``awaiting_input`` is
  ``settings:tz`` / ``settings:name``); ``set:cancel`` stops waiting.

Every change is confirmed in plain words.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.calendar.quiet import quiet_hours
from bot.calendar.words import checkin_words, quiet_words, slot_words, time_words, timezone_words
from bot.calendar.zones import resolve_timezone, zone_of
from bot.context import BotContext
from bot.involvement.payment import CHOICES as PAYMENT_CHOICES
from bot.involvement.payment import payment_words, set_payment
from bot.partners.preferences import (
    NAME_LIMIT,
    QUIET_PRESETS,
    SETTINGS_MENU,
    checkin_slot,
    clean_name,
    current_name,
    set_checkin_slot,
    set_group,
    set_name,
    set_quiet_preset,
    set_timezone,
    settings_cancel_keyboard,
    settings_choice_keyboard,
    settings_menu_keyboard,
)
from bot.schedule.planner import schedule_changed
from handlers.filters import AwaitingInput
from handlers.guards import partner_tool
from storage.clock import utcnow
from storage.models import PartnerProfile

AWAITING_PREFIX = "settings:"
AWAITING_NAME = "settings:name"
AWAITING_TIMEZONE = "settings:tz"
MENU_ITEMS = tuple(SETTINGS_MENU)


@partner_tool(onboarded=True)
async def settings_command(update: Update, context: BotContext) -> None:
    """Show the current settings and a button for each."""
    profile = context.profile
    if profile is None:
        return
    prompts = context.prompts
    if profile.awaiting_input and profile.awaiting_input.startswith(AWAITING_PREFIX):
        profile.awaiting_input = None
    group = context.protocol.group(profile.group_key)
    await context.reply(
        update,
        "settings/menu",
        reply_markup=settings_menu_keyboard(prompts),
        name=await current_name(context.session, profile.person_id)
        or prompts.label("tools.settings.not_set"),
        group=group.name if group else prompts.label("tools.settings.not_set"),
        timezone=timezone_words(prompts, profile.timezone),
        checkin=checkin_words(prompts, profile, context.protocol),
        quiet=quiet_words(prompts, quiet_hours(profile, context.protocol)),
    )


async def _open(update: Update, context: BotContext, item: str) -> None:
    """Show the choices for one setting."""
    profile = context.profile
    assert profile is not None
    prompts, protocol = context.prompts, context.protocol
    markup = settings_choice_keyboard(prompts, protocol, item)
    if item == "name":
        profile.awaiting_input = AWAITING_NAME
        await context.reply(update, "settings/ask_name", reply_markup=markup)
    elif item == "group":
        current = protocol.group(profile.group_key)
        await context.reply(
            update,
            "settings/choose_group",
            reply_markup=markup,
            current=current.name if current else prompts.label("tools.settings.not_set"),
        )
    elif item == "tz":
        await context.reply(
            update,
            "settings/choose_timezone",
            reply_markup=markup,
            current=timezone_words(prompts, profile.timezone),
            type_it=prompts.label("tools.settings.type_it"),
        )
    elif item == "slot":
        await context.reply(
            update,
            "settings/choose_checkin",
            reply_markup=markup,
            current=checkin_words(prompts, profile, protocol),
        )
    elif item == "quiet":
        await context.reply(
            update,
            "settings/choose_quiet",
            reply_markup=markup,
            current=quiet_words(prompts, quiet_hours(profile, protocol)),
        )
    elif item == "pay":
        await context.reply(
            update,
            "settings/choose_payment",
            reply_markup=markup,
            current=payment_words(prompts, profile.payment_preference),
        )


async def _timezone_changed(update: Update, context: BotContext, zone: str) -> None:
    profile = context.profile
    assert profile is not None
    local = utcnow().astimezone(zone_of(profile))
    await context.reply(
        update,
        "settings/timezone_changed",
        timezone=timezone_words(context.prompts, zone),
        local_time=time_words(context.prompts, local.time()),
    )


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
        return checkin_slot(protocol, value) is not None
    if what == "quiet":
        return value in QUIET_PRESETS
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
    parts = (query.data or "").split(":", 2)
    if parts == ["set", "cancel"]:
        if profile.awaiting_input and profile.awaiting_input.startswith(AWAITING_PREFIX):
            profile.awaiting_input = None
        context.answer_button(update, prompts.label("tools.settings.cancelled"))
        return
    if len(parts) != 3 or not _valid(context, parts[1], parts[2]):
        context.answer_button(update, prompts.label("tools.settings.old_button"))
        return
    what, value = parts[1], parts[2]
    if what == "menu":
        context.answer_button(update)
        await _open(update, context, value)
        return
    typing = what == "tz" and value == "type"
    context.answer_button(update, None if typing else prompts.label("tools.settings.saved"))
    if what == "group":
        group = set_group(profile, protocol, value)
        assert group is not None
        await context.reply(
            update,
            "settings/group_changed",
            group=group.name,
            connector=group.connector,
            timezone=timezone_words(prompts, group.timezone),
        )
    elif typing:
        profile.awaiting_input = AWAITING_TIMEZONE
        await context.reply(
            update,
            "settings/ask_timezone",
            reply_markup=settings_cancel_keyboard(prompts),
        )
    elif what == "tz":
        set_timezone(profile, value)
        await _timezone_changed(update, context, value)
    elif what == "slot":
        slot = set_checkin_slot(profile, protocol, value)
        assert slot is not None
        await context.reply(update, "settings/checkin_changed", checkin=slot_words(prompts, slot))
    if what in ("group", "tz", "slot"):
        await _replan(context, profile)
    if what == "pay":
        set_payment(profile, value)
        await context.reply(
            update, "settings/payment_changed", choice=payment_words(prompts, value)
        )
    if what == "quiet":
        window = set_quiet_preset(profile, value)
        await context.reply(
            update,
            "settings/quiet_changed",
            quiet=quiet_words(prompts, window) if window is not None else None,
        )


async def _replan(context: BotContext, profile: PartnerProfile) -> None:
    """Their check-in time, zone or group changed: move what is planned at once."""
    await schedule_changed(
        context.session,
        context.protocol,
        profile.person_id,
        horizon_days=context.settings.companion_plan_horizon_days,
    )


@partner_tool(onboarded=True)
async def settings_text(update: Update, context: BotContext) -> None:
    """The name or time zone the partner was asked to type."""
    profile, person, message = context.profile, context.person, update.effective_message
    if profile is None or person is None or message is None or message.text is None:
        return
    if profile.awaiting_input == AWAITING_NAME:
        name = clean_name(message.text)
        if name is None:
            await context.reply(update, "settings/name_bad", limit=NAME_LIMIT)
            return
        await set_name(context.session, person.id, name)
        profile.awaiting_input = None
        await context.reply(update, "settings/name_changed", name=name)
    elif profile.awaiting_input == AWAITING_TIMEZONE:
        zone = resolve_timezone(message.text)
        if zone is None or not set_timezone(profile, zone):
            await context.reply(update, "settings/timezone_bad")
            return
        profile.awaiting_input = None
        await _replan(context, profile)
        await _timezone_changed(update, context, zone)
    else:  # a "settings:" state this version does not know: stop waiting for it
        profile.awaiting_input = None
        await context.reply(update, "fallback/not_understood")


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("settings", settings_command),
    CallbackQueryHandler(settings_button, pattern=r"^set:"),
    MessageHandler(
        filters.TEXT
        & ~filters.COMMAND
        & filters.ChatType.PRIVATE
        & AwaitingInput(AWAITING_PREFIX),
        settings_text,
    ),
]
