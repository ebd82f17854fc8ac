"""``/stats`` (connectors): the study's picture for a period, chosen with a button.

``st:<4w|3m|all>`` computes the figures (small groups protected), draws one chart per figure
and sends each as a photo with its numbers in the caption, then a summary in words. Any other
``st:`` data (old or forged) answers politely and sends nothing.
"""

from __future__ import annotations

import asyncio

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.connector.stats import PERIODS, study_stats
from bot.connector.stats_view import draw_all, stats_charts, summary_values
from bot.context import BotContext
from bot.partners.journey import CHARTS_FOLDER
from bot.transport.outbox import enqueue
from handlers.guards import connector_only
from storage.clock import utcnow


@connector_only
async def stats_command(update: Update, context: BotContext) -> None:
    """Offer the periods."""
    prompts = context.prompts
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    prompts.label(f"stats.periods.{key}"), callback_data=f"st:{key}"
                )
                for key in PERIODS
            ]
        ]
    )
    await context.reply(update, "stats/choose", reply_markup=markup)


@connector_only
async def stats_button(update: Update, context: BotContext) -> None:
    """Send the charts and the summary for the chosen period."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None:
        return
    period = (query.data or "").removeprefix("st:")
    prompts = context.prompts
    if period not in PERIODS:
        context.answer_button(update, prompts.label("stats.old_button"))
        return
    context.answer_button(update)
    stats = await study_stats(
        context.session,
        context.protocol,
        period,
        now=utcnow(),
        reads=context.services.db.sessions,
    )
    charts = stats_charts(prompts, stats)
    stem = f"stats-{context.scope.update_id}"
    folder = context.settings.companion_data_dir / CHARTS_FOLDER
    paths = await asyncio.to_thread(draw_all, charts, folder, stem, stats)
    for chart, path in zip(charts, paths, strict=True):
        await enqueue(
            context.session,
            key=f"{stem}:{chart.name}",
            chat_id=chat.id,
            method="sendPhoto",
            text=prompts.render(chart.caption, **chart.values),
            payload={"photo": {"path": f"{CHARTS_FOLDER}/{path.name}", "filename": path.name}},
            kind="stats",
        )
    await context.reply(update, "stats/summary", **summary_values(prompts, stats))


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("stats", stats_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(stats_button, pattern=r"^st:"),
]
