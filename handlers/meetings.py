"""Meetings in Telegram: connectors' ``/meeting``, partners' ``/meetings`` and answer buttons.

Thin: route the update to the meetings room and send what it returns. Role checks are the
guards'.

* ``/meeting`` (connectors) shows :func:`bot.meetings.draft.connector_menu`; every ``mc:``
  button goes to :func:`bot.meetings.draft.on_button`, and a connector's typed text to
  :func:`bot.meetings.draft.on_text` (registered before the fallback, and matching
  connectors only, so partners are not affected); without a meeting draft open the text gets
  the fallback's usual reply.
* ``/meetings`` (partners) shows :func:`bot.meetings.answers.partner_meetings`; their answer
  buttons ``mt:<meeting id>:<yes|no|maybe>`` go to :func:`bot.meetings.answers.press_answer`.
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters
from telegram.ext.filters import MessageFilter

from bot.context import BotContext, current_scope
from bot.meetings import answers, draft
from bot.meetings.callbacks import CALLBACK_PREFIX, STAFF_PREFIX
from bot.meetings.views import Reply
from handlers import fallback
from handlers.guards import connector_only, partner_tool
from storage.clock import utcnow
from storage.models import Role


class _FromConnector(MessageFilter):
    """Matches a message from a connector (read from the update's scope, no query)."""

    def filter(self, message: Message) -> bool:
        """True when the sender is a connector."""
        scope = current_scope.get()
        return (
            scope is not None and scope.person is not None and scope.person.role == Role.CONNECTOR
        )


async def _answer(
    update: Update, context: BotContext, reply: Reply, *, step: bool = False
) -> None:
    """Do what the meetings room answered: the pop-up, the pressed message's buttons, a reply.

    ``step``: the reply is a step of a connector's ``/meeting`` draft (sent again if a crash
    leaves its delivery unknown)."""
    context.answer_button(update, reply.toast)
    if reply.change_buttons:
        context.edit_buttons(update, reply.buttons)
    if reply.message is not None:
        await context.send(update, reply.message, conversation_step=step)


@connector_only
async def meeting_command(update: Update, context: BotContext) -> None:
    """The connector's meetings: plan a new one, change or cancel one, mark who came."""
    menu = await draft.connector_menu(context.session, context.prompts, now=utcnow())
    await context.send(update, menu, conversation_step=True)


@connector_only
async def draft_text(update: Update, context: BotContext) -> None:
    """Typed text from a connector: the next step of their ``/meeting``, if one is open."""
    message, person = update.effective_message, context.person
    if message is None or person is None or message.text is None:
        return
    reply = await draft.on_text(
        context.session, context.protocol, context.prompts, person, message.text, now=utcnow()
    )
    if reply is None:
        await fallback.unknown_message(update, context)
        return
    await _answer(update, context, reply, step=True)


@connector_only
async def staff_button(update: Update, context: BotContext) -> None:
    """Every ``mc:`` button: checked and acted on by the draft."""
    query, person = update.callback_query, context.person
    if query is None or person is None:
        return
    reply = await draft.on_button(
        context.session, context.protocol, context.prompts, person, query.data, now=utcnow()
    )
    await _answer(update, context, reply, step=True)


@partner_tool(onboarded=True)
async def meetings_command(update: Update, context: BotContext) -> None:
    """``/meetings``: what is coming up for the partner, with what they answered."""
    person, profile = context.person, context.profile
    if person is None or profile is None:
        return
    for message in await answers.partner_meetings(
        context.session, context.prompts, person, profile, now=utcnow()
    ):
        await context.send(update, message)


@partner_tool(onboarded=True)
async def answer_button(update: Update, context: BotContext) -> None:
    """A partner's answer to a meeting: kept, ticked, thanked; anything else changes nothing."""
    query, person = update.callback_query, context.person
    if query is None or person is None:
        return
    reply = await answers.press_answer(
        context.session, context.prompts, person, query.data, now=utcnow()
    )
    await _answer(update, context, reply)


_CONNECTOR_TEXT = (
    filters.UpdateType.MESSAGE
    & filters.ChatType.PRIVATE
    & filters.TEXT
    & ~filters.COMMAND
    & _FromConnector()
)

HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("meeting", meeting_command, filters=filters.ChatType.PRIVATE),
    CommandHandler("meetings", meetings_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(staff_button, pattern=rf"^{STAFF_PREFIX}:"),
    CallbackQueryHandler(answer_button, pattern=rf"^{CALLBACK_PREFIX}:"),
    MessageHandler(_CONNECTOR_TEXT, draft_text),
]
