"""A check-in as the partner sees it: the intro, each question with its buttons, the end.

The buttons carry ``ci:<check-in id>:<question>:<value>`` (see :func:`callback_data`);
:mod:`bot.partners.checkins` parses them back and queues these views.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.calendar.words import day_words, time_words
from bot.protocol import CheckinDef, Question, StudyProtocol
from bot.transport.view import View, render_view
from prompts import CALLBACK_DATA_LIMIT, Prompts
from storage.models import Checkin

CALLBACK_PREFIX = "ci"
SKIP = "-"  # callback value of "Skip"; option keys can never be "-"
CONFIDENCE_QUESTION = "confidence"  # the end message notices a change in this one
CHOSEN_MARK = "\u2713 "
SCALE_ROW = 6  # a longer scale wraps, so buttons stay readable on a small phone
NUDGE = "checkins/nudge"


def callback_data(checkin: Checkin, definition: CheckinDef, question: Question, value: str) -> str:
    """``ci:<checkin id>:<question>:<value>``; positions ``#n`` are used if keys are too long."""
    data = f"{CALLBACK_PREFIX}:{checkin.id}:{question.key}:{value}"
    if len(data.encode()) <= CALLBACK_DATA_LIMIT:
        return data
    position = definition.questions.index(question.key)
    if value != SKIP and question.kind == "choice":
        value = f"#{[o.key for o in question.options].index(value)}"
    return f"{CALLBACK_PREFIX}:{checkin.id}:#{position}:{value}"


def keyboard(
    prompts: Prompts,
    checkin: Checkin,
    definition: CheckinDef,
    question: Question,
    chosen: str | None = None,
) -> InlineKeyboardMarkup | None:
    """The buttons of a question, with ``chosen`` (a callback value) marked with a tick."""

    def button(text: str, value: str) -> InlineKeyboardButton:
        mark = CHOSEN_MARK if value == chosen else ""
        return InlineKeyboardButton(
            mark + text, callback_data=callback_data(checkin, definition, question, value)
        )

    rows: list[list[InlineKeyboardButton]] = []
    if question.kind == "scale":
        assert question.min is not None and question.max is not None
        numbers = [button(str(n), str(n)) for n in range(question.min, question.max + 1)]
        rows += [numbers[i : i + SCALE_ROW] for i in range(0, len(numbers), SCALE_ROW)]
    elif question.kind == "choice":
        rows += [[button(prompts.label(o.label), o.key)] for o in question.options]
    if question.optional or question.kind == "text":
        rows.append([button(prompts.label("checkins.skip"), SKIP)])
    return InlineKeyboardMarkup(rows) if rows else None


def intro(prompts: Prompts, protocol: StudyProtocol, definition: CheckinDef, *, name: str) -> View:
    """The check-in's own opening words (how many questions, how long it stays open)."""
    fixed = [k for k in definition.questions if protocol.question(k).ask_if is None]
    return render_view(
        prompts, definition.wording, name=name, count=len(fixed), hours=definition.open_hours
    )


def nudge(prompts: Prompts, *, name: str, closes_at: datetime, zone: ZoneInfo) -> View:
    """The one gentle reminder of a check-in nobody has answered (goes above its question)."""
    closes = closes_at.astimezone(zone)
    return render_view(
        prompts,
        NUDGE,
        name=name,
        day=day_words(prompts, closes, zone),
        time=time_words(prompts, closes.time()),
    )


def question(
    prompts: Prompts,
    checkin: Checkin,
    definition: CheckinDef,
    asked: Question,
    *,
    name: str,
    above: View | None = None,
    again: bool = False,
) -> View:
    """One question with its buttons: ``above`` (the intro or the nudge) first if given.

    ``again``: the question is asked a second time (``/checkin`` while it waits).
    """
    text = prompts.render(
        "checkins/question",
        intro=Markup(above.text) if above else None,  # noqa: S704 - our own rendered template
        question=Markup(prompts.render(asked.wording, name=name)),  # noqa: S704 - ditto
        kind=asked.kind,
        optional=asked.optional,
        low=asked.min,
        high=asked.max,
        low_label=prompts.label(asked.low_label) if asked.low_label else "",
        high_label=prompts.label(asked.high_label) if asked.high_label else "",
        again=again,
    )
    above_templates = above.templates if above is not None else ()
    return View(
        text,
        keyboard(prompts, checkin, definition, asked),
        ("checkins/question", *above_templates, asked.wording),
    )


def end(
    prompts: Prompts,
    protocol: StudyProtocol,
    *,
    name: str,
    reflections: int,
    confidence_first: int | None = None,
    confidence_latest: int | None = None,
) -> View:
    """Thanks, and what they have given so far (a change in confidence, when there is one)."""
    confidence = next((q for q in protocol.questions if q.key == CONFIDENCE_QUESTION), None)
    return render_view(
        prompts,
        "checkins/end",
        name=name,
        reflections=reflections,
        confidence_first=confidence_first,
        confidence_latest=confidence_latest,
        confidence_max=confidence.max if confidence is not None else None,
    )


def not_now(prompts: Prompts) -> View:
    """``/checkin`` when none can be started (not a partner, not set up)."""
    return render_view(prompts, "checkins/not_now")


def closed(prompts: Prompts) -> View:
    """An answer to a check-in that has closed."""
    return render_view(prompts, "checkins/closed")


def use_buttons(prompts: Prompts) -> View:
    """Typed text while a button question waits."""
    return render_view(prompts, "checkins/use_buttons")
