"""``companion preview``: every message of a study protocol on one page, as a partner sees it.

The page is for a connector and partners going through the wording together. It follows the
partner's journey in order (the invite, consent, setting up, each check-in of the protocol in
order, meetings, safeguarding, the partner's own tools), shows each message as a chat bubble
with its buttons, names the template file(s) it comes from (relative to the locale folder, so
you know which file to edit), and gives its Flesch reading ease (:mod:`bot.tools.readability`, the
same scoring as ``bench/readability.py``). Messages for the study team are shown in their own
section and not scored. Every template of the locale that the journey does not reach is shown
at the end, so nothing is missed.

The messages are built the way the bot builds them: the same templates, the same keyboard
functions (:func:`bot.partners.checkins.keyboard`, :func:`bot.partners.onboarding.step_keyboard`,
:func:`bot.partners.pausing.pause_keyboard`, ...), and values taken from the protocol itself (its
groups, slots, questions, crisis resources). Values no protocol holds (the partner's name, an
example answer) come from ``<locale>/preview/examples.yaml``; a template the journey does not
reach is filled with its sample values from ``tests/prompt_samples/`` when they are there, and
otherwise shown as written.

Problems are collected, not raised one at a time: a missing template, a template that does not
render with the values the bot gives it, a missing label, markup Telegram would refuse, a
message over Telegram's length limit. :class:`PreviewError` lists them all.

The page itself is ``<locale>/preview/page.web.j2`` (``*.web.j2``: a web page, autoescaped
HTML, not a Telegram message), so its words can be translated like every other.
"""

from __future__ import annotations

import base64
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
)
from markupsafe import Markup, escape
from telegram import InlineKeyboardMarkup

from bot.calendar.quiet import QuietHours
from bot.calendar.words import (
    date_words,
    day_words,
    quiet_words,
    slot_words,
    time_words,
    timezone_words,
)
from bot.menu import commands_for
from bot.partners import checkins, onboarding
from bot.partners.journey import (
    Journey,
    Quote,
    ScaleLine,
    chart_lines_for_caption,
    chart_text,
    render_chart,
    shorten,
)
from bot.partners.pausing import length_words, pause_choices, pause_keyboard
from bot.partners.preferences import (
    settings_cancel_keyboard,
    settings_choice_keyboard,
    settings_menu_keyboard,
)
from bot.partners.safeguarding import _when as alert_time
from bot.partners.safeguarding import ack_keyboard, phrase_rule, threshold_rule
from bot.privacy.withdrawal import confirm_keyboard
from bot.protocol import CheckinDef, Question, StudyProtocol, load_protocol
from bot.sandbox.html import (
    EntityParseError,
    detect_entities,
    parse_html,
    strip_text,
    utf16_len,
)
from bot.tools.readability import HARD_TO_READ_BELOW, Reading, is_staff_template, score_html
from prompts import (
    CALLBACK_DATA_LIMIT,
    DEFAULT_LOCALE,
    PROMPTS_DIR,
    TELEGRAM_TEXT_LIMIT,
    PromptNotFoundError,
    Prompts,
)
from storage.models import Checkin, Meeting, Role

PAGE_TEMPLATE = "preview/page.web.j2"
EXAMPLES_FILE = "preview/examples.yaml"
NUDGE = "checkins/nudge"  # the reminder of a check-in nobody has answered yet
PREVIEW_FOLDER = "preview"
#: Sample values for every template, kept for the tests; used for templates the journey does
#: not reach, when the folder is there (a source checkout).
SAMPLES_DIR = PROMPTS_DIR.parent / "tests" / "prompt_samples"
CAPTION_LIMIT = 1024  # Telegram's limit for a photo's or a document's caption
#: The moment the example dates are counted from (a Thursday evening), so the page is the same
#: every time it is made.
EXAMPLE_MOMENT = datetime(2026, 3, 12, 18, 0, tzinfo=UTC)
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


# -- what the page shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Something that stops a message from being shown (or sent) as it is."""

    template: str  # the file, relative to the locale folder
    kind: str  # missing, syntax, undefined, label, labels, markup, too_long, callback, no_folder,
    # or error
    detail: str = ""
    line: int | None = None
    used_by: str | None = None  # where the protocol names the template, e.g. questions.proud


class PreviewError(Exception):
    """The preview cannot be made; ``problems`` says what to fix, file by file."""

    def __init__(self, problems: list[Problem], locale_dir: Path | None = None) -> None:
        super().__init__("; ".join(f"{p.template}: {p.kind} {p.detail}" for p in problems))
        self.problems = problems
        self.locale_dir = locale_dir


@dataclass(frozen=True)
class Step:
    """One bubble of the chat: a message from the bot, or what the partner does."""

    who: str  # "bot" or "partner"
    templates: tuple[str, ...] = ()  # the file(s) the message is made of, main one first
    html: Markup = field(default_factory=Markup)  # the message as the page shows it (already safe)
    buttons: tuple[tuple[str, ...], ...] = ()
    reading: Reading | None = None
    staff: bool = False
    kind: str = "text"  # text, photo, document, file (what is inside a document), source
    when: str | None = None  # a condition, worded by the page template
    ask_if: dict[str, Any] | None = None  # a question asked only after some answers
    facts: dict[str, Any] = field(default_factory=dict)  # values the condition's words use
    image: str | None = None  # a data: URL (the /journey chart)
    alt: str = ""  # the picture's text alternative
    filename: str | None = None
    plain: str = ""  # the text as the person sees it (no markup)
    text: str | None = None  # partner: what they type or tap, exactly
    said: str | None = None  # partner: what they do, worded by the page template

    @property
    def scored(self) -> bool:
        """Whether this bubble is a partner-facing message with a reading-ease score."""
        return self.who == "bot" and self.reading is not None


@dataclass
class Stage:
    """A stage of the journey: its steps in order, and messages sent only sometimes."""

    key: str
    steps: list[Step] = field(default_factory=list)
    sometimes: list[Step] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def bubbles(self) -> list[Step]:
        """Every step of the stage, in order, the occasional ones last."""
        return self.steps + self.sometimes


@dataclass
class Preview:
    """Everything the page shows."""

    study: str
    study_path: Path
    locale_dir: Path
    lang: str
    stages: list[Stage]
    staff: list[Step]
    other: list[Step]
    command_line: list[Step]

    @property
    def scored(self) -> list[Step]:
        """Every partner-facing message that has a score."""
        everything = [s for stage in self.stages for s in stage.bubbles] + self.other
        return [s for s in everything if s.scored]

    @property
    def average(self) -> float | None:
        """The average reading ease of the partner-facing messages."""
        scores = [s.reading.ease for s in self.scored if s.reading is not None]
        return sum(scores) / len(scores) if scores else None

    @property
    def hard(self) -> list[Step]:
        """The partner-facing messages that are hard to read."""
        return [s for s in self.scored if s.reading is not None and s.reading.hard]

    @property
    def lowest(self) -> float | None:
        """The lowest reading ease of the partner-facing messages."""
        scores = [s.reading.ease for s in self.scored if s.reading is not None]
        return min(scores) if scores else None

    @property
    def templates(self) -> set[str]:
        """Every template file the page shows."""
        everything = [s for stage in self.stages for s in stage.bubbles]
        everything += self.staff + self.other + self.command_line
        return {t for s in everything for t in s.templates}


