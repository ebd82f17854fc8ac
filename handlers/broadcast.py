"""``/broadcast`` (connectors): send an update to everyone, some groups or a meeting's partners.

Thin: parse the update, call :mod:`bot.connector.broadcast`, reply. One step at a time, kept
in a draft (kind "broadcast") so a restart loses nothing: the audience (buttons), the content
(the connector's next message: text, or a photo or a document with a caption), then the
preview exactly as partners will see it with who it reaches and who is left out, and Send /
Send now (urgent, confirmed once more) / Cancel. ``/broadcast`` also lists the last
broadcasts with their reports, and cancels one still going out. Buttons (checked against the
draft or the database; an old or forged one answers politely and changes nothing):

* ``bc:new`` start; ``bc:stop`` forget the draft;
* ``bc:g:<group>`` toggle a group, ``bc:gd`` done, ``bc:all`` everyone;
* ``bc:m:<meeting>`` the partners invited to a meeting, ``bc:y:<meeting>`` those who said yes;
* ``bc:send`` send, ``bc:u`` ask to send now despite quiet hours, ``bc:su`` send now;
* ``bc:r:<id>`` a broadcast's report, ``bc:x:<id>`` cancel what has not left.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.calendar.words import day_words, time_words
from bot.connector import broadcast as broadcasts
from bot.connector.broadcast import Audience, BroadcastError, Content
from bot.connector.progress import report_values
from bot.context import BotContext
from bot.meetings import draft as meetings
from bot.transport.callbacks import fields, number
from handlers.guards import connector_only
from storage.clock import utcnow
from storage.models import Person, StaffDraft
from storage.queries import drafts
from storage.queries.broadcasts import recent_broadcasts

PREFIX = "bc"
DRAFT_KIND = "broadcast"
CHOSEN_MARK = "\u2713 "
LISTED = 5


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data)


def _label(context: BotContext, key: str, **values: Any) -> str:
    return context.prompts.label(f"broadcast.buttons.{key}", **values)


def _toast(context: BotContext, key: str) -> str:
    return context.prompts.label(f"broadcast.toasts.{key}")


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


@connector_only
async def broadcast_command(update: Update, context: BotContext) -> None:
    """The last broadcasts with their reports, and a button to write a new one."""
    session, prompts, now = context.session, context.prompts, utcnow()
    zone = context.protocol.groups[0].zone
    listed = []
    rows = [[_button(_label(context, "new"), f"{PREFIX}:new")]]
    for item in await recent_broadcasts(session, LISTED):
        current = await broadcasts.report(session, item.id, now=now)
        if current is None:
            continue
        listed.append(
            {
                **report_values(current),
                "day": day_words(prompts, item.created_at, zone),
                "time": time_words(prompts, item.created_at.astimezone(zone).time()),
                "audience": await broadcasts.audience_words(
                    session, prompts, context.protocol, item.audience
                ),
            }
        )
        if not current.done or current.counts.waiting:
            rows.append(
                [_button(_label(context, "cancel_one", id=item.id), f"{PREFIX}:x:{item.id}")]
            )
    await context.ask(
        update, "broadcast/menu", reply_markup=InlineKeyboardMarkup(rows), broadcasts=listed
    )


async def _audience_markup(context: BotContext, chosen: list[str]) -> InlineKeyboardMarkup:
    rows = [
        [_button((CHOSEN_MARK if g.key in chosen else "") + g.name, f"{PREFIX}:g:{g.key}")]
        for g in context.protocol.groups
    ]
    rows.append([_button(_label(context, "everyone"), f"{PREFIX}:all")])
    for meeting in await meetings.upcoming(context.session, now=utcnow()):
        title = _short(meeting.title)
        rows.append([_button(_label(context, "invited", title=title), f"{PREFIX}:m:{meeting.id}")])
        rows.append(
            [_button(_label(context, "said_yes", title=title), f"{PREFIX}:y:{meeting.id}")]
        )
    rows.append(
        [
            _button(_label(context, "done"), f"{PREFIX}:gd"),
            _button(_label(context, "cancel"), f"{PREFIX}:stop"),
        ]
    )
    return InlineKeyboardMarkup(rows)


Action = Callable[[Update, BotContext, Person, list[str]], Awaitable[None]]


@connector_only
async def broadcast_button(update: Update, context: BotContext) -> None:
    """Every ``bc:`` button (see the module docstring); checked, then acted on."""
    query, person = update.callback_query, context.person
    if query is None or person is None:
        return
    parts = fields(query.data, PREFIX) or [""]
    action, args = parts[0], parts[1:]
    handler = _ACTIONS.get((action, len(args)))
    if handler is None:
        context.answer_button(update, _toast(context, "out_of_date"))
        return
    await handler(update, context, person, args)


async def _new(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    await drafts.start(
        context.session, person.id, DRAFT_KIND, "audience", {"groups": []}, now=utcnow()
    )
    context.answer_button(update)
    await context.ask(
        update, "broadcast/ask_audience", reply_markup=await _audience_markup(context, [])
    )


async def _draft_at(
    update: Update, context: BotContext, person: Person, *steps: str
) -> StaffDraft | None:
    draft = await drafts.get(context.session, person.id, DRAFT_KIND, now=utcnow())
    if draft is None or draft.step not in steps:
        context.answer_button(update, _toast(context, "out_of_date"))
        return None
    return draft


async def _toggle(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    draft = await _draft_at(update, context, person, "audience")
    if draft is None:
        return
    key = args[0]
    if context.protocol.group(key) is None:
        context.answer_button(update, _toast(context, "out_of_date"))
        return
    chosen = list(draft.data.get("groups", []))
    chosen = [k for k in chosen if k != key] if key in chosen else [*chosen, key]
    drafts.save(draft, "audience", now=utcnow(), groups=chosen)
    context.answer_button(update)
    context.edit_buttons(update, await _audience_markup(context, chosen))


async def _chosen(
    update: Update, context: BotContext, draft: StaffDraft, audience: Audience
) -> None:
    """The audience is settled: check it, then ask for the content."""
    try:
        planned = await broadcasts.plan(context.session, context.protocol, audience, now=utcnow())
    except BroadcastError as exc:
        context.answer_button(update)
        await context.ask(update, "broadcast/problem", reason=exc.reason, **exc.values)
        return
    drafts.save(draft, "content", now=utcnow(), audience=audience.to_json())
    context.answer_button(update)
    context.edit_buttons(update, None)
    await context.ask(
        update,
        "broadcast/ask_content",
        reply_markup=InlineKeyboardMarkup(
            [[_button(_label(context, "cancel"), f"{PREFIX}:stop")]]
        ),
        audience=await broadcasts.audience_words(
            context.session, context.prompts, context.protocol, audience.to_json()
        ),
        count=len(planned.recipients),
    )


async def _groups_done(
    update: Update, context: BotContext, person: Person, args: list[str]
) -> None:
    draft = await _draft_at(update, context, person, "audience")
    if draft is None:
        return
    groups = tuple(draft.data.get("groups", []))
    if not groups:
        context.answer_button(update, _toast(context, "pick_group"))
        return
    await _chosen(update, context, draft, Audience(groups=groups))


async def _everyone(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    draft = await _draft_at(update, context, person, "audience")
    if draft is not None:
        await _chosen(update, context, draft, Audience())


def _meeting_action(said_yes: bool) -> Action:
    async def choose(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
        draft = await _draft_at(update, context, person, "audience")
        if draft is None:
            return
        meeting_id = number(args[0])
        if meeting_id is None:
            context.answer_button(update, _toast(context, "out_of_date"))
            return
        await _chosen(update, context, draft, Audience(meeting_id=meeting_id, said_yes=said_yes))

    return choose


def content_of(message: Message) -> Content | None:
    """The broadcast content in a connector's message (None: nothing that can be sent)."""
    if message.photo:
        return Content("photo", message.caption_html or "", message.photo[-1].file_id)
    if message.document is not None:
        return Content("document", message.caption_html or "", message.document.file_id)
    if message.text is not None:
        return Content("text", message.text_html)
    return None


