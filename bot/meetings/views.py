"""Every meeting message a person can see, each built by one function: its text and buttons.

The bot sends what these return (the due runner's reminders, the change and cancel notices,
``/meetings``, every step of a connector's ``/meeting``) and ``companion preview`` shows what
they return, so the preview cannot drift from what people get. A view only words values it is
given; the services and the draft read the database and decide.

Partners: :func:`reminder_message`, :func:`change_notice`, :func:`cancel_notice`,
:func:`upcoming`, :func:`none_upcoming`, and :func:`answer_reply` for their answer buttons.
Connectors (``/meeting``): :func:`connector_menu`, the draft's questions (:func:`ask_groups`,
:func:`ask_title`, :func:`ask_start`, :func:`ask_length`, :func:`ask_place`), its answers to
what does not fit (:func:`bad_text`, :func:`bad_start`, :func:`use_buttons`,
:func:`problem`), :func:`summary`, :func:`created`, :func:`discarded`, :func:`manage`,
:func:`confirm_change`, :func:`meeting_changed`, :func:`confirm_cancel`,
:func:`meeting_cancelled` and :func:`attendance`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.calendar.words import day_words
from bot.calendar.zones import zone_named
from bot.meetings.callbacks import EVERYONE, callback_data, staff_data
from bot.meetings.rules import ANSWERS, ResponseOutcome, ResponseResult
from bot.meetings.typed_dates import example_start
from bot.meetings.words import (
    answer_label,
    details,
    group_words,
    length_words,
    offset_words,
    reminder_offsets_words,
    when_values,
    zone_values,
)
from bot.protocol import StudyProtocol
from bot.transport.view import View
from prompts import Prompts
from storage.clock import utcnow
from storage.models import Meeting

CHOSEN_MARK = "\u2713 "
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


@dataclass(frozen=True)
class Reply:
    """What the bot does in answer to a press or a typed message.

    ``toast`` is the pop-up on the pressed button (None: answered without one);
    ``change_buttons`` replaces the buttons under the pressed message with ``buttons`` (None
    removes them); ``message`` is a new message in the chat.
    """

    toast: str | None = None
    message: View | None = None
    change_buttons: bool = False
    buttons: InlineKeyboardMarkup | None = None


class AttendanceRow(NamedTuple):
    """One partner on an attendance sheet."""

    person_id: int
    name: str
    answer: str | None
    attended: bool


# -- small helpers -----------------------------------------------------------------------------


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data)


def staff_label(prompts: Prompts, key: str, **values: Any) -> str:
    """A connector's button or pop-up words, ``meetings.staff.<key>``."""
    return prompts.label(f"meetings.staff.{key}", **values)


def _staff_buttons(prompts: Prompts, *choices: tuple[str, str]) -> InlineKeyboardMarkup:
    """One button a row: (staff label key, callback data)."""
    return InlineKeyboardMarkup(
        [[_button(staff_label(prompts, key), data)] for key, data in choices]
    )


def _cancel_markup(prompts: Prompts) -> InlineKeyboardMarkup:
    return _staff_buttons(prompts, ("cancel", staff_data("stop")))