# -- Telegram HTML to page HTML --------------------------------------------------------------

_OPEN_CLOSE = {
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"),
    "spoiler": ('<span class="spoiler">', "</span>"),
    "code": ("<code>", "</code>"),
    "pre": ("<pre>", "</pre>"),
    "blockquote": ("<blockquote>", "</blockquote>"),
    "expandable_blockquote": ("<blockquote>", "</blockquote>"),
    "bot_command": ('<span class="command">', "</span>"),
}


def _nests(a: dict[str, Any], b: dict[str, Any]) -> bool:
    a0, a1 = a["offset"], a["offset"] + a["length"]
    b0, b1 = b["offset"], b["offset"] + b["length"]
    return a1 <= b0 or b1 <= a0 or (b0 <= a0 and a1 <= b1) or (a0 <= b0 and b1 <= a1)


def _tags(entity: dict[str, Any]) -> tuple[str, str]:
    kind = entity["type"]
    url = entity.get("url")
    if kind in ("text_link", "url") and isinstance(url, str) and url.startswith("http"):
        return f'<a href="{escape(url)}" rel="noopener noreferrer">', "</a>"
    return _OPEN_CLOSE.get(kind, ("<span>", "</span>"))


def telegram_to_page_html(html: str) -> Markup:
    """Telegram HTML as the page shows it: Telegram's own tags kept, everything else escaped.

    The message is parsed as Telegram parses it (raises ``EntityParseError`` on markup
    Telegram would refuse), then written back from its plain text and entities, so no tag or
    attribute Telegram would not show can reach the page. Commands and links that Telegram
    finds on its own are marked too.
    """
    text, entities = strip_text(*parse_html(html))
    for found in detect_entities(text):
        if found["type"] in ("bot_command", "url") and all(_nests(found, e) for e in entities):
            if found["type"] == "url":
                start = found["offset"]
                found["url"] = _units(text, start, start + found["length"])
            entities.append(found)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    total = utf16_len(text)
    bounds = sorted({0, total} | {e["offset"] for e in entities} | {_end(e) for e in entities})
    out: list[str] = []
    stack: list[dict[str, Any]] = []
    upcoming = iter(entities)
    pending = next(upcoming, None)
    position = 0
    for bound in bounds:
        if bound > position:
            out.append(str(escape(_units(text, position, bound))))
            position = bound
        while stack and _end(stack[-1]) <= bound:
            out.append(_tags(stack.pop())[1])
        while pending is not None and pending["offset"] == bound:
            out.append(_tags(pending)[0])
            stack.append(pending)
            pending = next(upcoming, None)
    while stack:
        out.append(_tags(stack.pop())[1])
    return Markup("".join(out))  # noqa: S704 - every piece of text above is escaped


def _end(entity: dict[str, Any]) -> int:
    return int(entity["offset"]) + int(entity["length"])


def _units(text: str, start: int, end: int) -> str:
    """``text`` from UTF-16 offset ``start`` to ``end`` (how Telegram counts)."""
    return text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le")


# -- building the journey --------------------------------------------------------------------


def default_locale_dir(protocol: StudyProtocol) -> Path:
    """The shipped locale folder for the protocol's locale."""
    return PROMPTS_DIR / protocol.study.locale


def load_samples(folder: Path = SAMPLES_DIR) -> dict[str, dict[str, Any]]:
    """Sample values per template name from ``folder`` (empty when the folder is not there)."""
    samples: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return samples
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, values in data.items():
            if isinstance(values, dict) or values is None:
                samples[str(name)] = values or {}
    return samples


def _frame_folders(locale_dir: Path) -> list[Path]:
    """Where the page's own templates are looked for: the locale folder, then the shipped."""
    folders = [locale_dir, PROMPTS_DIR / locale_dir.name, PROMPTS_DIR / DEFAULT_LOCALE]
    seen: list[Path] = []
    for folder in folders:
        if folder.is_dir() and folder.resolve() not in [s.resolve() for s in seen]:
            seen.append(folder)
    return seen


def load_examples(locale_dir: Path) -> dict[str, Any]:
    """The example values of ``preview/examples.yaml`` (the locale's own, else the shipped)."""
    for folder in _frame_folders(locale_dir):
        path = folder / EXAMPLES_FILE
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if isinstance(data, dict):
                return data
    return {}


