"""The gate every update passes first: outsiders get one neutral reply and nothing else.

It runs in handler group -2. A staff member's role is first checked against the allow-lists
(:mod:`bot.partners.staff_roles`). An update from someone who is not enrolled (and not on the
staff allow-list), or from former staff, stops here: ``/start CODE`` in a private chat goes to
enrolment (``handlers.enrol.redeem_invite``, which enrols them or explains kindly why not),
any other private message gets the neutral reply at most once per ``OUTSIDER_REPLY_EVERY`` per
person, a button press is answered silently, everything else is ignored. Nothing about
outsiders is written to the database; the throttles are in memory.
"""

from __future__ import annotations

import logging
from functools import partial

from telegram import Bot, ChatMember, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, BaseHandler, TypeHandler

from bot.context import BotContext
from bot.menu import publish_chat_menu
from bot.partners.people import enrol_allow_listed
from bot.partners.staff_roles import follow_allow_list, is_former_staff
from bot.partners.views import invites as views
from handlers.enrol import redeem_invite, start_payload
from storage.clock import utcnow
from storage.models import Person, PersonStatus

log = logging.getLogger(__name__)
_GONE = {ChatMember.LEFT, ChatMember.BANNED}


async def gate(update: Update, context: BotContext) -> None:
    """Let enrolled people through; answer outsiders neutrally and stop."""
    user = update.effective_user
    chat = update.effective_chat
    if chat is not None and chat.type != ChatType.PRIVATE:
        _leave_group(update, context, chat.id)
        raise ApplicationHandlerStop
    if user is None or user.is_bot:
        raise ApplicationHandlerStop
    scope = context.scope
    if scope.person is None and chat is not None and chat.type == ChatType.PRIVATE:
        scope.person = await enrol_allow_listed(context.session, context.settings, user, chat.id)
        if scope.person is not None:  # just enrolled: their own command menu
            role = scope.person.role
            context.after_commit(
                partial(publish_chat_menu, context.bot, context.prompts, chat.id, role)
            )
    if scope.person is not None and chat is not None:
        await _follow_allow_list(context, scope.person, user.id, chat.id)
    former = is_former_staff(scope.person)
    if scope.person is not None and scope.person.status == PersonStatus.WITHDRAWN:
        # Withdrawal stops all contact: no reply of any kind, old buttons just stop spinning.
        if update.callback_query is not None:
            context.answer_button(update)
        raise ApplicationHandlerStop
    if scope.person is not None and not former:
        return
    # Someone not enrolled, or former staff (treated the same, with their old menu taken away).
    if update.callback_query is not None:
        context.answer_button(update)  # a stale query from an outsider: just stop the spinner
        raise ApplicationHandlerStop
    if update.message is not None and chat is not None and chat.type == ChatType.PRIVATE:
        code = start_payload(update.message)
        if code is not None:
            await redeem_invite(update, context, code)
            raise ApplicationHandlerStop
        if context.services.outsider_replies.allow(user.id):
            context.send_unstored(chat.id, views.outsider(context.prompts))
            if former:
                context.after_commit(
                    partial(publish_chat_menu, context.bot, context.prompts, chat.id, None)
                )
    raise ApplicationHandlerStop


async def _follow_allow_list(
    context: BotContext, person: Person, telegram_user_id: int, chat_id: int
) -> None:
    """Staff (and former staff): the allow-lists in the settings decide again, on every update
    (the settings may have changed since start); a changed role gets its own menu."""
    change = await follow_allow_list(
        context.session, context.settings, person, telegram_user_id, now=utcnow()
    )
    if change is not None:
        log.info("a staff role followed the allow-list: %s -> %s", change.old, change.new)
        context.after_commit(
            partial(publish_chat_menu, context.bot, context.prompts, chat_id, change.menu_role)
        )


def _leave_group(update: Update, context: BotContext, chat_id: int) -> None:
    """The bot works in private chats only: nothing from a group, supergroup or channel is
    taken as anyone's command or answer (a partner's /mydata there would post their data to
    everyone), and membership changes there touch nobody's reachability.

    Added to one, it says so once, with no study content, and leaves; anything else there
    (from a group it was in before) makes it leave without a word.
    """
    if update.callback_query is not None:
        context.answer_button(update)
        return
    member = update.my_chat_member
    if member is not None and member.new_chat_member.status in _GONE:
        return  # it has left (or was removed): nothing to do
    if member is not None:
        context.send_unstored(chat_id, views.private_only(context.prompts))
    context.after_commit(partial(_leave, context.bot, chat_id))


async def _leave(bot: Bot, chat_id: int) -> None:
    try:
        await bot.leave_chat(chat_id)
    except TelegramError as exc:
        log.info("could not leave a group (%s)", type(exc).__name__)


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [TypeHandler(Update, gate)]
