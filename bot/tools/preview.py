"""``companion preview``: every message of a study protocol on one page, as a partner sees it.

The page is for a connector and partners going through the wording together. It follows the
partner's journey in order (the invite, consent, setting up, each check-in of the protocol in
order, meetings, safeguarding, the partner's own tools), shows each message as a chat bubble
with its buttons, names the template file(s) it comes from (relative to the locale folder, so
you know which file to edit), and gives its Flesch reading ease (:mod:`bot.tools.readability`, the
same scoring as ``bench/readability.py``). Messages for the study team are shown in their own
section and not scored. Every template of the locale that the journey does not reach is shown
at the end, so nothing is missed.

The messages are the bot's own: each bubble is what a view function returns (text and
buttons, :mod:`bot.partners.views`, :mod:`bot.privacy.views`, :mod:`bot.connector.views`), the
same functions the handlers and services send, given values taken from the protocol itself
(its groups, slots, questions, crisis resources) and an example partner. Values no protocol
holds (the partner's name, an example answer) come from ``<locale>/preview/examples.yaml``;
this module only lays the views out as a journey. A template the journey does not
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
from datetime import UTC, datetime, timedelta
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

from bot.calendar.words import (
    day_words,
    slot_words,
    time_words,
)
from bot.connector import views as connector_views
from bot.meetings import views as meeting_views
from bot.meetings.rules import TITLE_LIMIT
from bot.meetings.views import AttendanceRow
from bot.partners import checkins, onboarding
from bot.partners.invites import RedeemOutcome
from bot.partners.journey import Journey, Quote, ScaleLine, chart_text, render_chart, shorten
from bot.partners.pausing import pause_choices
from bot.partners.preferences import QUIET_PRESETS, set_quiet_preset
from bot.partners.safeguarding import phrase_rule, threshold_rule
from bot.partners.views import checkins as checkin_views
from bot.partners.views import general as general_views
from bot.partners.views import invites as invite_views
from bot.partners.views import journey as journey_views
from bot.partners.views import onboarding as onboarding_views
from bot.partners.views import pause as pause_views
from bot.partners.views import safeguarding as safeguarding_views
from bot.partners.views import settings as settings_views
from bot.privacy import views as privacy_views
from bot.protocol import CheckinDef, Question, StudyProtocol, load_protocol
from bot.sandbox.html import (
    EntityParseError,
    detect_entities,
    parse_html,
    strip_text,
    utf16_len,
)
from bot.tools.readability import (
    EASE_SCALE,
    HARD_TO_READ_BELOW,
    Reading,
    is_staff_template,
    score_html,
)
from bot.transport.view import View
from prompts import (
    CALLBACK_DATA_LIMIT,
    DEFAULT_LOCALE,
    PROMPTS_DIR,
    TELEGRAM_TEXT_LIMIT,
    PromptNotFoundError,
    Prompts,
)
from storage.models import Checkin, Meeting, MeetingAnswer, PartnerProfile, Role

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


def default_locale_dir(protocol: StudyProtocol, here: Path | None = None) -> Path:
    """The wording folder to preview when none is named: the one a study edits.

    Run from a checkout of this project (a ``pyproject.toml`` beside a ``prompts/`` folder in
    ``here``, the current directory), that is the checkout's ``prompts/<locale>``. Otherwise
    it is the package's own, which is the source tree's in an editable install, and else the
    installed copy (where an edit is lost on the next install).
    """
    root = Path.cwd() if here is None else here
    checkout = root / "prompts" / protocol.study.locale
    if (root / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
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
        slot = protocol.checkin_slots[0]
        #: The example partner: in the first group, at the first slot, default quiet hours.
        self.profile = PartnerProfile(
            group_key=self.group.key,
            timezone=self.group.timezone,
            checkin_weekday=slot.weekday,
            checkin_time=slot.time,
        )

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

    def show(
        self,
        template: str,
        view: Callable[[], View],
        *,
        used_by: str | None = None,
        when: str | None = None,
        kind: str = "text",
        **more: Any,
    ) -> Step | None:
        """The message a view function makes; None if it failed (a problem for ``template``).

        ``template`` is the view's main template, named so that a failure before the view
        exists (a missing label, say) is reported against the right file.
        """
        try:
            with self.attempt(f"{template}.html.j2", used_by):
                made = view()
        except _Skip:
            return None
        return self.shown(made, when=when, kind=kind, **more)

    def shown(self, view: View, *, kind: str = "text", **more: Any) -> Step:
        """A view as a bubble of the page, checked as Telegram would check it."""
        templates = tuple(f"{t}.html.j2" for t in view.templates)
        return self.bot(templates, view.text, view.markup, kind=kind, **more)

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
    protocol, prompts = b.protocol, b.prompts
    stage = Stage("joining")
    stage.steps.append(_partner(said="opens_invite"))
    welcome = partial(onboarding_views.welcome, prompts, protocol, b.profile, name=b.name)
    _add(stage.steps, b.show("onboarding/welcome", welcome))
    _add(
        stage.steps,
        b.show("onboarding/safety", partial(onboarding_views.safety, prompts, protocol)),
    )
    for outcome, when in (
        (RedeemOutcome.UNKNOWN, "invite_unknown"),
        (RedeemOutcome.EXPIRED, "invite_expired"),
        (RedeemOutcome.USED, "invite_used"),
    ):
        refused = partial(invite_views.refused, prompts, outcome)
        _add(stage.sometimes, b.show(invite_views.REFUSALS[outcome], refused, when=when))
    too_many = partial(invite_views.too_many_tries, prompts)
    _add(stage.sometimes, b.show("invite/too_many", too_many, when="invite_too_many"))
    outsider = partial(invite_views.outsider, prompts)
    _add(stage.sometimes, b.show("start/outsider", outsider, when="no_invite"))
    private_only = partial(invite_views.private_only, prompts)
    _add(stage.sometimes, b.show("start/private_only", private_only, when="in_a_group"))
    enrolled = partial(invite_views.already_enrolled, prompts, name=b.name, staff=False)
    _add(stage.sometimes, b.show("invite/already_enrolled", enrolled, when="already_enrolled"))
    return stage


def _consent(b: _Builder, start_button: str | None) -> Stage:
    protocol = b.protocol
    stage = Stage("consent", facts={"withdrawal": protocol.withdrawal.data})
    if start_button:
        stage.steps.append(_partner(text=start_button))
    for item in onboarding.consent_items(protocol):
        shown = b.show(
            item.wording,
            partial(onboarding_views.consent, b.prompts, protocol, item),
            used_by=f"consent.{item.key}",
            when=None if item.required else "optional_consent",
        )
        _add(stage.steps, shown)
        answer = _first_button(shown)
        if answer:
            stage.steps.append(_partner(text=answer))
    declined = partial(onboarding_views.declined, b.prompts)
    _add(stage.sometimes, b.show("onboarding/declined", declined, when="declined"))
    again = partial(onboarding_views.declined, b.prompts, again=True)
    _add(stage.sometimes, b.show("onboarding/declined_reminder", again, when="declined_again"))
    return stage


def _setting_up(b: _Builder) -> Stage:
    protocol, prompts = b.protocol, b.prompts
    stage = Stage("setting_up")
    ask_name = partial(onboarding_views.ask_name, prompts, protocol, first_name=b.name)
    shown = b.show("onboarding/ask_name", ask_name)
    _add(stage.steps, shown)
    stage.steps.append(_partner(text=_first_button(shown), said="types_name"))
    ask_group = partial(onboarding_views.ask_group, prompts, protocol, name=b.name)
    group = b.show("onboarding/ask_group", ask_group, when="invite_without_group")
    _add(stage.steps, group)
    if group is not None:
        stage.steps.append(_partner(text=_first_button(group)))
    slot = b.show(
        "onboarding/ask_slot", partial(onboarding_views.ask_slot, prompts, protocol, name=b.name)
    )
    _add(stage.steps, slot)
    if slot is not None:
        stage.steps.append(_partner(text=_first_button(slot)))
    done = partial(onboarding_views.done, prompts, protocol, b.profile, name=b.name)
    _add(stage.steps, b.show("onboarding/done", done))
    invalid = partial(onboarding_views.name_invalid, prompts)
    _add(stage.sometimes, b.show("onboarding/name_invalid", invalid, when="name_unusable"))
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
    above: View | None,
    again: bool = False,
    when: str | None = None,
) -> Step | None:
    """One question as the bot asks it (:func:`bot.partners.views.checkins.question`).

    ``above`` (the check-in's intro, or the nudge) goes above it. The question's own wording
    is rendered first, so that its problems are named after it.
    """
    used_by = f"questions.{question.key}"
    try:
        wording = b.render(question.wording, used_by, name=b.name)  # its problems, named so
        if not b.markup_ok(f"{question.wording}.html.j2", wording):
            return None
        if above is not None and not b.markup_ok(f"{above.templates[0]}.html.j2", above.text):
            return None
        with b.attempt("checkins/question.html.j2", used_by):
            view = checkin_views.question(
                b.prompts,
                Checkin(id=1, checkin_key=definition.key),
                definition,
                question,
                name=b.name,
                above=above,
                again=again,
            )
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
    return b.shown(view, ask_if=ask_if, when=when)


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
    intro: View | None = None
    try:
        with b.attempt(f"{definition.wording}.html.j2", f"checkins.{definition.key}"):
            intro = checkin_views.intro(b.prompts, protocol, definition, name=b.name)
    except _Skip:
        pass
    for position, key in enumerate(definition.questions):
        question = protocol.question(key)
        shown = _question_step(b, definition, question, above=intro if position == 0 else None)
        if shown is None:
            continue
        stage.steps.append(shown)
        stage.steps.append(_answer_for(b, question, definition, shown, texts))
    _add(stage.sometimes, _nudge(b, definition))
    confidence = any(q.key == checkin_views.CONFIDENCE_QUESTION for q in protocol.questions)
    end = partial(
        checkin_views.end,
        b.prompts,
        protocol,
        name=b.name,
        reflections=3,
        confidence_first=2 if confidence else None,
        confidence_latest=4 if confidence else None,
    )
    _add(stage.steps, b.show("checkins/end", end))
    return stage


def _nudge(b: _Builder, definition: CheckinDef) -> Step | None:
    """The one gentle reminder of a check-in nobody has answered: the nudge, then question 1.

    Shown when the check-in has a reminder and the wording folder has the nudge template.
    """
    hours = definition.reminder_after_hours
    nudge = checkin_views.NUDGE
    if hours is None or not (b.locale_dir / f"{nudge}.html.j2").is_file():
        return None
    closes_at = EXAMPLE_MOMENT + timedelta(hours=definition.open_hours)
    try:
        with b.attempt(f"{nudge}.html.j2"):
            above = checkin_views.nudge(b.prompts, name=b.name, closes_at=closes_at, zone=b.zone)
    except _Skip:
        return None
    first = b.protocol.question(definition.questions[0])
    step = _question_step(b, definition, first, above=above, again=True)
    return replace(step, when="nudge", facts={"hours": hours}) if step is not None else None


def _during_checkins(b: _Builder) -> Stage:
    prompts = b.prompts
    stage = Stage("during_checkins")
    definition = b.protocol.checkin(checkins.manual_checkin_key(b.protocol))
    first = b.protocol.question(definition.questions[0])
    _add(
        stage.sometimes, _question_step(b, definition, first, above=None, again=True, when="again")
    )
    use_buttons = partial(checkin_views.use_buttons, prompts)
    _add(stage.sometimes, b.show("checkins/use_buttons", use_buttons, when="typed_not_tapped"))
    closed = partial(checkin_views.closed, prompts)
    _add(stage.sometimes, b.show("checkins/closed", closed, when="answered_too_late"))
    not_now = partial(checkin_views.not_now, prompts)
    _add(stage.sometimes, b.show("checkins/not_now", not_now, when="cannot_start"))
    return stage


def _meeting_view(
    b: _Builder, template: str, build: Callable[[], View], *, when: str | None = None
) -> Step | None:
    """A meeting message as its view in :mod:`bot.meetings.views` builds it; None if it failed."""
    try:
        with b.attempt(f"{template}.html.j2"):
            shown = build()
    except _Skip:
        return None
    return b.bot((f"{template}.html.j2",), shown.text, shown.markup, when=when)


def _example_meeting(b: _Builder, meeting_id: int = 1, **changes: Any) -> Meeting:
    """The meeting the examples are about (a week after the example moment), or a variant."""
    choices = b.protocol.meetings.length_choices_minutes
    values: dict[str, Any] = {
        "id": meeting_id,
        "title": b.example("meeting_title", "Team meeting"),
        "starts_at": EXAMPLE_MOMENT + timedelta(days=7),
        "length_minutes": 90 if 90 in choices else choices[0],
        "timezone": b.group.timezone,
        "place": b.example("meeting_place", "Room 2"),
        "groups": [],
        "version": 1,
    }
    return Meeting(**{**values, **changes})


def _meetings(b: _Builder) -> Stage:
    """Reminders before a meeting (one per offset in the protocol), /meetings, changes."""
    protocol, prompts, meeting = b.protocol, b.prompts, _example_meeting(b)
    offsets = sorted(protocol.meetings.reminder_offsets_hours, reverse=True)
    stage = Stage("meetings", facts={"reminders": offsets})
    answer: str | None = None
    for hours in offsets:
        shown = _meeting_view(
            b,
            "meetings/reminder",
            partial(
                meeting_views.reminder_message,
                prompts,
                meeting,
                name=b.name,
                zone=b.zone,
                answer=answer,
                hours_before=hours,
                now=meeting.starts_at - timedelta(hours=hours),
            ),
        )
        _add(stage.steps, shown)
        if answer is None and shown is not None:
            stage.steps.append(_partner(text=_first_button(shown)))
            answer = MeetingAnswer.YES
    stage.steps.append(_partner(text="/meetings"))
    said, zone = MeetingAnswer.YES, b.zone
    upcoming = partial(
        meeting_views.upcoming, prompts, meeting, zone=zone, answer=said, first=True, count=1
    )
    _add(stage.steps, _meeting_view(b, "meetings/upcoming", upcoming))
    changed = partial(
        meeting_views.change_notice,
        prompts,
        meeting,
        name=b.name,
        zone=zone,
        changed=["start"],
        answer=said,
    )
    _add(stage.sometimes, _meeting_view(b, "meetings/changed", changed, when="changed"))
    cancelled = partial(meeting_views.cancel_notice, prompts, meeting, name=b.name, zone=zone)
    _add(stage.sometimes, _meeting_view(b, "meetings/cancelled", cancelled, when="cancelled"))
    none = partial(meeting_views.none_upcoming, prompts)
    _add(stage.sometimes, _meeting_view(b, "meetings/none", none, when="no_meetings"))
    return stage


def _meeting_staff(b: _Builder) -> list[Step]:
    """A connector's /meeting: the menu, a new meeting step by step, a change, a cancellation,
    and the attendance sheet of a recent meeting."""
    protocol, prompts, now = b.protocol, b.prompts, EXAMPLE_MOMENT
    meeting = _example_meeting(b)
    zone_name = meeting.timezone
    moved = _example_meeting(b, starts_at=meeting.starts_at + timedelta(days=1))
    recent = _example_meeting(
        b,
        2,
        title=b.example("recent_meeting_title", "Planning day"),
        starts_at=EXAMPLE_MOMENT - timedelta(days=3),
    )
    groups = [g.key for g in protocol.groups[:2]]
    people = [
        AttendanceRow(1, b.name, MeetingAnswer.YES, True),
        AttendanceRow(2, b.example("other_partner_name", "Kim"), None, False),
    ]
    counts = {"yes": 4, "no": 1, "maybe": 2}
    v = meeting_views
    steps: list[tuple[str, Callable[[], View], str | None]] = [
        (
            "menu",
            partial(v.connector_menu, prompts, [(meeting, counts)], [recent]),
            "meeting_menu",
        ),
        ("ask_groups", partial(v.ask_groups, prompts, protocol), "meeting_new"),
        ("ask_title", partial(v.ask_title, prompts), None),
        ("ask_start", partial(v.ask_start, prompts, zone_name, now=now), None),
        ("ask_length", partial(v.ask_length, prompts, protocol), None),
        ("ask_place", partial(v.ask_place, prompts), None),
        (
            "summary",
            partial(
                v.summary,
                prompts,
                protocol,
                title=meeting.title,
                starts_at=meeting.starts_at,
                zone_name=zone_name,
                length_minutes=meeting.length_minutes,
                place=meeting.place,
                groups=groups,
                count=12,
            ),
            None,
        ),
        ("created", partial(v.created, prompts, protocol, meeting, count=12), None),
        ("bad_text", partial(v.bad_text, prompts, TITLE_LIMIT), "meeting_bad_text"),
        (
            "bad_start",
            partial(v.bad_start, prompts, "bad_date", zone_name, now=now),
            "meeting_bad_start",
        ),
        ("use_buttons", partial(v.use_buttons, prompts), "meeting_use_buttons"),
        ("discarded", partial(v.discarded, prompts), "meeting_discarded"),
        ("manage", partial(v.manage, prompts, protocol, meeting, counts), "meeting_manage"),
        ("ask_start", partial(v.ask_start, prompts, zone_name, now=now, meeting=meeting), None),
        (
            "confirm_change",
            partial(
                v.confirm_change,
                prompts,
                meeting,
                starts_at=moved.starts_at,
                zone_name=zone_name,
                told=5,
            ),
            None,
        ),
        ("changed", partial(v.meeting_changed, prompts, moved, notified=5), None),
        ("confirm_cancel", partial(v.confirm_cancel, prompts, meeting, told=1), "meeting_cancel"),
        ("cancelled", partial(v.meeting_cancelled, prompts, meeting, notified=1), None),
        ("problem", partial(v.problem, prompts, "cancelled"), "meeting_problem"),
        ("attendance", partial(v.attendance, prompts, recent, people), "meeting_attendance"),
    ]
    shown: list[Step] = []
    for name, build, when in steps:
        _add(shown, _meeting_view(b, f"meetings/staff/{name}", build, when=when))
    return shown


def _safeguarding(b: _Builder) -> Stage:
    protocol = b.protocol
    stage = Stage("safeguarding", facts={"phrases": len(protocol.safeguarding.phrases)})
    stage.steps.append(_partner(said="writes_worry"))
    crisis = partial(safeguarding_views.crisis, b.prompts, protocol, name=b.name)
    _add(stage.steps, b.show("safeguarding/crisis", crisis))
    return stage


def _help(b: _Builder) -> Stage:
    stage = Stage("help")
    stage.steps.append(_partner(text="/help"))
    help_message = partial(general_views.help_message, b.prompts, b.protocol, Role.PARTNER)
    _add(stage.steps, b.show("help/member", help_message))
    return stage


# -- messages with their connector (issue 11) ---------------------------------------------------


def _contact(b: _Builder) -> Stage:
    """A partner writes to their connector, outside and inside office hours, and is answered."""
    stage = Stage("contact")
    group = b.protocol.groups[0]
    connector = {"connector": group.connector}
    stage.steps.append(_partner(text="/contact"))
    _add(stage.steps, b.message("relay/contact", values=connector))
    stage.steps.append(_partner(text=b.example("contact_message", "Can I bring my daughter?")))
    _add(stage.steps, b.message("relay/sent", values=connector))
    answer = b.example("connector_answer", "Of course, she is very welcome.")
    values = {"connector": group.connector, "kind": "text", "text": answer}
    _add(stage.steps, b.message("relay/from_connector", values=values))
    away = {
        **connector,
        "day": day_words(b.prompts, EXAMPLE_MOMENT, group.zone),
        "time": time_words(b.prompts, b.protocol.office_hours.start),
        "resources": b.protocol.crisis_resources,
    }
    _add(stage.sometimes, b.message("relay/away", when="out_of_hours", values=away))
    _add(stage.sometimes, b.message("relay/cannot_send", when="sticker"))
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
    prompts = b.prompts
    stage = Stage("journey")
    stage.steps.append(_partner(text="/journey"))
    try:
        with b.attempt("journey/caption.html.j2"):
            journey = _example_journey(b, texts)
    except _Skip:
        return stage
    if journey.lines:
        caption = b.show(
            "journey/caption",
            partial(journey_views.caption, prompts, journey, b.zone),
            kind="photo",
            image=_chart(journey, b) if chart else None,
        )
        if caption is not None:  # the caption stands in for the picture
            caption = replace(caption, alt=caption.plain)
        _add(stage.steps, caption)
    summary = partial(journey_views.summary, prompts, journey, b.zone)
    _add(stage.steps, b.show("journey/summary", summary))
    empty = partial(journey_views.empty, prompts)
    _add(stage.sometimes, b.show("journey/empty", empty, when="nothing_yet"))
    return stage


def _mydata(b: _Builder) -> Stage:
    prompts = b.prompts
    stage = Stage("mydata")
    stage.steps.append(_partner(text="/mydata"))
    caption = partial(privacy_views.mydata_caption, prompts)
    _add(stage.steps, b.show("mydata/caption", caption, kind="document", filename="my_data.zip"))
    template = "mydata/readme.txt.j2"
    try:
        with b.attempt(template):
            readme = privacy_views.mydata_readme(
                prompts,
                study=b.protocol.study.name,
                made=EXAMPLE_MOMENT,
                pseudonym=b.example("pseudonym", "P-7K2Q9XWD"),
                counts=dict.fromkeys(prompts.labels("tools.mydata.tables"), 3),
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
    protocol, prompts, profile = b.protocol, b.prompts, b.profile
    stage = Stage("settings")
    stage.steps.append(_partner(text="/settings"))
    menu = b.show(
        "settings/menu", partial(settings_views.menu, prompts, protocol, profile, name=b.name)
    )
    _add(stage.steps, menu)

    def tap(row: int) -> None:
        label = _first_button(menu, row)
        if label:
            stage.steps.append(_partner(text=label))

    def choices(item: str, template: str) -> Step | None:
        shown = b.show(template, partial(settings_views.choices, prompts, protocol, profile, item))
        _add(stage.steps, shown)
        return shown

    tap(0)
    choices("name", "settings/ask_name")
    stage.steps.append(_partner(said="types_name"))
    _add(
        stage.steps,
        b.show("settings/name_changed", partial(settings_views.name_changed, prompts, b.name)),
    )
    tap(1)
    choices("group", "settings/choose_group")
    other_group = protocol.groups[-1]
    stage.steps.append(_partner(text=other_group.name))
    changed = partial(settings_views.group_changed, prompts, other_group)
    _add(stage.steps, b.show("settings/group_changed", changed))
    tap(2)
    choices("tz", "settings/choose_timezone")
    try:
        type_it = b.label("tools.settings.type_it", "settings/choose_timezone.html.j2")
    except _Skip:
        type_it = ""
    stage.steps.append(_partner(text=type_it or None))
    _add(
        stage.steps, b.show("settings/ask_timezone", partial(settings_views.ask_timezone, prompts))
    )
    typed = b.example("typed_timezone", "Europe/Madrid")
    stage.steps.append(_partner(text=typed.split("/")[-1]))
    zone_changed = partial(settings_views.timezone_changed, prompts, typed, now=EXAMPLE_MOMENT)
    _add(stage.steps, b.show("settings/timezone_changed", zone_changed))
    tap(3)
    choices("slot", "settings/choose_checkin")
    later = protocol.checkin_slots[-1]
    try:
        with b.attempt("settings/checkin_changed.html.j2"):
            stage.steps.append(_partner(text=slot_words(prompts, later)))
    except _Skip:
        stage.steps.append(_partner(text=later.key))
    slot_changed = partial(settings_views.checkin_changed, prompts, later)
    _add(stage.steps, b.show("settings/checkin_changed", slot_changed))
    tap(4)
    quiet = choices("quiet", "settings/choose_quiet")
    stage.steps.append(_partner(text=_first_button(quiet, 1)))
    wider = set_quiet_preset(PartnerProfile(), list(QUIET_PRESETS)[1])
    quiet_changed = partial(settings_views.quiet_changed, prompts, wider)
    _add(stage.steps, b.show("settings/quiet_changed", quiet_changed))
    name_bad = partial(settings_views.name_bad, prompts)
    _add(stage.sometimes, b.show("settings/name_bad", name_bad, when="name_unusable"))
    zone_bad = partial(settings_views.timezone_bad, prompts)
    _add(stage.sometimes, b.show("settings/timezone_bad", zone_bad, when="timezone_unknown"))
    first = partial(general_views.finish_setup_first, prompts)
    _add(stage.sometimes, b.show("settings/finish_setup_first", first, when="before_setup"))
    return stage


def _pause(b: _Builder) -> Stage:
    protocol, prompts, profile = b.protocol, b.prompts, b.profile
    stage = Stage("pause")
    stage.steps.append(_partner(text="/pause"))
    _add(
        stage.steps,
        b.show("pause/choose", partial(pause_views.choose, prompts, protocol, profile)),
    )
    days = pause_choices(protocol)[min(1, len(protocol.pause_options_days) - 1)]
    until = EXAMPLE_MOMENT + timedelta(days=days)
    try:
        with b.attempt("pause/paused.html.j2"):
            stage.steps.append(_partner(text=pause_views.length_words(prompts, days)))
    except _Skip:
        return stage
    _add(
        stage.steps,
        b.show("pause/paused", partial(pause_views.paused, prompts, profile, until=until)),
    )
    stage.steps.append(_partner(text="/resume"))
    resumed = partial(pause_views.resumed, prompts, protocol, profile)
    _add(stage.steps, b.show("pause/resumed", resumed))
    again = partial(pause_views.choose, prompts, protocol, profile, until=until)
    _add(stage.sometimes, b.show("pause/choose", again, when="already_paused"))
    not_paused = partial(pause_views.not_paused, prompts)
    _add(stage.sometimes, b.show("pause/not_paused", not_paused, when="not_paused"))
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
    stage = Stage("withdraw", facts={"withdrawal": protocol.withdrawal.data})
    stage.steps.append(_partner(text="/withdraw"))
    confirm = partial(
        privacy_views.confirm_withdrawal, prompts, protocol, b.profile, now=EXAMPLE_MOMENT
    )
    shown = b.show("withdraw/confirm", confirm)
    _add(stage.steps, shown)
    stage.steps.append(_partner(text=_first_button(shown, 1)))
    _add(stage.steps, b.show("withdraw/kept_going", partial(privacy_views.kept_going, prompts)))
    stage.steps.append(_partner(text=_first_button(shown, 0)))
    goodbye = partial(privacy_views.goodbye, prompts, protocol)
    _add(stage.steps, b.show("withdraw/goodbye", goodbye))
    return stage


def _other_replies(b: _Builder) -> Stage:
    prompts = b.prompts
    stage = Stage("other_replies")
    welcome_back = partial(general_views.welcome_back, prompts, name=b.name)
    _add(stage.sometimes, b.show("start/welcome_back", welcome_back, when="start_again"))
    not_understood = partial(general_views.not_understood, prompts)
    _add(stage.sometimes, b.show("fallback/not_understood", not_understood, when="not_understood"))
    own_words = partial(general_views.own_words, prompts, voice=True)
    _add(stage.sometimes, b.show("fallback/own_words", own_words, when="forwarded"))
    not_for_you = partial(general_views.not_for_you, prompts)
    _add(stage.sometimes, b.show("guards/not_for_you", not_for_you, when="staff_only"))
    sorry = partial(connector_views.sorry, prompts)
    _add(stage.sometimes, b.show("errors/user_sorry", sorry, when="went_wrong"))
    return stage


def _staff(b: _Builder) -> list[Step]:
    protocol, prompts = b.protocol, b.prompts
    staff: list[Step] = []
    staff_name = b.example("staff_name", "Jo")
    pseudonym = b.example("pseudonym", "P-7K2Q9XWD")
    welcome = partial(
        invite_views.welcome_staff, prompts, protocol, name=staff_name, role=Role.CONNECTOR
    )
    _add(staff, b.show("invite/welcome_staff", welcome, when="staff_joins"))
    alerts = [("phrase", phrase_rule(protocol.safeguarding.phrases[0]), "message", True)]
    alerts += [
        ("threshold", threshold_rule(t), "answer", False) for t in protocol.safeguarding.thresholds
    ]
    for kind, rule, source, crisis_sent in alerts:
        alert = partial(
            safeguarding_views.alert,
            prompts,
            alert_id=1,
            name=b.name,
            pseudonym=pseudonym,
            rule=rule,
            source=source,
            raised_at=EXAMPLE_MOMENT,
            zone=b.zone,
            crisis_sent=crisis_sent,
        )
        _add(staff, b.show("safeguarding/alert", alert, when=f"alert_{kind}"))
    picked_up = partial(
        safeguarding_views.picked_up, prompts, by=staff_name, name=b.name, pseudonym=pseudonym
    )
    _add(staff, b.show("safeguarding/picked_up", picked_up, when="alert_picked_up"))
    unreachable = partial(general_views.unreachable, prompts, pseudonym=pseudonym)
    _add(staff, b.show("errors/unreachable", unreachable, when="unreachable"))
    failed = partial(
        connector_views.failure_alert, prompts, reference="update-42", error=RuntimeError()
    )
    _add(staff, b.show("errors/staff_alert", failed, when="bot_error"))
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
        if relative.endswith((".txt.j2", ".web.j2")):  # the impact report's page too
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

    ``locale_dir`` is a locale folder such as ``prompts/en-GB`` (default: the protocol's locale
    in the checkout run from, else the shipped one; see :func:`default_locale_dir`). Raises
    ``ProtocolError`` for a protocol that does not load and :class:`PreviewError` listing every
    template that cannot be shown. ``chart=False`` leaves the /journey picture out (it takes a
    moment to draw).
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
    stages += [_safeguarding(b), _help(b), _contact(b), _journey(b, texts, chart=chart)]
    stages += [_mydata(b)]
    stages += [_settings(b), _pause(b), _impact(b), _withdraw(b), _other_replies(b)]
    staff = _staff(b) + _meeting_staff(b)
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
    return template.render(preview=preview, hard_below=HARD_TO_READ_BELOW, scale=EASE_SCALE)


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