class _Builder:
    """Renders messages the way the bot does, collecting problems instead of stopping."""

    def __init__(
        self,
        protocol: StudyProtocol,
        locale_dir: Path,
        samples: dict[str, dict[str, Any]],
        examples: dict[str, Any],
    ) -> None:
        self.protocol = protocol
        self.locale_dir = locale_dir
        self.prompts = Prompts(locale_dir.name, locale_dir.parent)
        self.samples = samples
        self.examples = examples
        self.problems: list[Problem] = []
        self.name = str(examples.get("partner_name", "Sam"))
        self.group = protocol.groups[0]
        self.zone = self.group.zone

    # -- rendering, with problems collected ------------------------------------------------

    def problem(self, template: str, kind: str, detail: str = "", **more: Any) -> None:
        """Record a problem (once)."""
        found = Problem(template, kind, detail, **more)
        if found not in self.problems:
            self.problems.append(found)

    @contextmanager
    def attempt(self, template: str, used_by: str | None = None) -> Iterator[None]:
        """Run a render; a failure becomes a problem with ``template`` (and where it is used)."""
        try:
            yield
        except TemplateSyntaxError as exc:
            where = exc.filename or template
            with suppress(ValueError):
                where = str(Path(where).resolve().relative_to(self.locale_dir.resolve()))
            self.problem(where, "syntax", exc.message or str(exc), line=exc.lineno)
            raise _Skip from exc
        except UndefinedError as exc:
            self.problem(template, "undefined", exc.message or str(exc), used_by=used_by)
            raise _Skip from exc
        except PromptNotFoundError as exc:
            missing = not (self.locale_dir / template).is_file()
            if missing:
                self.problem(template, "missing", str(self.locale_dir), used_by=used_by)
            else:
                self.problem(template, "label", str(exc), used_by=used_by)
            raise _Skip from exc
        except TemplateError as exc:
            self.problem(template, "error", str(exc), used_by=used_by)
            raise _Skip from exc
        except (KeyError, IndexError, TypeError, ValueError) as exc:  # a label's {placeholder}
            self.problem(template, "error", f"{type(exc).__name__}: {exc}", used_by=used_by)
            raise _Skip from exc

    def render(self, template: str, used_by: str | None = None, /, **values: Any) -> str:
        """Render the message template ``template`` (raises _Skip after recording a problem)."""
        with self.attempt(f"{template}.html.j2", used_by):
            return self.prompts.render(template, **values)
        raise AssertionError("unreachable")  # pragma: no cover

    def label(self, key: str, template: str, **values: Any) -> str:
        """A label, for the message from ``template``."""
        with self.attempt(template):
            return self.prompts.label(key, **values)
        raise AssertionError("unreachable")  # pragma: no cover

    def markup_ok(self, template: str, html: str) -> bool:
        """Whether Telegram would take ``html``; if not, a problem for ``template``."""
        try:
            parse_html(html)
        except EntityParseError as exc:
            self.problem(template, "markup", str(exc))
            return False
        return True

    def staff_template(self, template: str) -> bool:
        """Whether ``template`` is marked for the study team."""
        path = self.locale_dir / template
        return path.is_file() and is_staff_template(path)

    def bot(
        self,
        templates: tuple[str, ...],
        html: str,
        markup: InlineKeyboardMarkup | None = None,
        *,
        kind: str = "text",
        **more: Any,
    ) -> Step:
        """A message from the bot, checked as Telegram would check it, scored if for partners."""
        main = templates[0]
        limit = CAPTION_LIMIT if kind in ("photo", "document") else TELEGRAM_TEXT_LIMIT
        readable = True
        try:
            text = strip_text(*parse_html(html))[0]
            page = telegram_to_page_html(html)
        except EntityParseError as exc:
            self.problem(main, "markup", str(exc))
            text, page, readable = html, escape(html), False
        if utf16_len(text) > limit:
            self.problem(main, "too_long", str(utf16_len(text)), line=limit)
        buttons: list[tuple[str, ...]] = []
        for row in markup.inline_keyboard if markup is not None else ():
            buttons.append(tuple(b.text for b in row))
            for button in row:
                data = button.callback_data
                if isinstance(data, str) and len(data.encode()) > CALLBACK_DATA_LIMIT:
                    self.problem(main, "callback", data)
        staff = self.staff_template(main)
        reading = score_html(html) if readable and not staff and text.strip() else None
        return Step(
            "bot",
            templates=templates,
            html=page,
            buttons=tuple(buttons),
            reading=reading,
            staff=staff,
            kind=kind,
            plain=text,
            **more,
        )

    def message(
        self,
        name: str,
        markup: Callable[[], InlineKeyboardMarkup | None] | None = None,
        *,
        when: str | None = None,
        kind: str = "text",
        used_by: str | None = None,
        values: dict[str, Any] | None = None,
        **more: Any,
    ) -> Step | None:
        """Render template ``name`` with ``values`` and its buttons; None if it failed."""
        try:
            html = self.render(name, used_by, **(values or {}))
            keyboard = None
            if markup is not None:
                with self.attempt(f"{name}.html.j2", used_by):
                    keyboard = markup()
        except _Skip:
            return None
        return self.bot((f"{name}.html.j2",), html, keyboard, kind=kind, when=when, **more)

    def example(self, key: str, default: str) -> str:
        """An example value from ``preview/examples.yaml``."""
        value = self.examples.get(key, default)
        return str(value)

    def answer_texts(self) -> list[str]:
        """Example free-text answers (at least one)."""
        found = self.examples.get("answers")
        texts = [str(a) for a in found] if isinstance(found, list) else []
        return texts or ["..."]


class _Skip(Exception):
    """A message could not be rendered; its problem is recorded."""


def _add(target: list[Step], step: Step | None) -> None:
    if step is not None:
        target.append(step)


def _partner(text: str | None = None, said: str | None = None) -> Step:
    return Step("partner", text=text, said=said)


def _first_button(step: Step | None, row: int = 0) -> str | None:
    if step is None or len(step.buttons) <= row or not step.buttons[row]:
        return None
    return step.buttons[row][0]


# -- the stages ------------------------------------------------------------------------------


def _joining(b: _Builder) -> Stage:
    protocol = b.protocol
    stage = Stage("joining")
    stage.steps.append(_partner(said="opens_invite"))
    values = {
        "name": b.name,
        "study": protocol.study.name,
        "team": protocol.study.team,
        "connector": b.group.connector,
    }
    _add(stage.steps, b.message("onboarding/welcome", values=values))
    _add(
        stage.steps,
        b.message(
            "onboarding/safety",
            lambda: onboarding.step_keyboard(b.prompts, protocol, onboarding.WELCOME),
            values={
                "monitored_hours": protocol.study.monitored_hours,
                "crisis_resources": protocol.crisis_resources,
            },
        ),
    )
    for name, when in (
        ("invite/unknown", "invite_unknown"),
        ("invite/expired", "invite_expired"),
        ("invite/used", "invite_used"),
        ("invite/too_many", "invite_too_many"),
        ("start/outsider", "no_invite"),
    ):
        _add(stage.sometimes, b.message(name, when=when))
    _add(
        stage.sometimes,
        b.message(
            "invite/already_enrolled",
            when="already_enrolled",
            values={"name": b.name, "staff": False},
        ),
    )
    return stage


def _consent(b: _Builder, start_button: str | None) -> Stage:
    protocol = b.protocol
    stage = Stage("consent", facts={"withdrawal": protocol.withdrawal.data})
    if start_button:
        stage.steps.append(_partner(text=start_button))
    for item in onboarding.consent_items(protocol):
        step = onboarding.consent_step(item)
        shown = b.message(
            item.wording,
            partial(onboarding.step_keyboard, b.prompts, protocol, step),
            used_by=f"consent.{item.key}",
            values={
                "study": protocol.study.name,
                "team": protocol.study.team,
                "withdrawal": protocol.withdrawal.data,
            },
            when=None if item.required else "optional_consent",
        )
        _add(stage.steps, shown)
        answer = _first_button(shown)
        if answer:
            stage.steps.append(_partner(text=answer))
    _add(stage.sometimes, b.message("onboarding/declined", when="declined"))
    _add(stage.sometimes, b.message("onboarding/declined_reminder", when="declined_again"))
    return stage


