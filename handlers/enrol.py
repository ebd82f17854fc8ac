"""Enrolment by invite: ``/start CODE``.

From someone not yet enrolled the gate hands the code to :func:`redeem_invite`: a valid code
enrols them and starts onboarding (partners) or welcomes them as staff; a used, expired or
unknown code gets a kind explanation and enrols no one. Failed attempts are counted in memory
(``throttle``): after five in an hour one short "please ask your connector", then silence.
Replies to people who are not enrolled are sent straight away, not through the outbox, because
the outbox would store their chat id.

From someone already enrolled (handler group 0), ``/start CODE`` only says they are set up;
the code is not used up.
"""

from __future__ import annotations

from functools import partial

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.ext import BaseHandler, CommandHandler

from bot.context import BotContext
from bot.menu import publish_chat_menu
from bot.partners.invites import RedeemOutcome, RedemptionThrottle, redeem
from bot.partners.staff_roles import is_former_staff
from bot.partners.views import invites as views
from handlers.onboarding import send_step
from storage.models import Role

throttle = RedemptionThrottle()


def start_payload(message: Message | None) -> str | None:
    """The payload of ``/start PAYLOAD`` (a deep link's code), or None for anything else."""
    if message is None or not message.text:
        return None
    parts = message.text.split()
    if not parts or parts[0].split("@", 1)[0].lower() != "/start" or len(parts) < 2:
        return None
    return " ".join(parts[1:])


async def redeem_invite(update: Update, context: BotContext, code: str) -> None:
    """Try to enrol the (not yet enrolled, or former staff) sender of ``/start CODE``."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None or chat.type != ChatType.PRIVATE:
        return
    if throttle.blocked(user.id):
        if throttle.warn_once(user.id):
            context.send_unstored(chat.id, views.too_many_tries(context.prompts))
        return
    result = await redeem(
        context.session,
        context.protocol,
        code,
        telegram_user_id=user.id,
        chat_id=chat.id,
        first_name=user.first_name,
        username=user.username,
        language_code=user.language_code,
        former=context.person if is_former_staff(context.person) else None,
    )
    if result.outcome != RedeemOutcome.ENROLLED or result.person is None:
        throttle.record_failure(user.id)
        context.send_unstored(chat.id, views.refused(context.prompts, result.outcome))
        return
    throttle.forget(user.id)
    context.after_commit(
        partial(publish_chat_menu, context.bot, context.prompts, chat.id, result.person.role)
    )
    scope = context.scope
    scope.person, scope.profile, scope.identity = result.person, result.profile, result.identity
    if result.profile is not None:
        await send_step(update, context, result.profile, result.identity)
        return
    name = result.identity.called if result.identity is not None else ""
    await context.send(
        update,
        views.welcome_staff(context.prompts, context.protocol, name=name, role=result.person.role),
    )


async def already_enrolled(update: Update, context: BotContext) -> None:
    """``/start CODE`` from someone enrolled: they are set up already; the code stays unused."""
    person = context.person
    if person is None:
        return
    name = await context.sender_name()
    staff = person.role != Role.PARTNER
    await context.send(update, views.already_enrolled(context.prompts, name=name, staff=staff))


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("start", already_enrolled, has_args=True)
]
