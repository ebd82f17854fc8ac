"""A forwarded message is not the partner's own answer.

While a question waits for a partner's typed answer (anything in ``awaiting_input`` except
/contact's "your next message goes to your connector": a check-in's free-text question, the
name at onboarding or in /settings, a time zone, /log's expenses), a message forwarded from
elsewhere (``forward_origin``) is not taken as the answer. Safeguarding still reads it; the
partner is asked, kindly, to type (or say) it in their own words, and the question stays open.
With no question open, a forwarded message goes on like any other message: to the partner's
connector, marked as forwarded (:mod:`handlers.relay`).

Registered in the onboarding group, before onboarding's own handlers, so that a forwarded
message at the name step is not taken as the name either.
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import ApplicationHandlerStop, BaseHandler, MessageHandler, filters
from telegram.ext.filters import MessageFilter

from bot.context import BotContext, current_scope
from bot.partners import checkins
from bot.partners.views.general import own_words
from handlers.fallback import screened
from handlers.relay import AWAITING_CONTACT
from storage.models import PersonStatus, Role


class _AwaitingOwnWords(MessageFilter):
    """A message from an active partner while a question waits for their typed answer."""

    def filter(self, message: Message) -> bool:
        """True when the sender is a partner and ``awaiting_input`` names a question."""
        scope = current_scope.get()
        if scope is None or scope.person is None or scope.profile is None:
            return False
        if scope.person.role != Role.PARTNER or scope.person.status == PersonStatus.WITHDRAWN:
            return False
        awaiting = scope.profile.awaiting_input
        return awaiting is not None and awaiting != AWAITING_CONTACT


async def forwarded_answer(update: Update, context: BotContext) -> None:
    """Ask for the answer in the partner's own words; keep nothing, leave the question open."""
    profile = context.profile
    if not await screened(update, context, update.message):  # the crisis reply comes first
        awaiting = profile.awaiting_input if profile is not None else None
        voice = (awaiting or "").startswith(checkins.AWAITING_PREFIX)
        await context.send(update, own_words(context.prompts, voice=voice))
    raise ApplicationHandlerStop


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    MessageHandler(
        filters.UpdateType.MESSAGE
        & filters.ChatType.PRIVATE
        & filters.FORWARDED
        & _AwaitingOwnWords(),
        forwarded_answer,
    ),
]