def _setting_up(b: _Builder) -> Stage:
    protocol, prompts = b.protocol, b.prompts
    stage = Stage("setting_up")
    ask_name = b.message(
        "onboarding/ask_name",
        lambda: onboarding.step_keyboard(prompts, protocol, onboarding.NAME, first_name=b.name),
        values={"has_button": True},
    )
    _add(stage.steps, ask_name)
    stage.steps.append(_partner(text=_first_button(ask_name), said="types_name"))
    group = b.message(
        "onboarding/ask_group",
        lambda: onboarding.step_keyboard(prompts, protocol, onboarding.GROUP),
        values={"name": b.name},
        when="invite_without_group",
    )
    _add(stage.steps, group)
    if group is not None:
        stage.steps.append(_partner(text=_first_button(group)))
    slot = b.message(
        "onboarding/ask_slot",
        lambda: onboarding.step_keyboard(prompts, protocol, onboarding.SLOT),
        values={"name": b.name},
    )
    _add(stage.steps, slot)
    if slot is not None:
        stage.steps.append(_partner(text=_first_button(slot)))
    first_slot = protocol.checkin_slots[0]
    try:
        slot_label = b.label(first_slot.label, "onboarding/done.html.j2")
    except _Skip:
        slot_label = first_slot.key
    _add(
        stage.steps,
        b.message(
            "onboarding/done",
            values={
                "name": b.name,
                "slot": slot_label,
                "connector": b.group.connector,
                "team": protocol.study.team,
                "quiet_start": protocol.quiet_hours.start,
                "quiet_end": protocol.quiet_hours.end,
            },
        ),
    )
    _add(
        stage.sometimes,
        b.message(
            "onboarding/name_invalid", when="name_unusable", values={"most": onboarding.NAME_MAX}
        ),
    )
    return stage


def _answer_for(
    b: _Builder, question: Question, definition: CheckinDef, shown: Step, texts: Iterator[str]
) -> Step:
    """What the partner answers: a value that brings up any question depending on this one."""
    if question.kind == "text":
        return _partner(text=next(texts))
    if question.kind == "choice":
        return _partner(text=_first_button(shown))
    assert question.min is not None and question.max is not None  # a scale has both
    value = max(question.min, question.max - 1)
    for key in definition.questions:
        condition = b.protocol.question(key).ask_if
        if condition is not None and condition.question == question.key:
            bound = condition.at_most if condition.at_most is not None else condition.at_least
            value = bound if bound is not None else value
    return _partner(text=str(value))


def _question_step(
    b: _Builder,
    definition: CheckinDef,
    question: Question,
    *,
    intro: str | None,
    intro_from: str | None = None,
    again: bool = False,
    when: str | None = None,
) -> Step | None:
    """One question as the bot asks it: ``render_question`` and ``keyboard`` of the bot.

    ``intro`` (rendered) goes above it; it comes from the template ``intro_from`` (default:
    the check-in's own wording).
    """
    intro_file = f"{intro_from or definition.wording}.html.j2"
    intro_template = (intro_file,) if intro else ()
    used_by = f"questions.{question.key}"
    try:
        wording = b.render(question.wording, used_by, name=b.name)  # its problems, named so
        if not b.markup_ok(f"{question.wording}.html.j2", wording):
            return None
        if intro is not None and not b.markup_ok(intro_file, intro):
            return None
        with b.attempt("checkins/question.html.j2", used_by):
            html = checkins.render_question(
                b.prompts, question, name=b.name, intro=intro, again=again
            )
        with b.attempt(f"{question.wording}.html.j2", used_by):
            occurrence = Checkin(id=1, checkin_key=definition.key)
            markup = checkins.keyboard(b.prompts, occurrence, definition, question)
    except _Skip:
        return None
    ask_if = None
    if question.ask_if is not None:
        earlier = b.protocol.question(question.ask_if.question)
        try:
            earlier_text = strip_text(*parse_html(b.render(earlier.wording, name=b.name)))[0]
        except (_Skip, EntityParseError):
            earlier_text = earlier.key
        ask_if = {
            "question": earlier.key,
            "question_text": earlier_text,
            "at_most": question.ask_if.at_most,
            "at_least": question.ask_if.at_least,
        }
    return b.bot(
        ("checkins/question.html.j2", *intro_template, f"{question.wording}.html.j2"),
        html,
        markup,
        ask_if=ask_if,
        when=when,
    )


def _checkin(b: _Builder, definition: CheckinDef, texts: Iterator[str]) -> Stage:
    protocol = b.protocol
    stage = Stage(
        f"checkin:{definition.key}",
        facts={
            "key": definition.key,
            "schedule": definition.schedule,
            "open_hours": definition.open_hours,
            "reminder_after_hours": definition.reminder_after_hours,
            "questions": len(definition.questions),
        },
    )
    fixed = [k for k in definition.questions if protocol.question(k).ask_if is None]
    try:
        intro: str | None = b.render(
            definition.wording,
            f"checkins.{definition.key}",
            name=b.name,
            count=len(fixed),
            hours=definition.open_hours,
        )
    except _Skip:
        intro = None
    for position, key in enumerate(definition.questions):
        question = protocol.question(key)
        shown = _question_step(b, definition, question, intro=intro if position == 0 else None)
        if shown is None:
            continue
        stage.steps.append(shown)
        stage.steps.append(_answer_for(b, question, definition, shown, texts))
    _add(stage.sometimes, _nudge(b, definition))
    confidence = next(
        (q for q in protocol.questions if q.key == checkins.CONFIDENCE_QUESTION), None
    )
    _add(
        stage.steps,
        b.message(
            "checkins/end",
            values={
                "name": b.name,
                "reflections": 3,
                "confidence_first": 2 if confidence is not None else None,
                "confidence_latest": 4 if confidence is not None else None,
                "confidence_max": confidence.max if confidence is not None else None,
            },
        ),
    )
    return stage


def _nudge(b: _Builder, definition: CheckinDef) -> Step | None:
    """The one gentle reminder of a check-in nobody has answered: the nudge, then question 1.

    Shown when the check-in has a reminder and the wording folder has the nudge template.
    """
    hours = definition.reminder_after_hours
    if hours is None or not (b.locale_dir / f"{NUDGE}.html.j2").is_file():
        return None
    closes = (EXAMPLE_MOMENT + timedelta(hours=definition.open_hours)).astimezone(b.zone)
    try:
        with b.attempt(f"{NUDGE}.html.j2"):
            when = {"day": day_words(b.prompts, closes, b.zone)}
            when["time"] = time_words(b.prompts, closes.time())
        intro = b.render(NUDGE, None, name=b.name, **when)
    except _Skip:
        return None
    first = b.protocol.question(definition.questions[0])
    step = _question_step(b, definition, first, intro=intro, intro_from=NUDGE, again=True)
    return replace(step, when="nudge", facts={"hours": hours}) if step is not None else None


