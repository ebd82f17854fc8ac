"""``/journey``: a chart of the partner's scale answers over time, and what they contributed.

The chart is written under ``<data dir>/charts/<pseudonym>.png`` (one per person, replaced each
time) and sent as a photo through the outbox, with a caption that says in words what the chart
shows. A plain summary follows. With no answers yet, one kind message and no chart.
"""

from __future__ import annotations

import asyncio

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler

from bot.calendar.zones import zone_of
from bot.charts.page import draw_page
from bot.context import BotContext
from bot.partners.journey import CHARTS_FOLDER, chart_text, load_journey, render_chart
from bot.partners.legacy import legacy_values, load_legacy
from bot.partners.views import journey as views
from bot.transport.outbox import enqueue
from handlers.guards import partner_tool


@partner_tool(onboarded=True)
async def journey_command(update: Update, context: BotContext) -> None:
    """Send the chart (if there are scale answers) and the summary."""
    person, chat = context.person, update.effective_chat
    if person is None or chat is None:
        return
    prompts = context.prompts
    if context.args == ["full"]:
        await _send_legacy_page(update, context, person.pseudonym, chat.id)
        return
    journey = await load_journey(
        context.session,
        person.id,
        context.protocol,
        prompts,
        context.settings.text_cipher(),
    )
    if journey.empty:
        await context.send(update, views.empty(prompts))
        return
    zone = zone_of(context.profile)
    if journey.lines:
        relative = f"{CHARTS_FOLDER}/{person.pseudonym}.png"
        await asyncio.to_thread(
            render_chart,
            journey,
            context.settings.companion_data_dir / relative,
            zone=zone,
            text=chart_text(prompts, journey),
        )
        await enqueue(
            context.session,
            key=f"journey:{context.scope.update_id}",
            chat_id=chat.id,
            method="sendPhoto",
            text=views.caption(prompts, journey, zone).text,
            payload={"photo": {"path": relative, "filename": "journey.png"}},
            person_id=person.id,
            kind="journey",
        )
    await context.send(update, views.summary(prompts, journey, zone), quotes=True)
    legacy = await load_legacy(context.session, person.id)
    if not legacy.empty:
        await context.send(update, views.contribution(prompts, legacy, zone))


async def _send_legacy_page(
    update: Update, context: BotContext, pseudonym: str, chat_id: int
) -> None:
    """``/journey full``: what they gave and what it changed, as a one-page PDF to keep."""
    prompts, person = context.prompts, context.person
    assert person is not None
    zone = zone_of(context.profile)
    legacy = await load_legacy(context.session, person.id)
    name = await context.sender_name()
    lines = prompts.text(
        "journey/legacy_page", name=name, **legacy_values(prompts, legacy, zone)
    ).splitlines()
    relative = f"{CHARTS_FOLDER}/legacy-{pseudonym}.pdf"
    await asyncio.to_thread(
        draw_page,
        prompts.label("tools.journey.legacy_title", name=name),
        lines,
        context.settings.companion_data_dir / relative,
    )
    await enqueue(
        context.session,
        key=f"journey:full:{context.scope.update_id}",
        chat_id=chat_id,
        method="sendDocument",
        text=prompts.render("journey/legacy_caption"),
        payload={"document": {"path": relative, "filename": "my-contribution.pdf"}},
        person_id=person.id,
        kind="journey",
    )


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("journey", journey_command)
]
