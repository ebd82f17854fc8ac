"""Meetings in Telegram: connectors' ``/meeting``, partners' ``/meetings`` and answer buttons.

Thin: parse the update, call :mod:`bot.meetings.service`, reply. Role checks are the guards'.

Connectors (``connector_only``) plan a meeting step by step, kept in a ``StaffDraft`` (kind
"meeting") so that a restart between steps loses nothing: groups (toggle buttons, then Done),
title (typed), date and time (typed, read in the first chosen group's time zone), length
(buttons from the protocol), place or video link (typed), then a summary to create or drop.
``/meeting`` also lists upcoming meetings (to change the time or cancel) and recent ones (to
mark who came). Their buttons, all checked against the draft or the database (an old or
forged one answers politely and changes nothing):

* ``mc:new``: start a new meeting; ``mc:stop``: forget the draft (or just close a question);
* ``mc:g:<group key>`` / ``mc:g:*`` toggle a group / everyone; ``mc:gd``: done choosing;
* ``mc:len:<minutes>``: a length the protocol offers; ``mc:ok``: create it;
* ``mc:m:<id>``: one upcoming meeting; ``mc:t:<id>``: ask for its new time, ``mc:ty``: apply it;
  ``mc:x:<id>``: ask to cancel it, ``mc:xy:<id>``: cancel it;
* ``mc:a:<id>``: the attendance sheet of a recent meeting; ``mc:at:<id>:<person id>`` ticks or
  unticks one partner; ``mc:done`` closes the sheet.

Typed text from a connector reaches :func:`draft_text` (registered before the fallback, and
matching connectors only, so partners are not affected); without a meeting draft it gets the
fallback's usual reply.

Partners answer with ``mt:<meeting id>:<yes|no|maybe>`` (from a reminder or ``/meetings``): the
answer is kept, the tick moves, and a short thank-you pops up. A cancelled or started meeting
answers politely and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters
from telegram.ext.filters import MessageFilter

from bot.calendar.words import day_words, time_words, timezone_words
from bot.calendar.zones import zone_named, zone_of
from bot.context import BotContext, current_scope
from bot.meetings import service as meetings
from bot.meetings.service import MeetingError, ResponseOutcome
from handlers import fallback
from handlers.guards import connector_only, partner_tool
from prompts import Prompts
from storage.clock import utcnow
from storage.models import Meeting, Person, Role, StaffDraft

STAFF_PREFIX = "mc"
EVERYONE = "*"
SHEET_LIMIT = 90  # Telegram allows 100 buttons under a message

#: Pop-up after a partner's answer button, by outcome (RECORDED and CHANGED thank by answer).
ANSWER_TOASTS = {
    ResponseOutcome.UNCHANGED: "meetings.unchanged",
    ResponseOutcome.CANCELLED: "meetings.cancelled",
    ResponseOutcome.PAST: "meetings.past",
    ResponseOutcome.NOT_INVITED: "meetings.not_invited",
    ResponseOutcome.INVALID: "meetings.not_available",
}

#: Pop-up for a meeting a connector's button can no longer act on.
STAFF_PROBLEMS = {
    "cancelled": "meetings.staff.already_cancelled",
    "started": "meetings.staff.started",
    "not_started": "meetings.staff.not_started",
    "gone": "meetings.staff.gone",
}


class _FromConnector(MessageFilter):
    """Matches a message from a connector (read from the update's scope, no query)."""

    def filter(self, message: Message) -> bool:
        """True when the sender is a connector."""
        scope = current_scope.get()
        return (
            scope is not None and scope.person is not None and scope.person.role == Role.CONNECTOR
        )


# -- small helpers -----------------------------------------------------------------------------


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data)


def _staff_label(prompts: Prompts, key: str, **values: Any) -> str:
    return prompts.label(f"meetings.staff.{key}", **values)


def _staff_buttons(prompts: Prompts, *choices: tuple[str, str]) -> InlineKeyboardMarkup:
    """One button a row: (staff label key, callback data)."""
    return InlineKeyboardMarkup(
        [[_button(_staff_label(prompts, key), data)] for key, data in choices]
    )