def _during_checkins(b: _Builder) -> Stage:
    stage = Stage("during_checkins")
    definition = b.protocol.checkin(checkins.manual_checkin_key(b.protocol))
    first = b.protocol.question(definition.questions[0])
    _add(
        stage.sometimes, _question_step(b, definition, first, intro=None, again=True, when="again")
    )
    _add(stage.sometimes, b.message("checkins/use_buttons", when="typed_not_tapped"))
    _add(stage.sometimes, b.message("checkins/closed", when="answered_too_late"))
    _add(stage.sometimes, b.message("checkins/not_now", when="cannot_start"))
    return stage


def _meetings(b: _Builder) -> Stage:
    """Reminders before a meeting (one per offset in the protocol), /meetings, changes."""
    protocol, prompts = b.protocol, b.prompts
    offsets = sorted(protocol.meetings.reminder_offsets_hours, reverse=True)
    stage = Stage("meetings", facts={"reminders": offsets})
    try:
        from bot.meetings import service as meetings
    except ImportError:  # a version without meetings: their templates go by sample values
        return stage
    choices = protocol.meetings.length_choices_minutes
    meeting = Meeting(
        id=1,
        title=b.example("meeting_title", "Team meeting"),
        starts_at=EXAMPLE_MOMENT + timedelta(days=7),
        length_minutes=90 if 90 in choices else choices[0],
        timezone=b.group.timezone,
        place=b.example("meeting_place", "Room 2"),
        groups=[],
        version=1,
    )
    try:
        with b.attempt("meetings/reminder.html.j2"):
            details = meetings.details(prompts, meeting, b.zone)
            said = meetings.answer_label(prompts, meetings.ANSWERS[0])
    except _Skip:
        return stage
    answer: str | None = None
    for hours in sorted(protocol.meetings.reminder_offsets_hours, reverse=True):
        chosen = answer
        try:
            with b.attempt("meetings/reminder.html.j2"):
                soon = meetings.offset_words(prompts, hours)
        except _Skip:
            continue
        shown = b.message(
            "meetings/reminder",
            partial(meetings.answer_keyboard, prompts, meeting, chosen),
            values={
                "name": b.name,
                "soon": soon,
                "answer": meetings.answer_label(prompts, chosen),
                **details,
            },
        )
        _add(stage.steps, shown)
        if answer is None and shown is not None:
            stage.steps.append(_partner(text=_first_button(shown)))
            answer = meetings.ANSWERS[0]
    stage.steps.append(_partner(text="/meetings"))
    chosen = meetings.ANSWERS[0]
    keyboard = partial(meetings.answer_keyboard, prompts, meeting, chosen)
    values = {"first": True, "count": 1, "answer": said, **details}
    _add(stage.steps, b.message("meetings/upcoming", keyboard, values=values))
    changed = {"name": b.name, "changed": ["start"], "answer": said, **details}
    _add(stage.sometimes, b.message("meetings/changed", keyboard, when="changed", values=changed))
    cancelled = {"name": b.name, **details}
    _add(stage.sometimes, b.message("meetings/cancelled", when="cancelled", values=cancelled))
    _add(stage.sometimes, b.message("meetings/none", when="no_meetings"))
    return stage


def _safeguarding(b: _Builder) -> Stage:
    protocol = b.protocol
    stage = Stage("safeguarding", facts={"phrases": len(protocol.safeguarding.phrases)})
    stage.steps.append(_partner(said="writes_worry"))
    _add(
        stage.steps,
        b.message(
            "safeguarding/crisis",
            values={
                "name": b.name,
                "resources": protocol.crisis_resources,
                "monitored_hours": protocol.study.monitored_hours,
            },
        ),
    )
    return stage


def _help(b: _Builder) -> Stage:
    stage = Stage("help")
    stage.steps.append(_partner(text="/help"))
    try:
        commands = commands_for(b.prompts, Role.PARTNER)
    except PromptNotFoundError as exc:
        b.problem("help/member.html.j2", "label", str(exc))
        return stage
    _add(
        stage.steps,
        b.message(
            "help/member",
            values={"commands": commands, "crisis_resources": b.protocol.crisis_resources},
        ),
    )
    return stage


def _example_journey(b: _Builder, texts: Iterator[str]) -> Journey:
    """A journey of three check-ins a fortnight apart, from the protocol's scale questions."""
    names = b.prompts.labels("tools.journey.lines")
    days = [EXAMPLE_MOMENT - timedelta(days=d) for d in (28, 14, 0)]
    shapes = ((2, 1, 0), (3, 3, 1), (1, 2, 1), (2, 2, 0))  # how far below the top each answer is
    lines = []
    for index, question in enumerate(q for q in b.protocol.questions if q.kind == "scale"):
        assert question.min is not None and question.max is not None  # a scale has both
        low, top = question.min, question.max
        values = [max(low, top - below) for below in shapes[index % len(shapes)]]
        lines.append(
            ScaleLine(
                question_key=question.key,
                label=names.get(question.key, question.key.replace("_", " ").capitalize()),
                low=question.min,
                high=question.max,
                points=tuple(zip(days, values, strict=True)),
            )
        )
    quotes = [
        Quote(question_key=key, heading=heading, text=shorten(next(texts)))
        for key, heading in b.prompts.labels("tools.journey.quotes").items()
    ]
    return Journey(lines=lines, checkins=3, shared=2, first_at=days[0], quotes=quotes)


def _chart(journey: Journey, b: _Builder) -> str | None:
    """The /journey chart as a data: URL (None when there is nothing to chart)."""
    if not journey.lines:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = render_chart(
            journey,
            Path(folder) / "journey.png",
            zone=b.zone,
            text=chart_text(b.prompts, journey),
        )
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _journey(b: _Builder, texts: Iterator[str], *, chart: bool) -> Stage:
    stage = Stage("journey")
    stage.steps.append(_partner(text="/journey"))
    try:
        with b.attempt("journey/caption.html.j2"):
            journey = _example_journey(b, texts)
            lines = chart_lines_for_caption(journey, b.prompts, b.zone)
            since = date_words(b.prompts, EXAMPLE_MOMENT - timedelta(days=28), b.zone)
    except _Skip:
        return stage
    if journey.lines:
        low, high = journey.scale_range
        caption = b.message(
            "journey/caption",
            kind="photo",
            values={"lines": lines, "low": low, "high": high},
            image=_chart(journey, b) if chart else None,
        )
        if caption is not None:  # the caption stands in for the picture
            caption = replace(caption, alt=caption.plain)
        _add(stage.steps, caption)
    _add(
        stage.steps,
        b.message(
            "journey/summary",
            values={
                "checkins": journey.checkins,
                "shared": journey.shared,
                "since": since,
                "quotes": [{"heading": q.heading, "text": q.text} for q in journey.quotes],
            },
        ),
    )
    _add(stage.sometimes, b.message("journey/empty", when="nothing_yet"))
    return stage


