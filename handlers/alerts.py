"""``/alerts`` (connectors): open safeguarding alerts and "not reachable" notices.

Thin: parse the update, call :mod:`bot.connector.alerts`, reply. Each item is one message,
newest first, with "I'm on it" (``sg:ack:<id>`` for an alert, handled by
:mod:`handlers.safeguarding`; ``al:a:n:<id>`` for a notice) and "Resolved"
(``al:r:<s|n>:<id>``), which asks for a short note: the connector's next message (kept in a
draft of kind "alert_note", so a restart loses nothing; see :mod:`handlers.desk`).
"""

from __future__ import annotations

from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.calendar.words import day_words, time_words
from bot.connector import alerts
from bot.context import BotContext
from bot.partners.views.safeguarding import ack_callback
from bot.text import clean_line
from bot.transport.callbacks import fields, number
from handlers.guards import connector_only
from storage.clock import utcnow
from storage.models import StaffDraft
from storage.queries import drafts

PREFIX = "al"
DRAFT_KIND = "alert_note"


def _when(context: BotContext, moment: datetime) -> dict[str, str]:
    zone = context.protocol.groups[0].zone
    return {
        "day": day_words(context.prompts, moment, zone),
        "time": time_words(context.prompts, moment.astimezone(zone).time()),
    }


@connector_only
async def alerts_command(update: Update, context: BotContext) -> None:
    """Every open alert and notice, newest first, each with its buttons."""
    items = await alerts.open_items(context.session)
    if not items:
        await context.reply(update, "alerts/none")
        return
    label = context.prompts.label
    for item in items:
        on_it = ack_callback(item.id) if item.kind == alerts.ALERT else f"{PREFIX}:a:n:{item.id}"
        markup = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(label("safeguarding.on_it"), callback_data=on_it)],
                [
                    InlineKeyboardButton(
                        label("alerts.resolved"),
                        callback_data=f"{PREFIX}:r:{item.kind}:{item.id}",
                    )
                ],
            ]
        )
        await context.reply(
            update,
            "alerts/item",
            reply_markup=markup,
            kind=item.kind,
            name=item.name,
            pseudonym=item.pseudonym,
            rule=item.rule,
            picked_up_by=item.picked_up_by,
            **_when(context, item.raised_at),
        )


def _parse(data: str | None) -> tuple[str, str, int] | None:
    parts = fields(data, PREFIX)
    if parts is None or len(parts) != 3:
        return None
    action, kind, item_id = parts[0], parts[1], number(parts[2])
    if action not in ("a", "r") or kind not in (alerts.ALERT, alerts.NOTICE) or item_id is None:
        return None
    if action == "a" and kind != alerts.NOTICE:
        return None
    return action, kind, item_id


@connector_only
async def alerts_button(update: Update, context: BotContext) -> None:
    """ "I'm on it" on a notice, or "Resolved" on either (which asks for the note)."""
    query, person = update.callback_query, context.person
    parsed = _parse(query.data if query is not None else None)
    if parsed is None or person is None:
        context.answer_button(update, context.prompts.label("alerts.out_of_date"))
        return
    action, kind, item_id = parsed
    now = utcnow()
    if action == "a":
        known = await alerts.pick_up_notice(context.session, item_id, person, now=now)
        key = "safeguarding.ack_thanks" if known else "alerts.out_of_date"
        context.answer_button(update, context.prompts.label(key))
        return
    await drafts.start(
        context.session, person.id, DRAFT_KIND, "note", {"kind": kind, "id": item_id}, now=now
    )
    context.answer_button(update)
    await context.ask(update, "alerts/ask_note")


async def take_note(update: Update, context: BotContext, draft: StaffDraft) -> None:
    """The connector's note that resolves the alert or notice their draft names."""
    message, person = update.effective_message, context.person
    if message is None or person is None:
        return
    note = clean_line(message.text, alerts.NOTE_LIMIT)
    if note is None:
        await context.ask(update, "alerts/bad_note", limit=alerts.NOTE_LIMIT)
        return
    await drafts.drop(context.session, person.id, DRAFT_KIND)
    done = await alerts.resolve(
        context.session,
        str(draft.data.get("kind")),
        int(draft.data.get("id", 0)),
        person,
        note,
        now=utcnow(),
    )
    await context.ask(update, "alerts/resolved" if done else "alerts/already_resolved")


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("alerts", alerts_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(alerts_button, pattern=rf"^{PREFIX}:"),
]