def _short(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def problem_toast(prompts: Prompts, reason: str) -> str:
    """The pop-up saying why a connector's button cannot act on its meeting."""
    return prompts.label(STAFF_PROBLEMS.get(reason, STAFF_PROBLEMS["gone"]))


# -- partners ----------------------------------------------------------------------------------


def answer_keyboard(
    prompts: Prompts, meeting: Meeting, chosen: str | None = None
) -> InlineKeyboardMarkup:
    """The three answer buttons, one per row, with the chosen one ticked."""
    return InlineKeyboardMarkup(
        [
            [
                _button(
                    (CHOSEN_MARK if answer == chosen else "")
                    + prompts.label(f"meetings.answers.{answer}"),
                    callback_data(meeting.id, answer),
                )
            ]
            for answer in ANSWERS
        ]
    )


def reminder_message(
    prompts: Prompts,
    meeting: Meeting,
    *,
    name: str,
    zone: ZoneInfo,
    answer: str | None,
    hours_before: int,
    now: datetime | None = None,
) -> View:
    """The reminder a partner gets ``hours_before`` a meeting, and its answer buttons.

    The day and time are in the partner's own zone; ``answer`` (their answer so far, if any)
    is named in the text and ticked on its button. "In 2 days" follows ``hours_before``
    unless the reminder goes out (at ``now``) well away from that time (late after downtime,
    or planned at short notice): then it says how long there really is left.
    """
    left = (meeting.starts_at - (now or utcnow())).total_seconds() / 3600
    if abs(left - hours_before) >= 1.5 and left > 0:
        hours_before = round(left / 24) * 24 if left >= 24 else round(left)
    soon = (
        offset_words(prompts, hours_before)
        if hours_before >= 1 and left >= 0.75
        else prompts.label("meetings.offset.under_an_hour")
    )
    text = prompts.render(
        "meetings/reminder",
        name=name,
        soon=soon,
        answer=answer_label(prompts, answer),
        **details(prompts, meeting, zone),
    )
    return View(text, answer_keyboard(prompts, meeting, answer))


def change_notice(
    prompts: Prompts,
    meeting: Meeting,
    *,
    name: str,
    zone: ZoneInfo,
    changed: Sequence[str],
    answer: str | None,
) -> View:
    """A changed meeting's new details for a partner who knew of it, with the answer buttons."""
    text = prompts.render(
        "meetings/changed",
        name=name,
        changed=list(changed),
        answer=answer_label(prompts, answer),
        **details(prompts, meeting, zone),
    )
    return View(text, answer_keyboard(prompts, meeting, answer))


def cancel_notice(prompts: Prompts, meeting: Meeting, *, name: str, zone: ZoneInfo) -> View:
    """The kind note to a partner who knew of a meeting that is called off."""
    text = prompts.render("meetings/cancelled", name=name, **details(prompts, meeting, zone))
    return View(text)


def upcoming(
    prompts: Prompts,
    meeting: Meeting,
    *,
    zone: ZoneInfo,
    answer: str | None,
    first: bool,
    count: int,
) -> View:
    """One meeting of a partner's ``/meetings``, with what they answered ticked."""
    text = prompts.render(
        "meetings/upcoming",
        first=first,
        count=count,
        answer=answer_label(prompts, answer),
        **details(prompts, meeting, zone),
    )
    return View(text, answer_keyboard(prompts, meeting, answer))


def none_upcoming(prompts: Prompts) -> View:
    """``/meetings`` when nothing is planned for the partner."""
    return View(prompts.render("meetings/none"))


def answer_reply(prompts: Prompts, meeting: Meeting | None, result: ResponseResult) -> Reply:
    """A partner's answer button: a thank-you (or why nothing changed), the tick moved."""
    if result.outcome in (ResponseOutcome.RECORDED, ResponseOutcome.CHANGED):
        toast = prompts.label(f"meetings.thanks.{result.answer}")
    else:
        toast = prompts.label(ANSWER_TOASTS[result.outcome])
    kept = (ResponseOutcome.RECORDED, ResponseOutcome.CHANGED, ResponseOutcome.UNCHANGED)
    if meeting is None or result.outcome not in kept:
        return Reply(toast=toast)
    return Reply(
        toast=toast,
        change_buttons=True,
        buttons=answer_keyboard(prompts, meeting, result.answer),
    )


# -- connectors: the menu ----------------------------------------------------------------------


def connector_menu(
    prompts: Prompts,
    coming: Sequence[tuple[Meeting, dict[str, int]]],
    past: Sequence[Meeting],
) -> View:
    """``/meeting``: the meetings coming up (with their answers so far) and recent ones.

    Its buttons plan a new meeting, open one coming up (to change or cancel it), or open a
    recent one's attendance sheet.
    """
    rows = [[_button(staff_label(prompts, "new"), staff_data("new"))]]
    for meeting, _ in coming:
        date = day_words(prompts, meeting.starts_at, zone_named(meeting.timezone))
        label = staff_label(prompts, "upcoming_button", date=date, title=_short(meeting.title))
        rows.append([_button(label, staff_data("m", meeting.id))])
    for meeting in past:
        date = day_words(prompts, meeting.starts_at, zone_named(meeting.timezone))
        label = staff_label(prompts, "recent_button", date=date, title=_short(meeting.title))
        rows.append([_button(label, staff_data("a", meeting.id))])
    text = prompts.render(
        "meetings/staff/menu",
        upcoming=[
            {
                "title": meeting.title,
                **when_values(prompts, meeting.starts_at, meeting.timezone),
                **counts,
            }
            for meeting, counts in coming
        ],
        recent=[
            {
                "title": m.title,
                "day": day_words(prompts, m.starts_at, zone_named(m.timezone)),
            }
            for m in past
        ],
    )
    return View(text, InlineKeyboardMarkup(rows))


# -- connectors: a new meeting, step by step ---------------------------------------------------


def groups_keyboard(
    prompts: Prompts, protocol: StudyProtocol, chosen: Iterable[str], everyone: bool
) -> InlineKeyboardMarkup:
    """A toggle button per group of the protocol and one for everyone, ticked when chosen."""
    picked = set(chosen)
    rows = [
        [_button((CHOSEN_MARK if g.key in picked else "") + g.name, staff_data("g", g.key))]
        for g in protocol.groups
    ]
    everyone_label = (CHOSEN_MARK if everyone else "") + staff_label(prompts, "everyone")
    rows.append([_button(everyone_label, staff_data("g", EVERYONE))])
    rows.append(
        [
            _button(staff_label(prompts, "done"), staff_data("gd")),
            _button(staff_label(prompts, "cancel"), staff_data("stop")),
        ]
    )
    return InlineKeyboardMarkup(rows)


def ask_groups(prompts: Prompts, protocol: StudyProtocol) -> View:
    """Step 1: who the meeting is for (nothing chosen yet)."""
    return View(
        prompts.render("meetings/staff/ask_groups"), groups_keyboard(prompts, protocol, [], False)
    )


def ask_typed(prompts: Prompts, step: str) -> View:
    """A step answered by typing (``title`` or ``place``), with a button to cancel."""
    return View(prompts.render(f"meetings/staff/ask_{step}"), _cancel_markup(prompts))


def ask_title(prompts: Prompts) -> View:
    """Step 2: the meeting's title."""
    return ask_typed(prompts, "title")


def ask_place(prompts: Prompts) -> View:
    """Step 5: where it is, or its video link."""
    return ask_typed(prompts, "place")


def ask_start(
    prompts: Prompts, zone_name: str, *, now: datetime, meeting: Meeting | None = None
) -> View:
    """Step 3, or changing ``meeting``'s time: the date and time, typed in ``zone_name``."""
    values: dict[str, Any] = {
        "change": meeting is not None,
        "title": meeting.title if meeting else "",
        "day": "",
        "time": "",
        **zone_values(prompts, zone_name),
        "example": example_start(prompts, zone_named(zone_name), now=now),
    }
    if meeting is not None:
        values.update(when_values(prompts, meeting.starts_at, zone_name))
    return View(prompts.render("meetings/staff/ask_start", **values), _cancel_markup(prompts))


def bad_start(prompts: Prompts, reason: str, zone_name: str, *, now: datetime) -> View:
    """A typed start that cannot be used (``bad_date``, ``gap`` or ``past``), and an example."""
    text = prompts.render(
        "meetings/staff/bad_start",
        reason=reason,
        example=example_start(prompts, zone_named(zone_name), now=now),
        **zone_values(prompts, zone_name),
    )
    return View(text)


def bad_text(prompts: Prompts, limit: int) -> View:
    """A typed title or place that is empty or longer than ``limit``."""
    return View(prompts.render("meetings/staff/bad_text", limit=limit))


def use_buttons(prompts: Prompts) -> View:
    """Text typed where the draft waits for a button."""
    return View(prompts.render("meetings/staff/use_buttons"))


def ask_length(prompts: Prompts, protocol: StudyProtocol) -> View:
    """Step 4: how long, one button per length the protocol offers."""
    rows = [
        [_button(length_words(prompts, minutes), staff_data("len", minutes))]
        for minutes in protocol.meetings.length_choices_minutes
    ]
    rows.append([_button(staff_label(prompts, "cancel"), staff_data("stop"))])
    return View(prompts.render("meetings/staff/ask_length"), InlineKeyboardMarkup(rows))


def summary(
    prompts: Prompts,
    protocol: StudyProtocol,
    *,
    title: str,
    starts_at: datetime,
    zone_name: str,
    length_minutes: int,
    place: str,
    groups: Sequence[str],
    count: int,
) -> View:
    """The finished draft to check, with buttons to create it or not."""
    text = prompts.render(
        "meetings/staff/summary",
        title=title,
        length=length_words(prompts, length_minutes),
        place=place,
        groups=group_words(prompts, protocol, groups),
        count=count,
        offsets=reminder_offsets_words(prompts, protocol),
        **when_values(prompts, starts_at, zone_name),
    )
    markup = _staff_buttons(prompts, ("create", staff_data("ok")), ("discard", staff_data("stop")))
    return View(text, markup)


def created(prompts: Prompts, protocol: StudyProtocol, meeting: Meeting, *, count: int) -> View:
    """The meeting is made: when, and how many partners will be reminded."""
    text = prompts.render(
        "meetings/staff/created",
        title=meeting.title,
        count=count,
        offsets=reminder_offsets_words(prompts, protocol),
        **when_values(prompts, meeting.starts_at, meeting.timezone),
    )
    return View(text)


def discarded(prompts: Prompts) -> View:
    """A draft was dropped: nothing was saved."""
    return View(prompts.render("meetings/staff/discarded"))


def problem(prompts: Prompts, reason: str) -> View:
    """The meeting a step was about cannot be changed any more (``reason``), so nothing was."""
    return View(prompts.render("meetings/staff/problem", reason=reason))


# -- connectors: a meeting coming up -----------------------------------------------------------


def manage(
    prompts: Prompts, protocol: StudyProtocol, meeting: Meeting, counts: dict[str, int]
) -> View:
    """One meeting coming up, its answers so far, and buttons to change its time or cancel it."""
    values = {
        **details(prompts, meeting, zone_named(meeting.timezone)),
        **zone_values(prompts, meeting.timezone),  # the zone's name, not its words, as elsewhere
        "groups": group_words(prompts, protocol, meeting.groups),
        **counts,
    }
    text = prompts.render("meetings/staff/manage", **values)
    markup = _staff_buttons(
        prompts,
        ("change_time", staff_data("t", meeting.id)),
        ("cancel_meeting", staff_data("x", meeting.id)),
    )
    return View(text, markup)


def confirm_change(
    prompts: Prompts, meeting: Meeting, *, starts_at: datetime, zone_name: str, told: int
) -> View:
    """Move ``meeting`` to ``starts_at``? And how many partners will be told."""
    text = prompts.render(
        "meetings/staff/confirm_change",
        title=meeting.title,
        told=told,
        **when_values(prompts, starts_at, zone_name),
    )
    markup = _staff_buttons(
        prompts, ("yes_change", staff_data("ty")), ("keep", staff_data("stop"))
    )
    return View(text, markup)


def meeting_changed(prompts: Prompts, meeting: Meeting, *, notified: int) -> View:
    """The meeting's time is changed: its new time, and how many partners will be told."""
    text = prompts.render(
        "meetings/staff/changed",
        title=meeting.title,
        notified=notified,
        **when_values(prompts, meeting.starts_at, meeting.timezone),
    )
    return View(text)


def confirm_cancel(prompts: Prompts, meeting: Meeting, *, told: int) -> View:
    """Cancel ``meeting``? And how many partners will get a note."""
    text = prompts.render(
        "meetings/staff/confirm_cancel",
        title=meeting.title,
        told=told,
        **when_values(prompts, meeting.starts_at, meeting.timezone),
    )
    markup = _staff_buttons(
        prompts, ("yes_cancel", staff_data("xy", meeting.id)), ("keep", staff_data("stop"))
    )
    return View(text, markup)


def meeting_cancelled(prompts: Prompts, meeting: Meeting, *, notified: int) -> View:
    """The meeting is cancelled, and how many partners will get a note."""
    text = prompts.render("meetings/staff/cancelled", title=meeting.title, notified=notified)
    return View(text)


# -- connectors: who came ----------------------------------------------------------------------


def sheet_keyboard(
    prompts: Prompts, meeting: Meeting, rows: Sequence[AttendanceRow]
) -> InlineKeyboardMarkup:
    """A button per partner (ticked when they came, with what they had said) and Done."""
    buttons = []
    for row in rows[:SHEET_LIMIT]:
        name = _short(row.name or "?", 40)
        if row.answer is not None:
            said = prompts.label(f"meetings.staff.said.{row.answer}")
            label = staff_label(prompts, "person_button_answer", name=name, answer=said)
        else:
            label = staff_label(prompts, "person_button", name=name)
        mark = CHOSEN_MARK if row.attended else ""
        buttons.append([_button(mark + label, staff_data("at", meeting.id, row.person_id))])
    buttons.append([_button(staff_label(prompts, "done"), staff_data("done"))])
    return InlineKeyboardMarkup(buttons)


def attendance(prompts: Prompts, meeting: Meeting, rows: Sequence[AttendanceRow]) -> View:
    """A recent meeting's attendance sheet: tap a partner to tick or untick them."""
    text = prompts.render(
        "meetings/staff/attendance",
        title=meeting.title,
        day=day_words(prompts, meeting.starts_at, zone_named(meeting.timezone)),
        length=length_words(prompts, meeting.length_minutes),
        people=bool(rows),
    )
    return View(text, sheet_keyboard(prompts, meeting, rows))