def _mydata(b: _Builder) -> Stage:
    stage = Stage("mydata")
    stage.steps.append(_partner(text="/mydata"))
    _add(stage.steps, b.message("mydata/caption", kind="document", filename="my_data.zip"))
    template = "mydata/readme.txt.j2"
    try:
        with b.attempt(template):
            tables = b.prompts.labels("tools.mydata.tables")
            readme = b.prompts.text(
                "mydata/readme",
                study=b.protocol.study.name,
                made=EXAMPLE_MOMENT.strftime("%Y-%m-%d %H:%M"),
                pseudonym=b.example("pseudonym", "P-7K2Q9XWD"),
                tables=[
                    {"file": f"{name}.csv", "about": about, "rows": 3}
                    for name, about in tables.items()
                ],
                voice=True,
            )
    except _Skip:
        return stage
    stage.steps.append(
        Step(
            "bot",
            templates=(template,),
            html=escape(readme),
            kind="file",
            filename="README.txt",
        )
    )
    return stage


def _settings(b: _Builder) -> Stage:  # noqa: PLR0915 - one long story
    protocol, prompts = b.protocol, b.prompts
    stage = Stage("settings")
    quiet = protocol.quiet_hours
    slot = protocol.checkin_slots[0]
    template = "settings/menu.html.j2"
    try:
        with b.attempt(template):
            window = QuietHours(*(_clock(t) for t in (quiet.start, quiet.end)))
            quiet_now = quiet_words(prompts, window)
            slot_now = slot_words(prompts, slot)
            zone_now = timezone_words(prompts, b.group.timezone)
    except _Skip:
        return stage
    stage.steps.append(_partner(text="/settings"))
    menu = b.message(
        "settings/menu",
        lambda: settings_menu_keyboard(prompts),
        values={
            "name": b.name,
            "group": b.group.name,
            "timezone": zone_now,
            "checkin": slot_now,
            "quiet": quiet_now,
        },
    )
    _add(stage.steps, menu)

    def tap(row: int) -> None:
        label = _first_button(menu, row)
        if label:
            stage.steps.append(_partner(text=label))

    def choice(item: str) -> Callable[[], InlineKeyboardMarkup]:
        return lambda: settings_choice_keyboard(prompts, protocol, item)

    tap(0)
    _add(stage.steps, b.message("settings/ask_name", choice("name")))
    stage.steps.append(_partner(said="types_name"))
    _add(stage.steps, b.message("settings/name_changed", values={"name": b.name}))
    tap(1)
    other_group = protocol.groups[-1]
    shown = b.message("settings/choose_group", choice("group"), values={"current": b.group.name})
    _add(stage.steps, shown)
    stage.steps.append(_partner(text=other_group.name))
    try:
        with b.attempt("settings/group_changed.html.j2"):
            other_zone = timezone_words(prompts, other_group.timezone)
    except _Skip:
        other_zone = other_group.timezone
    _add(
        stage.steps,
        b.message(
            "settings/group_changed",
            values={
                "group": other_group.name,
                "connector": other_group.connector,
                "timezone": other_zone,
            },
        ),
    )
    tap(2)
    try:
        type_it = b.label("tools.settings.type_it", "settings/choose_timezone.html.j2")
    except _Skip:
        type_it = ""
    shown = b.message(
        "settings/choose_timezone",
        choice("tz"),
        values={"current": zone_now, "type_it": type_it},
    )
    _add(stage.steps, shown)
    stage.steps.append(_partner(text=type_it or None))
    _add(
        stage.steps, b.message("settings/ask_timezone", lambda: settings_cancel_keyboard(prompts))
    )
    typed = b.example("typed_timezone", "Europe/Madrid")
    stage.steps.append(_partner(text=typed.split("/")[-1]))
    try:
        with b.attempt("settings/timezone_changed.html.j2"):
            zone_words = timezone_words(prompts, typed)
            local = time_words(prompts, EXAMPLE_MOMENT.time())
    except _Skip:
        zone_words, local = typed, ""
    _add(
        stage.steps,
        b.message(
            "settings/timezone_changed", values={"timezone": zone_words, "local_time": local}
        ),
    )
    tap(3)
    shown = b.message("settings/choose_checkin", choice("slot"), values={"current": slot_now})
    _add(stage.steps, shown)
    later = protocol.checkin_slots[-1]
    try:
        with b.attempt("settings/checkin_changed.html.j2"):
            later_words = slot_words(prompts, later)
    except _Skip:
        later_words = later.key
    stage.steps.append(_partner(text=later_words))
    _add(stage.steps, b.message("settings/checkin_changed", values={"checkin": later_words}))
    tap(4)
    shown = b.message("settings/choose_quiet", choice("quiet"), values={"current": quiet_now})
    _add(stage.steps, shown)
    stage.steps.append(_partner(text=_first_button(shown, 1)))
    try:
        with b.attempt("settings/quiet_changed.html.j2"):
            wider = quiet_words(prompts, QuietHours(_clock("22:00"), _clock("07:00")))
    except _Skip:
        wider = ""
    _add(stage.steps, b.message("settings/quiet_changed", values={"quiet": wider}))
    _add(
        stage.sometimes,
        b.message("settings/name_bad", when="name_unusable", values={"limit": 64}),
    )
    _add(stage.sometimes, b.message("settings/timezone_bad", when="timezone_unknown"))
    _add(stage.sometimes, b.message("settings/finish_setup_first", when="before_setup"))
    return stage


def _clock(hhmm: str) -> time:
    """``"21:00"`` as a clock time."""
    hours, minutes = hhmm.split(":")
    return time(int(hours), int(minutes))


def _pause(b: _Builder) -> Stage:
    protocol, prompts = b.protocol, b.prompts
    stage = Stage("pause")
    stage.steps.append(_partner(text="/pause"))
    shown = b.message(
        "pause/choose", lambda: pause_keyboard(prompts, protocol), values={"until": None}
    )
    _add(stage.steps, shown)
    days = pause_choices(protocol)[min(1, len(protocol.pause_options_days) - 1)]
    try:
        with b.attempt("pause/paused.html.j2"):
            until = day_words(prompts, EXAMPLE_MOMENT + timedelta(days=days), b.zone)
            stage.steps.append(_partner(text=length_words(prompts, days)))
            checkin = slot_words(prompts, protocol.checkin_slots[0])
    except _Skip:
        return stage
    _add(stage.steps, b.message("pause/paused", values={"until": until}))
    stage.steps.append(_partner(text="/resume"))
    _add(stage.steps, b.message("pause/resumed", values={"checkin": checkin}))
    _add(
        stage.sometimes,
        b.message(
            "pause/choose",
            lambda: pause_keyboard(prompts, protocol),
            when="already_paused",
            values={"until": until},
        ),
    )
    _add(stage.sometimes, b.message("pause/not_paused", when="not_paused"))
    return stage


