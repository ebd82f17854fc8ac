"""``/yousaid`` (connectors): tell partners what changed because of their input.

Buttons (checked against the draft; old or forged ones answer politely and change nothing):
``ys:g:<group key|*>`` picks a group or everyone, ``ys:m`` lists recent meetings and
``ys:mm:<id>`` picks those who came, ``ys:w`` asks for a word (typed), ``ys:ok`` sends the
previewed message, ``ys:x`` stops. What changed is typed (see handlers/desk.py).
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.calendar.words import day_words
from bot.calendar.zones import zone_named
from bot.connector import impact
from bot.context import BotContext
from bot.meetings import draft as meetings
from bot.text import clean_line, clean_text
from bot.transport.callbacks import fields, number
from handlers.guards import connector_only
from storage.clock import utcnow
from storage.models import StaffDraft
from storage.queries.meetings import meeting_by_id
from storage.queries.staff import connector_groups


def _rows(*choices: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d)] for t, d in choices])


def _label(context: BotContext, key: str, **values: Any) -> str:
    return context.prompts.label(f"yousaid.{key}", **values)


@connector_only
async def yousaid_command(update: Update, context: BotContext) -> None:
    """Start: who should hear about it?"""
    person = context.person
    assert person is not None
    await impact.start_draft(context.session, person.id, now=utcnow())
    scope = await connector_groups(context.session, person.id)
    groups = [g for g in context.protocol.groups if scope is None or g.key in scope]
    choices = [(g.name, f"ys:g:{g.key}") for g in groups]
    if scope is None:
        choices.append((_label(context, "everyone"), f"ys:g:{impact.EVERYONE}"))
    choices += [
        (_label(context, "by_meeting"), "ys:m"),
        (_label(context, "by_word"), "ys:w"),
        (_label(context, "cancel"), "ys:x"),
    ]
    await context.ask(update, "yousaid/ask_who", reply_markup=_rows(*choices))


async def _picked(
    update: Update, context: BotContext, draft: StaffDraft, selection: dict[str, Any]
) -> None:
    """Work out who that is; ask for the words, or say nobody matched."""
    person = context.person
    assert person is not None
    scope = await connector_groups(context.session, person.id)
    picks = await impact.pick(context.session, context.settings.text_cipher(), selection, scope)
    if not picks:
        await context.ask(update, "yousaid/nobody")
        return
    impact.save(draft, "text", now=utcnow(), selection=selection)
    await context.ask(
        update,
        "yousaid/ask_text",
        reply_markup=_rows((_label(context, "cancel"), "ys:x")),
        count=len(picks),
        limit=impact.TEXT_LIMIT,
    )


async def draft_text(update: Update, context: BotContext, draft: StaffDraft) -> None:
    """Typed by a connector with a "you said" draft: the word to look for, or what changed."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    if draft.step == "word":
        word = clean_line(message.text, impact.WORD_LIMIT)
        if word is None:
            await context.ask(update, "yousaid/bad_text", limit=impact.WORD_LIMIT)
            return
        await _picked(update, context, draft, {"by": "word", "value": word})
        return
    if draft.step != "text":
        await context.ask(update, "yousaid/use_buttons")
        return
    text = clean_text(message.text, impact.TEXT_LIMIT)
    if text is None:
        await context.ask(update, "yousaid/bad_text", limit=impact.TEXT_LIMIT)
        return
    impact.save(draft, "preview", now=utcnow(), text=text)
    await context.ask(update, "yousaid/preview_intro")
    await context.ask(
        update,
        "yousaid/message",
        reply_markup=_rows(
            (_label(context, "send"), "ys:ok"), (_label(context, "cancel"), "ys:x")
        ),
        text=text,
    )


@connector_only
async def yousaid_button(update: Update, context: BotContext) -> None:
    """Every ``ys:`` button, checked against the draft's step."""
    query, person = update.callback_query, context.person
    if query is None or person is None:
        return
    session, now = context.session, utcnow()
    parts = fields(query.data, "ys") or []
    draft = await impact.get_draft(session, person.id, now=now)
    if parts == ["x"]:
        if draft is not None:
            await session.delete(draft)
        context.answer_button(update, _label(context, "stopped"))
        context.edit_buttons(update, None)
        return
    if draft is None:
        context.answer_button(update, _label(context, "out_of_date"))
        return
    scope = await connector_groups(session, person.id)
    if draft.step == "pick" and len(parts) == 2 and parts[0] == "g":
        key = parts[1]
        known = (key == impact.EVERYONE and scope is None) or (
            context.protocol.group(key) is not None and (scope is None or key in scope)
        )
        if known:
            context.answer_button(update)
            await _picked(update, context, draft, {"by": "group", "value": key})
            return
    elif draft.step == "pick" and parts == ["m"]:
        context.answer_button(update)
        recent = await meetings.recent(session, now=now, days=90, limit=8)
        choices = [
            (
                f"{day_words(context.prompts, m.starts_at, zone_named(m.timezone))}: {m.title}"[
                    :60
                ],
                f"ys:mm:{m.id}",
            )
            for m in recent
        ]
        await context.ask(
            update,
            "yousaid/ask_meeting",
            reply_markup=_rows(*choices, (_label(context, "cancel"), "ys:x")),
            any=bool(choices),
        )
        return
    elif draft.step == "pick" and len(parts) == 2 and parts[0] == "mm":
        meeting_id = number(parts[1])
        meeting = await meeting_by_id(session, meeting_id) if meeting_id is not None else None
        if meeting is not None and meeting.cancelled_at is None:
            context.answer_button(update)
            await _picked(update, context, draft, {"by": "meeting", "value": meeting.id})
            return
    elif draft.step == "pick" and parts == ["w"]:
        context.answer_button(update)
        impact.save(draft, "word", now=now)
        await context.ask(
            update, "yousaid/ask_word", reply_markup=_rows((_label(context, "cancel"), "ys:x"))
        )
        return
    elif draft.step == "preview" and parts == ["ok"]:
        selection, text = dict(draft.data["selection"]), str(draft.data["text"])
        picks = await impact.pick(session, context.settings.text_cipher(), selection, scope)
        await impact.send(
            session,
            context.protocol,
            context.prompts,
            picks,
            text=text,
            selection=selection,
            by_person_id=person.id,
            now=now,
        )
        await session.delete(draft)
        context.answer_button(update, _label(context, "sent_toast"))
        context.edit_buttons(update, None)
        await context.ask(update, "yousaid/sent", count=len(picks))
        return
    context.answer_button(update, _label(context, "out_of_date"))


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("yousaid", yousaid_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(yousaid_button, pattern=r"^ys:"),
]
