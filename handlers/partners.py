"""``/partners`` (connectors): the paged roster and one partner's card.

Buttons, all checked (a forged or old one answers politely and shows nothing): ``pt:p:<page>``
pages the roster, ``pt:c:<person id>`` opens a card, only for a partner in one of the
connector's groups. The card's chart is the same picture the partner sees with ``/journey``,
with the story in words as its caption; under the card, buttons message them (``rl:w:<id>``,
see handlers/relay.py; absent, with the reason on the card, when they cannot be written to)
and log time for them (``lc:new:<id>``, see handlers/log.py).
"""

from __future__ import annotations

import asyncio

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.calendar.zones import zone_of
from bot.connector.card import partner_card
from bot.connector.roster import roster_page
from bot.context import BotContext
from bot.partners.journey import CHARTS_FOLDER, chart_lines_for_caption, chart_text, render_chart
from bot.transport.callbacks import fields, number
from bot.transport.outbox import enqueue
from bot.transport.view import render_view
from handlers.guards import connector_only
from storage.clock import utcnow
from storage.models import Person, Role
from storage.queries.people import person_by_id, profile_of
from storage.queries.staff import connector_groups, looks_after


async def _roster(update: Update, context: BotContext, page: int) -> None:
    person = context.person
    assert person is not None
    groups = await connector_groups(context.session, person.id)
    shown = await roster_page(
        context.session, context.prompts, context.protocol, groups, page, now=utcnow()
    )
    await context.reply(
        update,
        "partners/roster",
        reply_markup=shown.markup,
        groups=shown.groups,
        page=shown.page + 1,
        pages=shown.pages,
        total=shown.total,
    )


@connector_only
async def partners_command(update: Update, context: BotContext) -> None:
    """The first page of the roster."""
    await _roster(update, context, 0)


async def _card(update: Update, context: BotContext, partner: Person) -> None:
    session, prompts, chat = context.session, context.prompts, update.effective_chat
    assert chat is not None
    card = await partner_card(
        session,
        context.protocol,
        prompts,
        context.settings.text_cipher(),
        partner.id,
        now=utcnow(),
    )
    if card is None:
        return
    zone = zone_of(await profile_of(session, partner.id))
    journey = card.journey
    if journey.lines:
        relative = f"{CHARTS_FOLDER}/card-{partner.pseudonym}.png"
        await asyncio.to_thread(
            render_chart,
            journey,
            context.settings.companion_data_dir / relative,
            zone=zone,
            text=chart_text(prompts, journey),
        )
        low, high = journey.scale_range
        await enqueue(
            session,
            key=f"card:{context.scope.update_id}",
            chat_id=chat.id,
            method="sendPhoto",
            text=prompts.render(
                "partners/card_caption",
                name=card.values["name"],
                lines=chart_lines_for_caption(journey, prompts, zone),
                low=low,
                high=high,
            ),
            payload={"photo": {"path": relative, "filename": "journey.png"}},
            kind="card",
        )
    rows = []
    if card.values["cannot_write"] is None:  # else the card says why there is no button
        rows.append(
            [
                InlineKeyboardButton(
                    prompts.label("roster.message_them"), callback_data=f"rl:w:{partner.id}"
                )
            ]
        )
    log_time = prompts.label("roster.log_time")
    rows += [
        [InlineKeyboardButton(log_time, callback_data=f"lc:new:{partner.id}")],
        [InlineKeyboardButton(prompts.label("roster.back"), callback_data="pt:p:0")],
    ]
    view = render_view(context.prompts, "partners/card", InlineKeyboardMarkup(rows), **card.values)
    await context.send(update, view, quotes=True)  # their reflections, in their words


@connector_only
async def partners_button(update: Update, context: BotContext) -> None:
    """``pt:p:<page>`` and ``pt:c:<id>``; anything else, or someone not theirs, is refused."""
    query, person = update.callback_query, context.person
    if query is None or person is None:
        return
    parts = fields(query.data, "pt") or []
    value = number(parts[1]) if len(parts) == 2 else None
    if value is not None and parts[0] == "p":
        context.answer_button(update)
        await _roster(update, context, value)
        return
    if value is not None and parts[0] == "c":
        partner = await person_by_id(context.session, value)
        if (
            partner is not None
            and partner.role == Role.PARTNER
            and await looks_after(context.session, person.id, partner.id)
        ):
            context.answer_button(update)
            await _card(update, context, partner)
            return
    context.answer_button(update, context.prompts.label("roster.not_available"))


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("partners", partners_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(partners_button, pattern=r"^pt:"),
]