def _impact(b: _Builder) -> Stage:
    """Time given (/log, the payment question, the connector's check) and "you said, we did"."""
    from bot.involvement.buttons import step_keyboard
    from bot.involvement.payment import payment_keyboard, payment_rows, payment_words

    prompts = b.prompts
    stage = Stage("impact")
    entry = {
        "kind": prompts.label("involvement.kinds.training"),
        "day": day_words(prompts, EXAMPLE_MOMENT, b.zone),
        "length": prompts.label("meetings.length.hours", hours=2),
        "expenses": None,
    }
    stage.steps.append(_partner(text="/log"))
    _add(stage.steps, b.message("involvement/ask_payment", lambda: payment_keyboard(prompts)))
    chosen = payment_words(prompts, "voucher")
    stage.steps.append(_partner(text=chosen))
    _add(
        stage.steps,
        b.message("involvement/payment_saved", values={"choice": chosen, "declined": False}),
    )
    for step in ("kind", "day", "minutes", "expenses", "confirm"):
        values = {"step": step, "name": None, **entry}
        _add(
            stage.steps,
            b.message(
                "involvement/ask",
                partial(step_keyboard, prompts, "lg", step, b.zone, EXAMPLE_MOMENT),
                values=values,
            ),
        )
    _add(stage.steps, b.message("involvement/sent", values=entry))
    _add(stage.steps, b.message("involvement/approved", values=entry))
    _add(stage.sometimes, b.message("involvement/bad_amount", when="amount_unreadable"))
    _add(stage.sometimes, b.message("involvement/old_draft", when="entry_gone"))
    _add(
        stage.sometimes,
        b.message("involvement/logged_for_you", when="logged_for_them", values=entry),
    )
    _add(
        stage.sometimes,
        b.message(
            "settings/choose_payment",
            lambda: InlineKeyboardMarkup(payment_rows(prompts, "set:pay:")),
            when="in_settings",
            values={"current": chosen},
        ),
    )
    _add(
        stage.sometimes,
        b.message("settings/payment_changed", when="in_settings", values={"choice": chosen}),
    )
    change = b.example("you_said", "Meetings now start at 6pm, as you asked.")
    _add(stage.sometimes, b.message("yousaid/message", when="you_said", values={"text": change}))
    legacy = {
        "meetings": [{"title": b.example("meeting_title", "Planning day"), "day": entry["day"]}],
        "activities": [{"kind": entry["kind"], "day": entry["day"], "hours": entry["length"]}],
        "hours": prompts.label("tools.dates.hours", n="3.5"),
        "changes": [{"date": entry["day"], "text": change}],
    }
    _add(stage.sometimes, b.message("journey/contribution", when="in_journey", values=legacy))
    _add(
        stage.sometimes,
        b.message(
            "journey/legacy_caption", when="journey_full", kind="document", filename="me.pdf"
        ),
    )
    return stage


def _withdraw(b: _Builder) -> Stage:
    protocol, prompts = b.protocol, b.prompts
    policy = protocol.withdrawal.data
    stage = Stage("withdraw", facts={"withdrawal": policy})
    stage.steps.append(_partner(text="/withdraw"))
    stamp = int(EXAMPLE_MOMENT.timestamp())
    shown = b.message(
        "withdraw/confirm",
        lambda: confirm_keyboard(prompts, stamp),
        values={"data_policy": policy, "connector": b.group.connector},
    )
    _add(stage.steps, shown)
    stage.steps.append(_partner(text=_first_button(shown, 1)))
    _add(stage.steps, b.message("withdraw/kept_going"))
    stage.steps.append(_partner(text=_first_button(shown, 0)))
    _add(
        stage.steps,
        b.message(
            "withdraw/goodbye",
            values={"data_policy": policy, "crisis_resources": protocol.crisis_resources},
        ),
    )
    return stage


def _other_replies(b: _Builder) -> Stage:
    stage = Stage("other_replies")
    _add(
        stage.sometimes,
        b.message("start/welcome_back", when="start_again", values={"name": b.name}),
    )
    _add(stage.sometimes, b.message("fallback/not_understood", when="not_understood"))
    _add(stage.sometimes, b.message("guards/not_for_you", when="staff_only"))
    _add(stage.sometimes, b.message("errors/user_sorry", when="went_wrong"))
    return stage


def _staff(b: _Builder) -> list[Step]:
    protocol, prompts = b.protocol, b.prompts
    staff: list[Step] = []
    staff_name = b.example("staff_name", "Jo")
    pseudonym = b.example("pseudonym", "P-7K2Q9XWD")
    try:
        commands = commands_for(prompts, Role.CONNECTOR)
        _add(
            staff,
            b.message(
                "invite/welcome_staff",
                when="staff_joins",
                values={
                    "name": staff_name,
                    "study": protocol.study.name,
                    "role": str(Role.CONNECTOR),
                    "commands": commands,
                },
            ),
        )
    except PromptNotFoundError as exc:
        b.problem("invite/welcome_staff.html.j2", "label", str(exc))
    when = alert_time(EXAMPLE_MOMENT, b.zone)
    alerts = [("phrase", phrase_rule(protocol.safeguarding.phrases[0]), "message", True)]
    alerts += [
        ("threshold", threshold_rule(t), "answer", False) for t in protocol.safeguarding.thresholds
    ]
    for kind, rule, source, crisis_sent in alerts:
        _add(
            staff,
            b.message(
                "safeguarding/alert",
                lambda: ack_keyboard(prompts, 1),
                when=f"alert_{kind}",
                values={
                    "name": b.name,
                    "pseudonym": pseudonym,
                    "kind": kind,
                    "detail": rule.partition(":")[2],
                    "source": source,
                    "when": when,
                    "crisis_sent": crisis_sent,
                },
            ),
        )
    _add(
        staff,
        b.message(
            "safeguarding/picked_up",
            when="alert_picked_up",
            values={"by": staff_name, "name": b.name, "pseudonym": pseudonym},
        ),
    )
    _add(
        staff, b.message("errors/unreachable", when="unreachable", values={"pseudonym": pseudonym})
    )
    _add(
        staff,
        b.message(
            "errors/staff_alert",
            when="bot_error",
            values={"reference": "update-42", "error_type": "RuntimeError"},
        ),
    )
    return staff


def _uncovered(b: _Builder, covered: set[str]) -> list[str]:
    """Templates of the locale the journey did not show (the page's own left out)."""
    names = []
    for path in sorted(b.locale_dir.rglob("*.j2")):
        relative = path.relative_to(b.locale_dir).as_posix()
        if relative.split("/", 1)[0] == PREVIEW_FOLDER or relative in covered:
            continue
        names.append(relative)
    return names


