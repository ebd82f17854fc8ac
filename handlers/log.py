"""``/log``: time given to the study, logged by a partner or by a connector for a partner.

Partners press ``lg:`` buttons (``partner_tool``); connectors ``lc:`` buttons
(``connector_only``), starting with ``lc:new:<partner id>`` from a partner's card. The steps
are the same (see :mod:`bot.involvement.log`): ``<prefix>:k:<kind>``, ``<prefix>:d:<days
ago>``, ``<prefix>:m:<minutes>``, ``<prefix>:e:0`` (no expenses; an amount is typed),
``<prefix>:ok`` and ``<prefix>:x`` (cancel). A partner is asked once, before their first
entry, how they would like to be thanked (``lg:pay:<choice>``). Connectors review a partner's
entry with ``iv:`` buttons. A button that does not fit the draft's step (old or forged)
answers politely and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.calendar.zones import zone_of
from bot.context import BotContext
from bot.involvement import log
from bot.involvement.buttons import correct_keyboard, step_keyboard
from bot.involvement.payment import payment_keyboard, payment_words, set_payment
from bot.involvement.review import ask_connectors_to_review, entry_values
from bot.transport.callbacks import fields, number
from bot.transport.outbox import enqueue
from handlers.filters import AwaitingInput
from handlers.guards import connector_only, partner_tool
from storage.clock import utcnow
from storage.models import Involvement, PartnerProfile, Role, StaffDraft
from storage.queries.people import chat_ids_of, name_of, person_by_id, profile_of
from storage.queries.staff import looks_after

AWAITING_EXPENSES = "log:expenses"
PARTNER, CONNECTOR = "lg", "lc"


async def _partner_profile(context: BotContext, draft: StaffDraft) -> PartnerProfile | None:
    return await profile_of(context.session, int(draft.data["partner_id"]))


async def _ask_step(update: Update, context: BotContext, draft: StaffDraft, prefix: str) -> None:
    """Ask the draft's current step, with its buttons."""
    profile = await _partner_profile(context, draft)
    zone = zone_of(profile)
    prompts, now = context.prompts, utcnow()
    markup = step_keyboard(prompts, prefix, draft.step, zone, now)
    name = None
    if prefix == CONNECTOR:
        name = await name_of(context.session, int(draft.data["partner_id"]))
    values: dict[str, Any] = {"name": name, "step": draft.step}
    if draft.step == "expenses" and prefix == PARTNER and context.profile is not None:
        context.profile.awaiting_input = AWAITING_EXPENSES
    if draft.step == "confirm":
        entry = Involvement(
            kind=draft.data["kind"],
            minutes=int(draft.data["minutes"]),
            occurred_at=datetime.fromisoformat(draft.data["at"]),
            expenses_pence=int(draft.data.get("pence") or 0),
        )
        values.update(entry_values(prompts, entry, zone))
    await context.ask(update, "involvement/ask", reply_markup=markup, **values)


async def _begin(update: Update, context: BotContext, partner_id: int, prefix: str) -> None:
    person = context.person
    assert person is not None
    draft = await log.start(context.session, person.id, partner_id, now=utcnow())
    await _ask_step(update, context, draft, prefix)


@partner_tool(onboarded=True)
async def log_command(update: Update, context: BotContext) -> None:
    """Start logging time given; the first time, ask how they would like to be thanked."""
    person, profile = context.person, context.profile
    if person is None or profile is None:
        return
    if profile.payment_preference is None:
        await context.ask(
            update, "involvement/ask_payment", reply_markup=payment_keyboard(context.prompts)
        )
        return
    await _begin(update, context, person.id, PARTNER)


async def _cancel(update: Update, context: BotContext) -> None:
    person = context.person
    assert person is not None
    await log.drop(context.session, person.id)
    if context.profile is not None and context.profile.awaiting_input == AWAITING_EXPENSES:
        context.profile.awaiting_input = None
    context.answer_button(update, context.prompts.label("involvement.cancelled"))
    context.edit_buttons(update, None)


async def _submit(update: Update, context: BotContext, draft: StaffDraft, prefix: str) -> None:
    session, prompts, now = context.session, context.prompts, utcnow()
    profile = await _partner_profile(context, draft)
    zone = zone_of(profile)
    entry = await log.submit(session, draft, by_partner=prefix == PARTNER, now=now)
    context.answer_button(update, prompts.label("involvement.saved"))
    context.edit_buttons(update, None)
    name = await name_of(session, entry.person_id)
    if prefix == PARTNER:
        await ask_connectors_to_review(session, prompts, entry, name, zone)
        await context.ask(update, "involvement/sent", **entry_values(prompts, entry, zone))
        return
    values = entry_values(prompts, entry, zone)
    await context.ask(update, "involvement/saved", name=name, **values)
    await _tell_partner(context, entry, "involvement/logged_for_you")


async def _tell_partner(context: BotContext, entry: Involvement, template: str) -> None:
    """Queue a note to the partner about their entry (logged for them, or approved)."""
    prompts = context.prompts
    zone = zone_of(await profile_of(context.session, entry.person_id))
    text = prompts.render(template, **entry_values(prompts, entry, zone))
    for chat_id in await chat_ids_of(context.session, entry.person_id):
        await enqueue(
            context.session,
            key=f"involvement:{template}:{entry.id}:{entry.minutes}",
            chat_id=chat_id,
            text=text,
            person_id=entry.person_id,
            kind="involvement",
        )


