"""Onboarding handlers (group -1): they take over while a partner is setting up.

They run after the gate and before the features. While a partner's onboarding is unfinished
(``profile.onboarded_at`` is None, see ``handlers.filters.Onboarding``), any message re-sends
the current step (typed text at the name step is the name), ``/start`` resumes, and onboarding
buttons (``ob:<step>:<value>``) move them on. Whenever these handlers answer an update they
raise ``ApplicationHandlerStop`` so that no feature answers it too. Updates from people who
have finished onboarding, and from staff, pass through untouched (except a press of an old
onboarding button, which is answered here because no feature knows those buttons).

``/withdraw`` is let through so that someone half-way can always stop, and so is everything
from someone who has withdrawn.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    MessageHandler,
    filters,
)

from bot.context import BotContext
from bot.partners import onboarding as ob
from bot.partners.views import onboarding as views
from handlers.filters import Onboarding
from storage.models import PartnerProfile, PersonStatus, TelegramIdentity

PASS_THROUGH_COMMANDS = frozenset({"withdraw"})


async def send_step(
    update: Update,
    context: BotContext,
    profile: PartnerProfile,
    identity: TelegramIdentity | None,
    *,
    resumed: bool = False,
) -> None:
    """Send the message(s) (and buttons) for the partner's current onboarding step.

    Each is a conversation step: the partner cannot go on without it, so one lost in a crash
    is sent again at the restart.
    """
    ob.current_step(context.protocol, profile)
    for view in views.step_views(
        context.prompts, context.protocol, profile, identity, resumed=resumed
    ):
        await context.send(update, view, conversation_step=True)


def _command(update: Update) -> str | None:
    """The command a message starts with (``"start"`` for ``/start@bot CODE``), if any."""
    message = update.message
    text = message.text if message is not None else None
    if not text or not text.startswith("/"):
        return None
    return text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower() if len(text) > 1 else ""


async def on_message(update: Update, context: BotContext) -> None:
    """Any message from a partner who has not finished onboarding."""
    person = context.person
    profile = context.profile
    if (
        person is None
        or profile is None
        or profile.onboarded_at is not None
        or person.status == PersonStatus.WITHDRAWN
    ):
        return  # not ours: let the features see it
    command = _command(update)
    if command in PASS_THROUGH_COMMANDS:
        return
    identity = await context.identity()
    if profile.onboarding_step == ob.DECLINED:
        if command == "start":
            ob.restart(profile)
            await send_step(update, context, profile, identity)
        else:
            await send_step(update, context, profile, identity, resumed=True)
        raise ApplicationHandlerStop
    message = update.message
    typed = message.text if message is not None and command is None else None
    if (
        profile.onboarding_step == ob.NAME
        and typed is not None
        and identity is not None
        and ob.set_name(profile, identity, context.protocol, typed) is None
    ):
        await context.send(update, views.name_invalid(context.prompts), conversation_step=True)
        raise ApplicationHandlerStop
    await send_step(update, context, profile, identity)
    raise ApplicationHandlerStop


async def on_edit(update: Update, context: BotContext) -> None:
    """An edited message during onboarding changes nothing and gets no reply."""
    raise ApplicationHandlerStop


async def on_button(update: Update, context: BotContext) -> None:
    """An onboarding button (``ob:<step>:<value>``): validated, stored, next step sent."""
    query = update.callback_query
    if query is None:
        return
    person = context.person
    profile = context.profile
    prompts = context.prompts
    parsed = ob.parse_callback(query.data or "")
    if person is None or profile is None or person.status == PersonStatus.WITHDRAWN:
        context.answer_button(update, prompts.label("buttons.not_available"))
        raise ApplicationHandlerStop
    if parsed is None:
        context.answer_button(update, prompts.label("onboarding.bad_button"))
        raise ApplicationHandlerStop
    step, value = parsed
    if profile.onboarded_at is not None:
        context.answer_button(update, prompts.label("onboarding.step_done"))
        raise ApplicationHandlerStop
    identity = await context.identity()
    result = await ob.apply_choice(
        context.session,
        context.protocol,
        person=person,
        profile=profile,
        identity=identity,
        step=step,
        value=value,
        horizon_days=context.settings.companion_plan_horizon_days,
    )
    if result.outcome == ob.ChoiceOutcome.ACCEPTED:
        context.answer_button(update, prompts.label("onboarding.saved"))
        await send_step(update, context, profile, identity)
    elif result.outcome == ob.ChoiceOutcome.DONE_ALREADY:
        context.answer_button(update, prompts.label("onboarding.step_done"))
    elif result.outcome == ob.ChoiceOutcome.NOT_NOW:
        context.answer_button(update, prompts.label("onboarding.not_now"))
    else:
        context.answer_button(update, prompts.label("onboarding.bad_button"))
    raise ApplicationHandlerStop


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CallbackQueryHandler(on_button, pattern=r"^ob:"),
    MessageHandler(
        filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE & Onboarding(), on_message
    ),
    MessageHandler(
        filters.UpdateType.EDITED_MESSAGE & filters.ChatType.PRIVATE & Onboarding(), on_edit
    ),
]