def _as_written(b: _Builder, relative: str, *, when: str) -> Step:
    """A template shown as written, placeholders and all (no values to fill it with)."""
    source = (b.locale_dir / relative).read_text(encoding="utf-8")
    lines = source.splitlines()
    if lines and lines[0].strip().startswith("{#") and "audience" in lines[0]:
        source = "\n".join(lines[1:])
    return Step(
        "bot",
        templates=(relative,),
        html=escape(source.strip()),
        kind="source",
        when=when,
        staff=is_staff_template(b.locale_dir / relative),
    )


def _extras(
    b: _Builder, covered: set[str], stages: dict[str, Stage]
) -> tuple[list[Step], list[Step], list[Step]]:
    """Place every template the journey did not reach: in its folder's stage, else at the end.

    A message template with sample values is rendered with them; one without is shown as
    written. Command-line text is shown as written.
    """
    other: list[Step] = []
    staff: list[Step] = []
    command_line: list[Step] = []
    homes = {"checkins": "during_checkins", "meetings": "meetings"}
    for relative in _uncovered(b, covered):
        if relative.endswith(".txt.j2"):
            command_line.append(_as_written(b, relative, when="command_line"))
            continue
        if not relative.endswith(".html.j2"):
            continue
        name = relative.removesuffix(".html.j2")
        if name in b.samples:
            unused = relative.startswith("questions/")
            when = "unused_question" if unused else "sample_values"
            step = b.message(name, values=b.samples[name], when=when)
        else:
            step = _as_written(b, relative, when="as_written")
        if step is None:
            continue
        if step.staff:
            staff.append(step)
            continue
        home = stages.get(homes.get(relative.split("/", 1)[0], ""))
        if home is not None:
            home.sometimes.append(step)
        else:
            other.append(step)
    return other, staff, command_line


def build_preview(
    study_path: Path,
    locale_dir: Path | None = None,
    *,
    samples_dir: Path = SAMPLES_DIR,
    chart: bool = True,
) -> Preview:
    """Build every message of the protocol at ``study_path`` with the wording in ``locale_dir``.

    ``locale_dir`` is a locale folder such as ``prompts/en-GB`` (default: the shipped one for
    the protocol's locale). Raises ``ProtocolError`` for a protocol that does not load and
    :class:`PreviewError` listing every template that cannot be shown. ``chart=False`` leaves
    the /journey picture out (it takes a moment to draw).
    """
    protocol = load_protocol(study_path)
    folder = locale_dir if locale_dir is not None else default_locale_dir(protocol)
    if not folder.is_dir():
        raise PreviewError([Problem(str(folder), "no_folder")], folder)
    try:
        b = _Builder(protocol, folder, load_samples(samples_dir), load_examples(folder))
    except (PromptNotFoundError, yaml.YAMLError) as exc:  # the labels do not load
        raise PreviewError([Problem("labels.yaml", "labels", str(exc))], folder) from exc
    texts = _cycle(b.answer_texts())
    joining = _joining(b)
    start_button = next((s.buttons[0][0] for s in joining.steps if s.buttons), None)
    stages = [joining, _consent(b, start_button), _setting_up(b)]
    meetings, placed = _meetings(b), False
    for definition in protocol.checkins:  # a meeting's reminders come before its check-in
        if definition.schedule == "after_meeting" and not placed:
            stages.append(meetings)
            placed = True
        stages.append(_checkin(b, definition, texts))
    stages.append(_during_checkins(b))
    if not placed:
        stages.append(meetings)
    stages += [_safeguarding(b), _help(b), _journey(b, texts, chart=chart), _mydata(b)]
    stages += [_settings(b), _pause(b), _impact(b), _withdraw(b), _other_replies(b)]
    staff = _staff(b)
    shown = {t for stage in stages for s in stage.bubbles for t in s.templates}
    shown |= {t for s in staff for t in s.templates}
    shown |= {p.template for p in b.problems}
    by_key = {stage.key: stage for stage in stages}
    other, more_staff, command_line = _extras(b, shown, by_key)
    if b.problems:
        raise PreviewError(b.problems, folder)
    lang = folder.name if _LANG.match(folder.name) else protocol.study.locale
    return Preview(
        study=protocol.study.name,
        study_path=study_path,
        locale_dir=folder,
        lang=lang,
        stages=[s for s in stages if s.bubbles],
        staff=staff + more_staff,
        other=other,
        command_line=command_line,
    )


def _cycle(texts: list[str]) -> Iterator[str]:
    while True:
        yield from texts


# -- the page --------------------------------------------------------------------------------


def page_environment(locale_dir: Path) -> Environment:
    """The Jinja environment for the page's own templates (autoescaped HTML, strict)."""
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(f) for f in _frame_folders(locale_dir)]),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(preview: Preview) -> str:
    """The whole page: one self-contained HTML file (inline CSS, no scripts, no other files)."""
    template = page_environment(preview.locale_dir).get_template(PAGE_TEMPLATE)
    return template.render(preview=preview, hard_below=HARD_TO_READ_BELOW)


def write_preview(
    study_path: Path, locale_dir: Path | None, out: Path, *, chart: bool = True
) -> Preview:
    """Build the preview and write the page to ``out``; return what it shows."""
    preview = build_preview(study_path, locale_dir, chart=chart)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(preview), encoding="utf-8")
    return preview


def make_server(
    page: Callable[[], tuple[int, str, str]], *, host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    """An HTTP server answering ``GET /`` with ``page()`` (status, content type, body).

    ``page`` is called on every request, so an edited template shows on the next reload.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/", "/index.html"):
                self.send_error(404)
                return
            status, content_type, body = page()
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the command prints the address once

    return ThreadingHTTPServer((host, port), Handler)


def problems_text(prompts: Prompts, error: PreviewError) -> str:
    """What is wrong, one line per problem, in the words of ``preview/problems.txt.j2``."""
    return prompts.text("preview/problems", problems=error.problems, locale_dir=error.locale_dir)


def summary_values(preview: Preview) -> dict[str, Any]:
    """The numbers the command prints about a preview."""
    return {
        "study": preview.study,
        "locale_dir": preview.locale_dir,
        "messages": len(preview.scored),
        "average": preview.average or 0.0,
        "hard": len(preview.hard),
        "hard_below": HARD_TO_READ_BELOW,
    }


def page_or_problems(
    study_path: Path,
    locale_dir: Path | None,
    prompts: Prompts,
    problem_words: Callable[[str], str],
) -> tuple[int, str, str]:
    """For ``--serve``: the page made afresh (200), or what stops it as plain text (500).

    ``problem_words`` words a protocol error (the command line's own sentence).
    """
    from bot.protocol import ProtocolError

    try:
        return 200, "text/html", render_page(build_preview(study_path, locale_dir))
    except ProtocolError as exc:
        return 500, "text/plain", problem_words(str(exc))
    except PreviewError as exc:
        return 500, "text/plain", problems_text(prompts, exc)