def _cancel_markup(prompts: Prompts) -> InlineKeyboardMarkup:
    return _staff_buttons(prompts, ("cancel", "mc:stop"))


def _short(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _zone_values(prompts: Prompts, zone_name: str) -> dict[str, Any]:
    return {"zone": zone_name, "zone_name": timezone_words(prompts, zone_name)}


def _when(prompts: Prompts, moment: datetime, zone_name: str) -> dict[str, Any]:
    zone = zone_named(zone_name)
    return {
        "day": day_words(prompts, moment, zone),
        "time": time_words(prompts, moment.astimezone(zone).time()),
        **_zone_values(prompts, zone_name),
    }


def _staff_details(context: BotContext, meeting: Meeting) -> dict[str, Any]:
    """A meeting's details for connectors, in the zone it was arranged in."""
    prompts = context.prompts
    return {
        **meetings.details(prompts, meeting, zone_named(meeting.timezone)),
        **_zone_values(prompts, meeting.timezone),
        "groups": meetings.group_words(prompts, context.protocol, meeting.groups),
    }


def _groups_markup(context: BotContext, chosen: list[str], everyone: bool) -> InlineKeyboardMarkup:
    prompts, mark = context.prompts, meetings.CHOSEN_MARK
    rows = [
        [_button((mark if g.key in chosen else "") + g.name, f"mc:g:{g.key}")]
        for g in context.protocol.groups
    ]
    rows.append(
        [_button((mark if everyone else "") + _staff_label(prompts, "everyone"), "mc:g:*")]
    )
    rows.append(
        [
            _button(_staff_label(prompts, "done"), "mc:gd"),
            _button(_staff_label(prompts, "cancel"), "mc:stop"),
        ]
    )
    return InlineKeyboardMarkup(rows)


def _problem(update: Update, context: BotContext, reason: str) -> None:
    """Say, in the pressed button's toast, why it cannot act."""
    context.answer_button(
        update, context.prompts.label(STAFF_PROBLEMS.get(reason, STAFF_PROBLEMS["gone"]))
    )


def _parse_id(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 12 else None


async def _meeting(context: BotContext, raw_id: str) -> Meeting | None:
    meeting_id = _parse_id(raw_id)
    return await context.session.get(Meeting, meeting_id) if meeting_id is not None else None


async def _usable_meeting(
    update: Update, context: BotContext, raw_id: str, *, started: bool = False
) -> Meeting | None:
    """The meeting a connector's button names, or None once they are told why it cannot act."""
    meeting = await _meeting(context, raw_id)
    problem = _usable(meeting, utcnow(), started=started)
    if problem is not None or meeting is None:
        _problem(update, context, problem or "gone")
        return None
    return meeting


def _usable(meeting: Meeting | None, now: datetime, *, started: bool = False) -> str | None:
    """Why a connector's button cannot act on ``meeting`` (None: it can)."""
    if meeting is None:
        return "gone"
    if meeting.cancelled_at is not None:
        return "cancelled"
    if started and meeting.starts_at > now:
        return "not_started"
    if not started and meeting.starts_at <= now:
        return "started"
    return None


# -- /meeting ----------------------------------------------------------------------------------


@connector_only
async def meeting_command(update: Update, context: BotContext) -> None:
    """The connector's meetings: plan a new one, change or cancel one, mark who came."""
    session, prompts, now = context.session, context.prompts, utcnow()
    coming = await meetings.upcoming(session, now=now)
    past = await meetings.recent(session, now=now)
    listed = []
    for meeting in coming:
        counts = await meetings.answer_counts(session, meeting.id)
        listed.append(
            {
                "title": meeting.title,
                **_when(prompts, meeting.starts_at, meeting.timezone),
                **counts,
            }
        )
    rows = [[_button(_staff_label(prompts, "new"), "mc:new")]]
    for meeting in coming:
        date = day_words(prompts, meeting.starts_at, zone_named(meeting.timezone))
        label = _staff_label(prompts, "upcoming_button", date=date, title=_short(meeting.title))
        rows.append([_button(label, f"mc:m:{meeting.id}")])
    for meeting in past:
        date = day_words(prompts, meeting.starts_at, zone_named(meeting.timezone))
        label = _staff_label(prompts, "recent_button", date=date, title=_short(meeting.title))
        rows.append([_button(label, f"mc:a:{meeting.id}")])
    await context.reply(
        update,
        "meetings/staff/menu",
        reply_markup=InlineKeyboardMarkup(rows),
        upcoming=listed,
        recent=[
            {
                "title": m.title,
                "day": day_words(prompts, m.starts_at, zone_named(m.timezone)),
            }
            for m in past
        ],
    )


async def _ask_start(
    update: Update, context: BotContext, zone_name: str, meeting: Meeting | None = None
) -> None:
    prompts = context.prompts
    zone = zone_named(zone_name)
    values: dict[str, Any] = {
        "change": meeting is not None,
        "title": meeting.title if meeting else "",
        "day": "",
        "time": "",
        **_zone_values(prompts, zone_name),
        "example": meetings.example_start(prompts, zone, now=utcnow()),
    }
    if meeting is not None:
        values.update(_when(prompts, meeting.starts_at, zone_name))
    await context.reply(
        update, "meetings/staff/ask_start", reply_markup=_cancel_markup(prompts), **values
    )


async def _summary(update: Update, context: BotContext, draft: StaffDraft) -> None:
    prompts, data = context.prompts, draft.data
    groups: list[str] = [] if data.get("everyone") else list(data.get("groups", []))
    starts_at = datetime.fromisoformat(data["start"])
    count = await meetings.count_invitees(context.session, groups)
    markup = _staff_buttons(prompts, ("create", "mc:ok"), ("discard", "mc:stop"))
    await context.reply(
        update,
        "meetings/staff/summary",
        reply_markup=markup,
        title=data["title"],
        length=meetings.length_words(prompts, int(data["length"])),
        place=data["place"],
        groups=meetings.group_words(prompts, context.protocol, groups),
        count=count,
        offsets=meetings.reminder_offsets_words(prompts, context.protocol),
        **_when(prompts, starts_at, data["timezone"]),
    )


@connector_only
async def draft_text(update: Update, context: BotContext) -> None:
    """Typed text from a connector: the next step of their ``/meeting``, if one is open."""
    message, person = update.effective_message, context.person
    if message is None or person is None or message.text is None:
        return
    session, prompts, now = context.session, context.prompts, utcnow()
    draft = await meetings.get_draft(session, person.id, now=now)
    if draft is None:
        await fallback.unknown_message(update, context)
        return
    step, text = draft.step, message.text
    if step in ("title", "place"):
        limit = meetings.TITLE_LIMIT if step == "title" else meetings.PLACE_LIMIT
        cleaned = meetings.clean_text(text, limit)
        if cleaned is None:
            await context.reply(update, "meetings/staff/bad_text", limit=limit)
            return
        if step == "title":
            meetings.save_draft(draft, "start", now=now, title=cleaned)
            await _ask_start(update, context, draft.data["timezone"])
        else:
            meetings.save_draft(draft, "confirm", now=now, place=cleaned)
            await _summary(update, context, draft)
        return
    if step not in ("start", "change_start"):
        await context.reply(update, "meetings/staff/use_buttons")
        return
    zone_name = draft.data["timezone"]
    try:
        starts_at = meetings.parse_start(prompts, text, zone_named(zone_name), now=now)
    except MeetingError as exc:
        await context.reply(
            update,
            "meetings/staff/bad_start",
            reason=exc.reason,
            example=meetings.example_start(prompts, zone_named(zone_name), now=now),
            **_zone_values(prompts, zone_name),
        )
        return
    if step == "start":
        meetings.save_draft(draft, "length", now=now, start=starts_at.isoformat())
        rows = [
            [_button(meetings.length_words(prompts, minutes), f"mc:len:{minutes}")]
            for minutes in context.protocol.meetings.length_choices_minutes
        ]
        rows.append([_button(_staff_label(prompts, "cancel"), "mc:stop")])
        await context.reply(
            update, "meetings/staff/ask_length", reply_markup=InlineKeyboardMarkup(rows)
        )
        return
    meeting = await context.session.get(Meeting, int(draft.data["meeting_id"]))
    problem = _usable(meeting, now)
    if problem is not None or meeting is None:
        await meetings.drop_draft(session, person.id)
        await context.reply(update, "meetings/staff/problem", reason=problem)
        return
    meetings.save_draft(draft, "change_confirm", now=now, start=starts_at.isoformat())
    markup = _staff_buttons(prompts, ("yes_change", "mc:ty"), ("keep", "mc:stop"))
    await context.reply(
        update,
        "meetings/staff/confirm_change",
        reply_markup=markup,
        title=meeting.title,
        told=len(await meetings.told_about(session, meeting)),
        **_when(prompts, starts_at, zone_name),
    )


# -- the connector's buttons ---------------------------------------------------------------------


@connector_only
async def staff_button(update: Update, context: BotContext) -> None:
    """Every ``mc:`` button (see the module docstring); checked, then acted on."""
    query, person = update.callback_query, context.person
    if query is None or person is None:
        return
    parts = (query.data or "").split(":")
    action, args = (parts[1], parts[2:]) if len(parts) >= 2 else ("", [])
    handler = _STAFF_ACTIONS.get((action, len(args)))
    if handler is None:
        context.answer_button(update, _staff_label(context.prompts, "out_of_date"))
        return
    await handler(update, context, person, args)


async def _new(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    now = utcnow()
    zone = meetings.meeting_zone(context.protocol, [])
    await meetings.start_draft(
        context.session,
        person.id,
        "groups",
        {"groups": [], "everyone": False, "timezone": zone},
        now=now,
    )
    context.answer_button(update)
    await context.reply(
        update, "meetings/staff/ask_groups", reply_markup=_groups_markup(context, [], False)
    )


async def _draft_at(
    update: Update, context: BotContext, person: Person, *steps: str
) -> StaffDraft | None:
    """The connector's draft if it is at one of ``steps``; else an out-of-date pop-up."""
    draft = await meetings.get_draft(context.session, person.id, now=utcnow())
    if draft is None or draft.step not in steps:
        context.answer_button(update, _staff_label(context.prompts, "out_of_date"))
        return None
    return draft


async def _toggle_group(
    update: Update, context: BotContext, person: Person, args: list[str]
) -> None:
    draft = await _draft_at(update, context, person, "groups")
    if draft is None:
        return
    key = args[0]
    chosen: list[str] = list(draft.data.get("groups", []))
    everyone = bool(draft.data.get("everyone"))
    if key == EVERYONE:
        everyone, chosen = not everyone, []
    elif context.protocol.group(key) is not None:
        chosen = [k for k in chosen if k != key] if key in chosen else [*chosen, key]
        everyone = False
    else:
        context.answer_button(update, _staff_label(context.prompts, "out_of_date"))
        return
    meetings.save_draft(
        draft,
        "groups",
        now=utcnow(),
        groups=chosen,
        everyone=everyone,
        timezone=meetings.meeting_zone(context.protocol, chosen),  # the first one chosen
    )
    context.answer_button(update)
    context.edit_buttons(update, _groups_markup(context, chosen, everyone))


async def _groups_done(
    update: Update, context: BotContext, person: Person, args: list[str]
) -> None:
    draft = await _draft_at(update, context, person, "groups")
    if draft is None:
        return
    if not draft.data.get("groups") and not draft.data.get("everyone"):
        context.answer_button(update, _staff_label(context.prompts, "pick_group"))
        return
    await _ask_typed(update, context, draft, "title")


async def _ask_typed(
    update: Update, context: BotContext, draft: StaffDraft, step: str, **data: object
) -> None:
    """A button moved the draft on to a typed step: close the buttons, ask for the text."""
    meetings.save_draft(draft, step, now=utcnow(), **data)
    context.answer_button(update)
    context.edit_buttons(update, None)
    await context.reply(
        update, f"meetings/staff/ask_{step}", reply_markup=_cancel_markup(context.prompts)
    )


async def _length(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    draft = await _draft_at(update, context, person, "length")
    if draft is None:
        return
    minutes = _parse_id(args[0])
    if minutes is None or minutes not in context.protocol.meetings.length_choices_minutes:
        context.answer_button(update, _staff_label(context.prompts, "out_of_date"))
        return
    await _ask_typed(update, context, draft, "place", length=minutes)


async def _create(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    draft = await _draft_at(update, context, person, "confirm")
    if draft is None:
        return
    data, now, prompts = draft.data, utcnow(), context.prompts
    try:
        meeting = await meetings.create_meeting(
            context.session,
            context.protocol,
            title=data["title"],
            starts_at=datetime.fromisoformat(data["start"]),
            length_minutes=int(data["length"]),
            place=data["place"],
            groups=[] if data.get("everyone") else list(data.get("groups", [])),
            timezone=data["timezone"],
            created_by=person.id,
            now=now,
        )
    except MeetingError as exc:
        context.answer_button(update)
        if exc.reason == "past":
            meetings.save_draft(draft, "start", now=now)
            await context.reply(
                update,
                "meetings/staff/bad_start",
                reason="past",
                example=meetings.example_start(prompts, zone_named(data["timezone"]), now=now),
                **_zone_values(prompts, data["timezone"]),
            )
            return
        await meetings.drop_draft(context.session, person.id)
        await context.reply(update, "meetings/staff/problem", reason=exc.reason)
        return
    await meetings.drop_draft(context.session, person.id)
    context.answer_button(update, _staff_label(prompts, "saved"))
    context.edit_buttons(update, None)
    await context.reply(
        update,
        "meetings/staff/created",
        title=meeting.title,
        count=len(await meetings.invitees(context.session, meeting)),
        offsets=meetings.reminder_offsets_words(prompts, context.protocol),
        **_when(prompts, meeting.starts_at, meeting.timezone),
    )


async def _stop(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    dropped = await meetings.drop_draft(context.session, person.id)
    context.answer_button(update, _staff_label(context.prompts, "stopped"))
    context.edit_buttons(update, None)
    if dropped:
        await context.reply(update, "meetings/staff/discarded")


async def _manage(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    meeting = await _usable_meeting(update, context, args[0])
    if meeting is None:
        return
    prompts = context.prompts
    markup = _staff_buttons(
        prompts, ("change_time", f"mc:t:{meeting.id}"), ("cancel_meeting", f"mc:x:{meeting.id}")
    )
    context.answer_button(update)
    await context.reply(
        update,
        "meetings/staff/manage",
        reply_markup=markup,
        **_staff_details(context, meeting),
        **await meetings.answer_counts(context.session, meeting.id),
    )


async def _change_time(
    update: Update, context: BotContext, person: Person, args: list[str]
) -> None:
    meeting = await _usable_meeting(update, context, args[0])
    if meeting is None:
        return
    await meetings.start_draft(
        context.session,
        person.id,
        "change_start",
        {"meeting_id": meeting.id, "timezone": meeting.timezone},
        now=utcnow(),
    )
    context.answer_button(update)
    await _ask_start(update, context, meeting.timezone, meeting)


async def _apply_change(
    update: Update, context: BotContext, person: Person, args: list[str]
) -> None:
    draft = await _draft_at(update, context, person, "change_confirm")
    if draft is None:
        return
    meeting = await context.session.get(Meeting, int(draft.data["meeting_id"]))
    now = utcnow()
    if meeting is None:
        await meetings.drop_draft(context.session, person.id)
        _problem(update, context, "gone")
        return
    try:
        result = await meetings.change_meeting(
            context.session,
            context.protocol,
            context.prompts,
            meeting,
            starts_at=datetime.fromisoformat(draft.data["start"]),
            by_person_id=person.id,
            now=now,
        )
    except MeetingError as exc:
        await meetings.drop_draft(context.session, person.id)
        context.answer_button(update)
        context.edit_buttons(update, None)
        reason = "started" if exc.reason == "nothing" else exc.reason
        await context.reply(update, "meetings/staff/problem", reason=reason)
        return
    await meetings.drop_draft(context.session, person.id)
    context.answer_button(update, _staff_label(context.prompts, "saved"))
    context.edit_buttons(update, None)
    await context.reply(
        update,
        "meetings/staff/changed",
        title=meeting.title,
        notified=result.notified,
        **_when(context.prompts, meeting.starts_at, meeting.timezone),
    )


async def _ask_cancel(
    update: Update, context: BotContext, person: Person, args: list[str]
) -> None:
    meeting = await _usable_meeting(update, context, args[0])
    if meeting is None:
        return
    prompts = context.prompts
    markup = _staff_buttons(prompts, ("yes_cancel", f"mc:xy:{meeting.id}"), ("keep", "mc:stop"))
    context.answer_button(update)
    await context.reply(
        update,
        "meetings/staff/confirm_cancel",
        reply_markup=markup,
        title=meeting.title,
        told=len(await meetings.told_about(context.session, meeting)),
        **_when(prompts, meeting.starts_at, meeting.timezone),
    )


async def _cancel(update: Update, context: BotContext, person: Person, args: list[str]) -> None:
    meeting = await _meeting(context, args[0])
    if meeting is None or meeting.cancelled_at is not None:
        _problem(update, context, "gone" if meeting is None else "cancelled")
        return
    notified = await meetings.cancel_meeting(
        context.session,
        context.protocol,
        context.prompts,
        meeting,
        by_person_id=person.id,
        now=utcnow(),
    )
    context.answer_button(update, _staff_label(context.prompts, "saved"))
    context.edit_buttons(update, None)
    await context.reply(update, "meetings/staff/cancelled", title=meeting.title, notified=notified)


async def _sheet_markup(context: BotContext, meeting: Meeting) -> InlineKeyboardMarkup:
    prompts = context.prompts
    rows = []
    for row in (await meetings.attendance_sheet(context.session, meeting))[:SHEET_LIMIT]:
        name = _short(row.name or "?", 40)
        if row.answer is not None:
            said = prompts.label(f"meetings.staff.said.{row.answer}")
            label = _staff_label(prompts, "person_button_answer", name=name, answer=said)
        else:
            label = _staff_label(prompts, "person_button", name=name)
        mark = meetings.CHOSEN_MARK if row.attended else ""
        rows.append([_button(mark + label, f"mc:at:{meeting.id}:{row.person_id}")])
    rows.append([_button(_staff_label(prompts, "done"), "mc:done")])
    return InlineKeyboardMarkup(rows)


async def _attendance(
    update: Update, context: BotContext, person: Person, args: list[str]
) -> None:
    meeting = await _usable_meeting(update, context, args[0], started=True)
    if meeting is None:
        return
    markup = await _sheet_markup(context, meeting)
    context.answer_button(update)
    await context.reply(
        update,
        "meetings/staff/attendance",
        reply_markup=markup,
        title=meeting.title,
        day=day_words(context.prompts, meeting.starts_at, zone_named(meeting.timezone)),
        length=meetings.length_words(context.prompts, meeting.length_minutes),
        people=len(markup.inline_keyboard) > 1,
    )


async def _toggle_attended(
    update: Update, context: BotContext, person: Person, args: list[str]
) -> None:
    meeting = await _meeting(context, args[0])
    problem = _usable(meeting, utcnow(), started=True)
    partner_id = _parse_id(args[1])
    partner = await context.session.get(Person, partner_id) if partner_id is not None else None
    if problem is not None or meeting is None:
        _problem(update, context, problem or "gone")
        return
    if partner is None or partner.role != Role.PARTNER:
        context.answer_button(update, _staff_label(context.prompts, "out_of_date"))
        return
    sheet = await meetings.attendance_sheet(context.session, meeting)
    was = next((r.attended for r in sheet if r.person_id == partner.id), False)
    await meetings.mark_attendance(
        context.session, meeting, partner, not was, person.id, now=utcnow()
    )
    context.answer_button(update, _staff_label(context.prompts, "did_not_come" if was else "came"))
    context.edit_buttons(update, await _sheet_markup(context, meeting))


async def _sheet_done(
    update: Update, context: BotContext, person: Person, args: list[str]
) -> None:
    context.answer_button(update, _staff_label(context.prompts, "saved"))
    context.edit_buttons(update, None)


_STAFF_ACTIONS = {
    ("new", 0): _new,
    ("stop", 0): _stop,
    ("g", 1): _toggle_group,
    ("gd", 0): _groups_done,
    ("len", 1): _length,
    ("ok", 0): _create,
    ("m", 1): _manage,
    ("t", 1): _change_time,
    ("ty", 0): _apply_change,
    ("x", 1): _ask_cancel,
    ("xy", 1): _cancel,
    ("a", 1): _attendance,
    ("at", 2): _toggle_attended,
    ("done", 0): _sheet_done,
}


# -- partners ----------------------------------------------------------------------------------


@partner_tool(onboarded=True)
async def meetings_command(update: Update, context: BotContext) -> None:
    """``/meetings``: what is coming up for the partner, with what they answered."""
    person, profile = context.person, context.profile
    if person is None or profile is None:
        return
    prompts = context.prompts
    coming = await meetings.upcoming_for_partner(context.session, person, profile, now=utcnow())
    if not coming:
        await context.reply(update, "meetings/none")
        return
    zone = zone_of(profile)
    for index, (meeting, answer) in enumerate(coming):
        await context.reply(
            update,
            "meetings/upcoming",
            reply_markup=meetings.answer_keyboard(prompts, meeting, answer),
            first=index == 0,
            count=len(coming),
            answer=meetings.answer_label(prompts, answer),
            **meetings.details(prompts, meeting, zone),
        )


@partner_tool(onboarded=True)
async def answer_button(update: Update, context: BotContext) -> None:
    """A partner's answer to a meeting: kept, ticked, thanked; anything else changes nothing."""
    query, person = update.callback_query, context.person
    if query is None or person is None:
        return
    prompts = context.prompts
    parsed = meetings.parse_callback(query.data)
    meeting = await context.session.get(Meeting, parsed[0]) if parsed is not None else None
    if parsed is None or meeting is None:
        context.answer_button(update, prompts.label("meetings.not_available"))
        return
    result = await meetings.record_response(
        context.session, meeting, person, parsed[1], now=utcnow()
    )
    if result.outcome in (ResponseOutcome.RECORDED, ResponseOutcome.CHANGED):
        context.answer_button(update, prompts.label(f"meetings.thanks.{result.answer}"))
    else:
        context.answer_button(update, prompts.label(ANSWER_TOASTS[result.outcome]))
    if result.outcome in (
        ResponseOutcome.RECORDED,
        ResponseOutcome.CHANGED,
        ResponseOutcome.UNCHANGED,
    ):
        context.edit_buttons(update, meetings.answer_keyboard(prompts, meeting, result.answer))


_CONNECTOR_TEXT = (
    filters.UpdateType.MESSAGE
    & filters.ChatType.PRIVATE
    & filters.TEXT
    & ~filters.COMMAND
    & _FromConnector()
)

HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("meeting", meeting_command, filters=filters.ChatType.PRIVATE),
    CommandHandler("meetings", meetings_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(staff_button, pattern=rf"^{STAFF_PREFIX}:"),
    CallbackQueryHandler(answer_button, pattern=rf"^{meetings.CALLBACK_PREFIX}:"),
    MessageHandler(_CONNECTOR_TEXT, draft_text),
]
