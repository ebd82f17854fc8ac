"""``/mydata``: a zip with everything held about the partner (JSON and CSV), as a document.

The file is written under ``<data dir>/exports/`` and sent through the outbox, with a caption
that says what it is. The access is recorded in the audit log (``data.access``).
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler

from bot.context import BotContext
from bot.privacy import views
from bot.privacy.mydata import export_person
from bot.transport.outbox import enqueue
from handlers.guards import partner_tool


@partner_tool(onboarded=False)
async def mydata_command(update: Update, context: BotContext) -> None:
    """Export the partner's data and queue it as a document."""
    person, chat = context.person, update.effective_chat
    if person is None or chat is None:
        return
    export = await export_person(
        context.session,
        person,
        cipher=context.settings.text_cipher(),
        prompts=context.prompts,
        data_dir=context.settings.companion_data_dir,
        study_name=context.protocol.study.name,
    )
    await enqueue(
        context.session,
        key=f"mydata:{context.scope.update_id}",
        chat_id=chat.id,
        method="sendDocument",
        text=views.mydata_caption(context.prompts).text,
        payload={"document": {"path": export.relative_path, "filename": export.filename}},
        person_id=person.id,
        kind="mydata",
    )


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [CommandHandler("mydata", mydata_command)]
