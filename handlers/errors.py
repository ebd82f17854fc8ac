"""The error handler: log first (without message text), then let the inbox tell the staff.

During inbox processing the failure is handed back to the inbox worker, which rolls the
update's transaction back and, in a fresh one, records the failure, queues an apology to the
person and an alert to the connectors. Outside an update (a scheduled job), the alert is queued
here directly.
"""

from __future__ import annotations

import logging
import uuid

from telegram import Update

from bot.connector.failure_alerts import notify_staff_of_failure
from bot.context import BotContext, current_scope

log = logging.getLogger(__name__)


async def on_error(update: object, context: BotContext) -> None:
    """Record the error where the inbox worker will see it, or alert staff directly."""
    error = context.error
    scope = current_scope.get()
    if scope is not None and error is not None:
        scope.error = error
        return
    reference = uuid.uuid4().hex[:10]
    update_id = update.update_id if isinstance(update, Update) else None
    log.error(
        "error outside an update (ref %s, update %s): %s",
        reference,
        update_id,
        type(error).__name__,
        exc_info=error,
    )
    if error is None:
        return
    async with context.services.db.transaction() as session:
        await notify_staff_of_failure(session, context.prompts, reference, error)
    if context.services.sender is not None:
        context.services.sender.wake()
