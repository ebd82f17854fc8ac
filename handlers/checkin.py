"""/checkin, the answer buttons, and typed or spoken answers to a check-in question.

Thin: parse the update, call :mod:`bot.partners.checkins`, answer the button,
reply. Every answer is
stored in the update's own transaction, so it is committed the moment the update is done.
"""

from __future__ import annotations

import logging
from functools import partial

from telegram import Message, Update, Voice
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.context import BotContext
from bot.partners import checkins
from bot.partners.checkins import Outcome
from bot.partners.views import checkins as views
from bot.partners.voice import fetch_voice_answer
from handlers.filters import AwaitingInput
from storage.clock import utcnow
from storage.models import Checkin, Person, Role

log = logging.getLogger(__name__)

#: The callback answer (a short toast) for each outcome of a button press.
BUTTON_ANSWERS = {
    Outcome.RECORDED: None,
    Outcome.CHANGED: "checkins.changed",
    Outcome.UNCHANGED: "checkins.unchanged",
    Outcome.CLOSED: "checkins.closed",
    Outcome.INVALID: "checkins.not_available",
}


async def start_checkin(update: Update, context: BotContext) -> None:
    """``/checkin``: start one now, or show the question of the one already going."""
    person = context.person
    if person is None or person.role != Role.PARTNER:
        await context.send(update, views.not_now(context.prompts))
        return
    session, now = context.session, utcnow()
    update_id = context.scope.update_id
    going = await checkins.current_open(session, person.id, now=now)
    if going is not None:
        key = f"ci:{going.id}:again:{update_id}"
        if await checkins.resend_current(
            session, context.protocol, context.prompts, going, key=key
        ):
            return
    opened = await checkins.open_checkin(
        session,
        context.protocol,
        context.prompts,
        person,
        checkins.manual_checkin_key(context.protocol),
        occurrence_key=Checkin.asked_for_key(person.id, update_id),
        now=now,
        source="manual",
    )
    if opened is None:
        await context.send(update, views.not_now(context.prompts))


async def answer_button(update: Update, context: BotContext) -> None:
    """A check-in button: store (or change) the answer, then answer the press and mark it."""
    query = update.callback_query
    person = context.person
    if query is None:
        return
    if person is None or person.role != Role.PARTNER:
        context.answer_button(update, context.prompts.label("checkins.not_available"))
        return
    result = await checkins.record_choice(
        context.session,
        context.protocol,
        context.prompts,
        person,
        query.data,
        now=utcnow(),
        update_id=context.scope.update_id,
        identity=context.scope.identity,
    )
    label = BUTTON_ANSWERS[result.outcome]
    context.answer_button(update, context.prompts.label(label) if label else None)
    if result.outcome in {Outcome.RECORDED, Outcome.CHANGED}:
        context.edit_buttons(update, result.markup)


async def _after_free_answer(
    update: Update, context: BotContext, result: checkins.AnswerResult
) -> None:
    """Reply when a typed or spoken answer could not be stored."""
    if result.outcome == Outcome.RECORDED:
        return
    if result.alerts:
        return  # the crisis reply is the answer that matters now
    checkin = result.checkin
    if result.outcome == Outcome.INVALID and checkin is not None and checkin.current_question:
        await checkins.resend_current(
            context.session,
            context.protocol,
            context.prompts,
            checkin,
            key=f"ci:{checkin.id}:again:{context.scope.update_id}",
        )
        return
    await context.send(update, views.closed(context.prompts))


def _waiting_question(
    update: Update, context: BotContext
) -> tuple[Message, Person, tuple[int, str]] | None:
    """The message, its sender and the (check-in, question) its free text answers, if any."""
    message, person, profile = update.effective_message, context.person, context.profile
    if message is None or person is None or profile is None:
        return None
    waiting = checkins.parse_awaiting(profile.awaiting_input)
    return (message, person, waiting) if waiting is not None else None


async def answer_text(update: Update, context: BotContext) -> None:
    """Typed text while a free-text question waits: store it as the answer."""
    found = _waiting_question(update, context)
    if found is None:
        return
    message, person, waiting = found
    if message.text is None:
        return
    result = await checkins.record_text(
        context.session,
        context.protocol,
        context.prompts,
        context.settings.text_cipher(),
        person,
        checkin_id=waiting[0],
        question_key=waiting[1],
        text=message.text,
        chat_id=message.chat_id,
        now=utcnow(),
        update_id=context.scope.update_id,
    )
    await _after_free_answer(update, context, result)


async def answer_voice(update: Update, context: BotContext) -> None:
    """A voice note while a free-text question waits: keep its id and length, then fetch it."""
    found = _waiting_question(update, context)
    if found is None:
        return
    message, person, waiting = found
    voice = message.voice
    if voice is None:
        return
    result = await checkins.record_voice(
        context.session,
        context.protocol,
        context.prompts,
        context.settings.text_cipher(),
        person,
        checkin_id=waiting[0],
        question_key=waiting[1],
        file_id=voice.file_id,
        duration=voice_seconds(voice),
        caption=message.caption,
        chat_id=message.chat_id,
        now=utcnow(),
        update_id=context.scope.update_id,
    )
    if result.outcome == Outcome.RECORDED and result.answer is not None:
        context.after_commit(
            partial(
                fetch_voice_answer,
                context.bot,
                context.services.db,
                file_id=voice.file_id,
                data_dir=context.settings.companion_data_dir,
                relative_path=checkins.voice_relative_path(person, result.answer),
                answer_id=result.answer.id,
                cipher=context.settings.text_cipher(),
            )
        )
    await _after_free_answer(update, context, result)


def voice_seconds(voice: Voice) -> int:
    """A voice note's length in whole seconds.

    Read from the serialised form: python-telegram-bot 22 warns on ``Voice.duration`` while it
    moves to ``timedelta``, and the warning would differ by environment.
    """
    raw = voice.to_dict().get("duration", 0)
    return int(raw.total_seconds()) if hasattr(raw, "total_seconds") else int(raw or 0)


_PRIVATE_MESSAGE = filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE

HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("checkin", start_checkin, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(answer_button, pattern=rf"^{checkins.CALLBACK_PREFIX}:"),
    MessageHandler(
        _PRIVATE_MESSAGE
        & filters.TEXT
        & ~filters.COMMAND
        & AwaitingInput(checkins.AWAITING_PREFIX),
        answer_text,
    ),
    MessageHandler(
        _PRIVATE_MESSAGE & filters.VOICE & AwaitingInput(checkins.AWAITING_PREFIX), answer_voice
    ),
]
