"""Two-way messages: a partner's message reaches their connector, and the connector answers.

Thin: parse the update, call :mod:`bot.connector.relay`, reply.

* :func:`relay_partner_message` is what the fallback calls for a partner's message that no
  feature took (not a command, no open question): it goes to their connector(s).
* ``/contact`` says who will read the next message; that message goes to the connector even
  if a check-in question is open (``awaiting_input`` = "contact").
* :func:`answer_partner`: a connector's Telegram reply to a relayed message goes back to the
  partner (called by :mod:`handlers.desk`, which sorts the connector's messages).
* "Message them" on a partner's card (connectors): ``rl:w:<partner id>`` asks for the message
  (a staff draft), :func:`message_from_card` sends the connector's next message (text, voice
  note, photo or document) exactly like an answer, ``rl:x`` cancels. A button for a partner
  who is not the connector's, or who cannot be written to any more, says so and does nothing.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.connector import relay
from bot.connector.relay import Incoming
from bot.context import BotContext
from bot.transport.callbacks import fields, number
from handlers.filters import AwaitingInput
from handlers.guards import connector_only, partner_tool
from storage.clock import utcnow
from storage.models import Person, PersonStatus, Role, StaffDraft
from storage.queries import drafts

AWAITING_CONTACT = "contact"
PREFIX = "rl"


def incoming_of(message: Message) -> Incoming | None:
    """What can be relayed of ``message`` (None: a sticker, a location, ...)."""
    forwarded = message.forward_origin is not None
    if message.voice is not None:
        caption, file_id = message.caption_html or "", message.voice.file_id
        return Incoming("voice", caption, file_id, forwarded)
    if message.photo:
        caption, file_id = message.caption_html or "", message.photo[-1].file_id
        return Incoming("photo", caption, file_id, forwarded)
    if message.document is not None:
        caption, file_id = message.caption_html or "", message.document.file_id
        return Incoming("document", caption, file_id, forwarded)
    if message.text is not None and not message.text.startswith("/"):
        return Incoming("text", message.text_html, forwarded=forwarded)
    return None


async def relay_partner_message(
    update: Update, context: BotContext, *, acknowledge: bool = True
) -> bool:
    """Send a partner's message to their connector(s); True if it went (the caller stops).

    ``acknowledge=False`` when the partner was answered already (the crisis reply)."""
    person, profile, message = context.person, context.profile, update.message
    if (
        person is None
        or profile is None
        or message is None
        or person.role != Role.PARTNER
        or person.status == PersonStatus.WITHDRAWN
        or profile.onboarded_at is None
    ):
        return False
    incoming = incoming_of(message)
    if incoming is None:
        return False
    await relay.from_partner(
        context.session,
        context.protocol,
        prompts=context.prompts,
        settings=context.settings,
        person=person,
        profile=profile,
        incoming=incoming,
        chat_id=message.chat_id,
        update_id=context.scope.update_id,
        now=utcnow(),
        acknowledge=acknowledge,
    )
    return True


@partner_tool(onboarded=True)
async def contact_command(update: Update, context: BotContext) -> None:
    """``/contact``: the next message goes to the partner's connector."""
    profile = context.profile
    if profile is None:
        return
    profile.awaiting_input = AWAITING_CONTACT
    group = context.protocol.group(profile.group_key)
    await context.ask(update, "relay/contact", connector=group.connector if group else "")


@partner_tool(onboarded=True)
async def contact_message(update: Update, context: BotContext) -> None:
    """The message after ``/contact``."""
    profile = context.profile
    if profile is None:
        return
    profile.awaiting_input = None
    if not await relay_partner_message(update, context):
        await context.ask(update, "relay/cannot_send")


async def answer_partner(update: Update, context: BotContext) -> bool:
    """A connector's reply to a relayed message: send it to the partner. False when the
    replied-to message is not a relayed one (the caller decides what that means)."""
    message, person = update.effective_message, context.person
    replied = message.reply_to_message if message is not None else None
    if message is None or person is None or replied is None:
        return False
    original = await relay.replied_message(context.session, message.chat_id, replied.message_id)
    if original is None:
        return False
    incoming = incoming_of(message)
    if incoming is None:
        await context.ask(update, "relay/cannot_send")
        return True
    await _send_to_partner(update, context, person, original.person_id, incoming)
    return True


async def _send_to_partner(
    update: Update, context: BotContext, connector: Person, partner_id: int, incoming: Incoming
) -> None:
    """Send the connector's message to the partner, and tell the connector it went (or not)."""
    name = await relay.to_partner(
        context.session,
        context.prompts,
        settings=context.settings,
        connector=connector,
        partner_id=partner_id,
        incoming=incoming,
        update_id=context.scope.update_id,
        now=utcnow(),
    )
    if name is None:
        await context.ask(update, "relay/partner_gone")
    else:
        await context.ask(update, "relay/answer_sent", name=name)


@connector_only
async def write_button(update: Update, context: BotContext) -> None:
    """``rl:w:<partner id>`` asks for the message; ``rl:x`` forgets it."""
    query, person = update.callback_query, context.person
    if query is None or person is None:
        return
    prompts, parts = context.prompts, fields(query.data, PREFIX)
    if parts == ["x"]:
        dropped = await drafts.drop(context.session, person.id, relay.MESSAGE_DRAFT)
        context.answer_button(
            update, prompts.label("relay.stopped" if dropped else "relay.old_button")
        )
        context.edit_buttons(update, None)
        return
    partner_id = number(parts[1]) if parts and len(parts) == 2 and parts[0] == "w" else None
    if partner_id is None:
        context.answer_button(update, prompts.label("roster.not_available"))
        return
    name, why = await relay.writable(context.session, prompts, person.id, partner_id, now=utcnow())
    if why is not None:
        context.answer_button(update, why, show_alert=True)
        return
    await relay.start_message(context.session, person.id, partner_id, now=utcnow())
    context.answer_button(update)
    cancel = InlineKeyboardButton(prompts.label("relay.cancel"), callback_data=f"{PREFIX}:x")
    await context.ask(
        update, "relay/write_to", reply_markup=InlineKeyboardMarkup([[cancel]]), name=name
    )


async def message_from_card(update: Update, context: BotContext, draft: StaffDraft) -> None:
    """The connector's message after "Message them": sent to the partner like an answer."""
    message, person = update.effective_message, context.person
    if message is None or person is None:
        return
    incoming = incoming_of(message)
    if incoming is None:
        await context.ask(update, "relay/cannot_send")
        return
    if await relay.message_draft(context.session, person.id, now=utcnow()) is None:
        await context.ask(update, "relay/not_sent", reason=context.prompts.label("relay.old"))
        return  # pressed more than a day ago: not sent to someone they may have forgotten
    await drafts.drop(context.session, person.id, relay.MESSAGE_DRAFT)
    partner_id = int(draft.data.get("partner_id", 0))
    _name, why = await relay.writable(
        context.session, context.prompts, person.id, partner_id, now=utcnow()
    )
    if why is not None:  # they withdrew, blocked the bot or paused since the button
        await context.ask(update, "relay/not_sent", reason=why)
        return
    await _send_to_partner(update, context, person, partner_id, incoming)


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("contact", contact_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(write_button, pattern=rf"^{PREFIX}:"),
    MessageHandler(
        filters.UpdateType.MESSAGE
        & filters.ChatType.PRIVATE
        & ~filters.COMMAND
        & AwaitingInput(AWAITING_CONTACT),
        contact_message,
    ),
]
