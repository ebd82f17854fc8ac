"""Connectors' "I'm on it" button on a safeguarding alert (connector_only)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, cast

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler

from bot.context import BotContext
from bot.partners import safeguarding
from bot.partners.safeguarding import AckStatus
from handlers.guards import connector_only
from storage.clock import utcnow

log = logging.getLogger(__name__)

_Callback = Callable[[Update, BotContext], Coroutine[Any, Any, None]]

ACK_ANSWERS = {
    AckStatus.ACKNOWLEDGED: "safeguarding.ack_thanks",
    AckStatus.ALREADY_MINE: "safeguarding.ack_thanks",
    AckStatus.TAKEN: "safeguarding.ack_taken",
    AckStatus.UNKNOWN: "safeguarding.ack_unknown",
}


@connector_only
async def acknowledge(update: Update, context: BotContext) -> None:
    """Record who picked the alert up (the first press wins) and tell the presser."""
    query = update.callback_query
    person = context.person
    if query is None or person is None:
        return
    alert_id = safeguarding.parse_ack_callback(query.data)
    if alert_id is None:
        context.answer_button(update, context.prompts.label("safeguarding.ack_unknown"))
        return
    result = await safeguarding.acknowledge(
        context.session, context.prompts, alert_id, person, now=utcnow()
    )
    context.answer_button(
        update,
        context.prompts.label(ACK_ANSWERS[result.status], name=result.by_name, at=result.at),
    )
    if result.status != AckStatus.UNKNOWN:
        context.edit_buttons(update, None)  # the button has done its job


# cast: the guard's declared type is Awaitable, python-telegram-bot asks for a Coroutine.
HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CallbackQueryHandler(cast("_Callback", acknowledge), pattern=r"^sg:"),
]