async def _step(update: Update, context: BotContext, parts: list[str], prefix: str) -> None:
    """A step button of either role: cancel, send, or a choice that fits the draft's step."""
    person = context.person
    assert person is not None
    prompts, now = context.prompts, utcnow()
    if parts == ["x"]:
        await _cancel(update, context)
        return
    draft = await log.current(context.session, person.id, now=now)
    if draft is None:
        context.answer_button(update, prompts.label("involvement.old_button"))
        return
    if parts == ["ok"] and draft.step == "confirm":
        await _submit(update, context, draft, prefix)
        return
    profile = await _partner_profile(context, draft)
    if len(parts) == 2 and log.choose(draft, parts[0], parts[1], zone_of(profile), now=now):
        if context.profile is not None and context.profile.awaiting_input == AWAITING_EXPENSES:
            context.profile.awaiting_input = None
        context.answer_button(update)
        context.edit_buttons(update, None)
        await _ask_step(update, context, draft, prefix)
        return
    context.answer_button(update, prompts.label("involvement.old_button"))


@partner_tool(onboarded=True)
async def partner_button(update: Update, context: BotContext) -> None:
    """``lg:`` buttons: the payment choice, then the steps of logging time."""
    query, person, profile = update.callback_query, context.person, context.profile
    if query is None or person is None or profile is None:
        return
    parts = fields(query.data, PARTNER) or []
    if len(parts) == 2 and parts[0] == "pay":
        if not set_payment(profile, parts[1]):
            context.answer_button(update, context.prompts.label("involvement.old_button"))
            return
        context.answer_button(update, context.prompts.label("involvement.saved"))
        context.edit_buttons(update, None)
        await context.ask(
            update,
            "involvement/payment_saved",
            choice=payment_words(context.prompts, parts[1]),
            declined=parts[1] == "declined",
        )
        await _begin(update, context, person.id, PARTNER)
        return
    await _step(update, context, parts, PARTNER)


@connector_only
async def connector_button(update: Update, context: BotContext) -> None:
    """``lc:`` buttons: start logging for a partner they look after, then the same steps."""
    query, person = update.callback_query, context.person
    if query is None or person is None:
        return
    parts = fields(query.data, CONNECTOR) or []
    if len(parts) == 2 and parts[0] == "new":
        partner_id = number(parts[1])
        partner = await person_by_id(context.session, partner_id) if partner_id else None
        if (
            partner is None
            or partner.role != Role.PARTNER
            or not await looks_after(context.session, person.id, partner.id)
        ):
            context.answer_button(update, context.prompts.label("involvement.old_button"))
            return
        context.answer_button(update)
        await _begin(update, context, partner.id, CONNECTOR)
        return
    await _step(update, context, parts, CONNECTOR)


async def _typed_expenses(
    update: Update, context: BotContext, draft: StaffDraft | None, prefix: str
) -> None:
    message = update.effective_message
    if message is None or message.text is None:
        return
    if draft is None or draft.step != "expenses":
        if context.profile is not None:
            context.profile.awaiting_input = None
        await context.ask(update, "involvement/old_draft")
        return
    pence = log.parse_pounds(message.text)
    if pence is None:
        await context.ask(update, "involvement/bad_amount")
        return
    if context.profile is not None:
        context.profile.awaiting_input = None
    log.advance(draft, "confirm", now=utcnow(), pence=pence)
    await _ask_step(update, context, draft, prefix)


@partner_tool(onboarded=True)
async def partner_text(update: Update, context: BotContext) -> None:
    """The expenses a partner typed (``awaiting_input`` is ``log:expenses``)."""
    person = context.person
    if person is None:
        return
    draft = await log.current(context.session, person.id, now=utcnow())
    await _typed_expenses(update, context, draft, PARTNER)


async def connector_text(update: Update, context: BotContext, draft: StaffDraft) -> None:
    """The expenses a connector typed while logging time for a partner (see handlers/desk.py)."""
    await _typed_expenses(update, context, draft, CONNECTOR)


@connector_only
async def review_button(update: Update, context: BotContext) -> None:
    """``iv:ok:<id>``, ``iv:c:<id>``, ``iv:m:<id>:<minutes>``: approve or correct an entry."""
    query, person = update.callback_query, context.person
    if query is None or person is None:
        return
    session, prompts = context.session, context.prompts
    parts = fields(query.data, "iv") or []
    entry_id = number(parts[1]) if len(parts) in (2, 3) else None
    entry = await log.pending(session, entry_id) if entry_id is not None else None
    if entry is None or not await looks_after(session, person.id, entry.person_id):
        context.answer_button(update, prompts.label("involvement.already_reviewed"))
        context.edit_buttons(update, None)
        return
    if parts[0] == "c" and len(parts) == 2:
        context.answer_button(update)
        context.edit_buttons(update, correct_keyboard(prompts, entry.id))
        return
    minutes = None
    if parts[0] == "m" and len(parts) == 3:
        minutes = number(parts[2])
        if minutes is None or minutes not in log.DURATIONS:
            context.answer_button(update, prompts.label("involvement.old_button"))
            return
    elif not (parts[0] == "ok" and len(parts) == 2):
        context.answer_button(update, prompts.label("involvement.old_button"))
        return
    approved = await log.review(session, entry.id, person.id, minutes=minutes, now=utcnow())
    assert approved is not None
    context.answer_button(update, prompts.label("involvement.approved"))
    context.edit_buttons(update, None)
    await _tell_partner(context, approved, "involvement/approved")


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("log", log_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(partner_button, pattern=rf"^{PARTNER}:"),
    CallbackQueryHandler(connector_button, pattern=rf"^{CONNECTOR}:"),
    CallbackQueryHandler(review_button, pattern=r"^iv:"),
    MessageHandler(
        filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE & AwaitingInput("log:"),
        partner_text,
    ),
]