async def take_content(update: Update, context: BotContext, draft: StaffDraft) -> None:
    """The connector's message at the content step: check it, preview it, ask to send."""
    message, person = update.effective_message, context.person
    if message is None or person is None:
        return
    content = content_of(message)
    if content is None:
        await context.ask(update, "broadcast/problem", reason="unsupported")
        return
    try:
        broadcasts.check_content(content)
        audience = Audience.from_json(draft.data["audience"])
        planned = await broadcasts.plan(context.session, context.protocol, audience, now=utcnow())
    except BroadcastError as exc:
        await context.ask(update, "broadcast/problem", reason=exc.reason, **exc.values)
        return
    if not planned.recipients:
        await drafts.drop(context.session, person.id, DRAFT_KIND)
        await context.ask(update, "broadcast/problem", reason="nobody")
        return
    drafts.save(draft, "confirm", now=utcnow(), content=content.to_json())
    await broadcasts.queue_preview(
        context.session,
        key=f"reply:{context.scope.update_id}:preview",
        chat_id=message.chat_id,
        content=content,
        name=planned.recipients[0].name,
    )
    markup = InlineKeyboardMarkup(
        [
            [_button(_label(context, "send"), f"{PREFIX}:send")],
            [_button(_label(context, "urgent"), f"{PREFIX}:u")],
            [_button(_label(context, "cancel"), f"{PREFIX}:stop")],
        ]
    )
    await context.ask(
        update,
        "broadcast/confirm",
        reply_markup=markup,
        count=len(planned.recipients),
        left_out={k: v for k, v in planned.left_out.items() if v},
        quiet=planned.in_quiet_hours,
    )


async def _ask_urgent(
    update: Update, context: BotContext, person: Person, args: list[str]
) -> None:
    draft = await _draft_at(update, context, person, "confirm")
    if draft is None:
        return
    drafts.save(draft, "urgent", now=utcnow())
    context.answer_button(update)
    context.edit_buttons(update, None)
    markup = InlineKeyboardMarkup(
        [
            [_button(_label(context, "send_now"), f"{PREFIX}:su")],
            [_button(_label(context, "send"), f"{PREFIX}:send")],
            [_button(_label(context, "cancel"), f"{PREFIX}:stop")],
        ]
    )
    await context.ask(update, "broadcast/confirm_urgent", reply_markup=markup)


def _send_action(urgent: bool) -> Action:
    async def go(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
        steps = ("urgent",) if urgent else ("confirm", "urgent")
        draft = await _draft_at(update, context, person, *steps)
        message = update.effective_message
        if draft is None or message is None:
            return
        await drafts.drop(context.session, person.id, DRAFT_KIND)
        context.answer_button(update)
        context.edit_buttons(update, None)
        try:
            await broadcasts.send(
                context.session,
                context.protocol,
                context.prompts,
                audience=Audience.from_json(draft.data["audience"]),
                content=Content.from_json(draft.data["content"]),
                urgent=urgent,
                by_person_id=person.id,
                now=utcnow(),
                progress_chat_id=message.chat_id,
            )
        except BroadcastError as exc:
            await context.ask(update, "broadcast/problem", reason=exc.reason, **exc.values)

    return go


async def _stop(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    dropped = await drafts.drop(context.session, person.id, DRAFT_KIND)
    context.answer_button(update, _toast(context, "stopped"))
    context.edit_buttons(update, None)
    if dropped:
        await context.ask(update, "broadcast/discarded")


async def _cancel(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    broadcast_id = number(args[0])
    stopped = (
        await broadcasts.cancel(
            context.session, broadcast_id, by_person_id=person.id, now=utcnow()
        )
        if broadcast_id is not None
        else None
    )
    if stopped is None:
        context.answer_button(update, _toast(context, "out_of_date"))
        return
    context.answer_button(update)
    await context.reply(update, "broadcast/cancelled", id=broadcast_id, cancelled=stopped)


async def _report(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    broadcast_id = number(args[0])
    current = (
        await broadcasts.report(context.session, broadcast_id, now=utcnow())
        if broadcast_id is not None
        else None
    )
    if current is None:
        context.answer_button(update, _toast(context, "out_of_date"))
        return
    context.answer_button(update)
    await context.reply(update, "broadcast/report", **report_values(current))


_ACTIONS: dict[tuple[str, int], Action] = {
    ("new", 0): _new,
    ("stop", 0): _stop,
    ("g", 1): _toggle,
    ("gd", 0): _groups_done,
    ("all", 0): _everyone,
    ("m", 1): _meeting_action(said_yes=False),
    ("y", 1): _meeting_action(said_yes=True),
    ("send", 0): _send_action(urgent=False),
    ("u", 0): _ask_urgent,
    ("su", 0): _send_action(urgent=True),
    ("x", 1): _cancel,
    ("r", 1): _report,
}

HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("broadcast", broadcast_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(broadcast_button, pattern=rf"^{PREFIX}:"),
]
