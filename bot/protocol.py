"""The study protocol: a YAML file validated into typed models, with errors a person can act on.

An error names the file, the line and what to change, because the people who edit this file
are study staff, not programmers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class ProtocolError(ValueError):
    """The protocol file cannot be used; the message says where and why."""


class _Located(ValueError):
    """A cross-reference problem, with where in the file it is."""

    def __init__(self, message: str, *location: int | str) -> None:
        super().__init__(message)
        self.location = location


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudyInfo(_Strict):
    """Who runs the study and how it presents itself."""

    name: str = Field(min_length=1, max_length=120)
    team: str = Field(min_length=1, max_length=200)
    locale: str = "en-GB"
    monitored_hours: str = Field(min_length=1, max_length=200)


Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
LocalTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
#: A connector named in the protocol: their numeric Telegram id, or "invite:<id>" for the
#: person who joined with that staff invite.
ConnectorRef = int | Annotated[str, Field(pattern=r"^invite:[0-9]{1,12}$")]


class Group(_Strict):
    """A group of partners (for example a region) with its time zone and connector."""

    key: Key
    name: str = Field(min_length=1, max_length=80)
    timezone: str
    connector: str = Field(min_length=1, max_length=80)
    #: Who reads this group's messages (empty: every connector).
    connectors: list[ConnectorRef] = Field(default_factory=list, max_length=20)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not an IANA time zone name (for example Europe/London)"
            ) from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The group's time zone."""
        return ZoneInfo(self.timezone)


class OfficeHours(_Strict):
    """When someone in the team reads partners' messages (local time of the partner's group)."""

    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1, max_length=7)
    start: LocalTime = "09:00"
    end: LocalTime = "17:00"

    @field_validator("days")
    @classmethod
    def _weekdays(cls, values: list[int]) -> list[int]:
        if any(not 0 <= v <= 6 for v in values) or len(set(values)) != len(values):
            raise ValueError("needs different weekdays from 0 (Monday) to 6 (Sunday)")
        return sorted(values)

    @model_validator(mode="after")
    def _order(self) -> OfficeHours:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class ConsentItem(_Strict):
    """One thing a partner agrees to, or not."""

    key: Key
    required: bool = False
    wording: str


class Withdrawal(_Strict):
    """What happens to what someone gave when they withdraw."""

    data: Literal["keep", "delete"] = "keep"


class CheckinSlot(_Strict):
    """A weekly check-in time offered as a button."""

    key: Key
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    time: LocalTime
    label: str


class QuietHours(_Strict):
    """The default local hours when nothing is sent."""

    start: LocalTime
    end: LocalTime


class ChoiceOption(_Strict):
    """One option of a choice question."""

    key: Key
    label: str


class AskIf(_Strict):
    """Ask a question only when an earlier scale answer is at most (or at least) a value."""

    question: Key
    at_most: int | None = None
    at_least: int | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> AskIf:
        if (self.at_most is None) == (self.at_least is None):
            raise ValueError("give exactly one of at_most or at_least")
        return self

    def holds(self, value: int | None) -> bool:
        """Whether an earlier answer ``value`` means the question is asked."""
        if value is None:
            return False
        if self.at_most is not None:
            return value <= self.at_most
        return self.at_least is not None and value >= self.at_least


class Question(_Strict):
    """A question: a scale of buttons, a choice, or free text (which takes voice too)."""

    key: Key
    kind: Literal["scale", "choice", "text"]
    wording: str
    optional: bool = False
    min: int | None = None
    max: int | None = None
    low_label: str | None = None
    high_label: str | None = None
    options: list[ChoiceOption] = Field(default_factory=list)
    ask_if: AskIf | None = None

    @model_validator(mode="after")
    def _shape(self) -> Question:
        if self.kind == "scale":
            if self.min is None or self.max is None or not 0 <= self.min < self.max <= 10:
                raise ValueError("a scale needs min and max with 0 <= min < max <= 10")
            if self.low_label is None or self.high_label is None:
                raise ValueError("a scale needs low_label and high_label")
        if self.kind == "choice" and not 2 <= len(self.options) <= 8:
            raise ValueError("a choice needs between 2 and 8 options")
        if self.kind != "choice" and self.options:
            raise ValueError("only a choice question has options")
        return self


class CheckinDef(_Strict):
    """A check-in: an ordered set of questions and how long it stays open."""

    key: Key
    wording: str
    schedule: Literal["weekly", "after_meeting", "monthly", "manual"]
    open_hours: int = Field(ge=1, le=24 * 31)
    questions: list[Key] = Field(min_length=1)
    # Lateness: how long after its time a scheduled check-in may still start (after downtime,
    # quiet hours or another open check-in). None: until the end of the partner's local day.
    late_hours: int | None = Field(default=None, ge=0, le=24 * 7)
    # The one gentle reminder of a check-in nobody has answered yet, this long after it
    # opened (None: no reminder). It must come before the check-in closes.
    reminder_after_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    # For schedule "monthly": the day of the month (at the partner's check-in time).
    day_of_month: int = Field(default=1, ge=1, le=28)

    @model_validator(mode="after")
    def _reminder_inside_window(self) -> CheckinDef:
        if self.reminder_after_hours is not None and self.reminder_after_hours >= self.open_hours:
            raise ValueError("reminder_after_hours must be less than open_hours")
        return self


class Meetings(_Strict):
    """How meetings are announced: reminder offsets and the lengths offered to connectors."""

    reminder_offsets_hours: list[int] = Field(
        default_factory=lambda: [48, 2], min_length=0, max_length=4
    )
    length_choices_minutes: list[int] = Field(
        default_factory=lambda: [60, 90, 120], min_length=1, max_length=6
    )

    @field_validator("reminder_offsets_hours", "length_choices_minutes")
    @classmethod
    def _positive(cls, values: list[int]) -> list[int]:
        if any(v <= 0 for v in values) or len(set(values)) != len(values):
            raise ValueError("needs different whole numbers above 0")
        return sorted(values)


class Threshold(_Strict):
    """An answer threshold that asks a connector to check in with someone."""

    question: Key
    at_most: int


class Safeguarding(_Strict):
    """Risk phrases (whole words, any case) and answer thresholds."""

    phrases: list[str] = Field(min_length=1)
    thresholds: list[Threshold] = Field(default_factory=list)


class Retention(_Strict):
    """How long each kind of data is kept, in days (None: for as long as the study runs).

    ``companion retention apply`` and the scheduler's daily run delete what is older.
    """

    answers_days: int | None = Field(default=None, ge=1)
    voice_notes_days: int | None = Field(default=None, ge=1)
    relay_messages_days: int | None = Field(default=None, ge=1)
    exports_days: int = Field(default=2, ge=1, le=365)
    outbox_payloads_days: int | None = Field(default=30, ge=1)
    # Telegram may send an update again for a day; its id must be remembered longer than that.
    inbox_ids_days: int | None = Field(default=30, ge=2)

    @model_validator(mode="after")
    def _voice_not_longer_than_answers(self) -> Retention:
        if (
            self.answers_days is not None
            and self.voice_notes_days is not None
            and self.voice_notes_days > self.answers_days
        ):
            raise ValueError(
                "voice_notes_days cannot be longer than answers_days "
                "(a voice note goes with its answer)"
            )
        return self


class Research(_Strict):
    """What researchers get: who may export (small numbers: ``StudyProtocol.min_group_size``)."""

    # Whether connectors may use /export as well as researchers.
    connectors_may_export: bool = False


class StudyProtocol(_Strict):
    """The whole protocol file."""

    version: int = Field(ge=1, le=1)
    study: StudyInfo
    groups: list[Group] = Field(min_length=1)
    consent: list[ConsentItem] = Field(min_length=1)
    withdrawal: Withdrawal = Withdrawal()
    checkin_slots: list[CheckinSlot] = Field(min_length=1, max_length=8)
    quiet_hours: QuietHours
    pause_options_days: list[int] = Field(min_length=1, max_length=6)
    questions: list[Question] = Field(min_length=1)
    checkins: list[CheckinDef] = Field(min_length=1)
    meetings: Meetings = Meetings()
    office_hours: OfficeHours = OfficeHours()
    crisis_resources: list[str] = Field(min_length=1)
    safeguarding: Safeguarding
    retention: Retention = Retention()
    research: Research = Research()
    #: Small groups are protected: any figure about fewer people is "too few to show".
    min_group_size: int = Field(default=5, ge=2, le=100)

    @model_validator(mode="after")
    def _references(self) -> StudyProtocol:
        for name, items in (
            ("groups", self.groups),
            ("consent", self.consent),
            ("questions", self.questions),
            ("checkins", self.checkins),
            ("checkin_slots", self.checkin_slots),
        ):
            keys = [i.key for i in items]
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            if dupes:
                where = len(keys) - 1 - keys[::-1].index(dupes[0])
                raise _Located(f"has the key {dupes[0]!r} more than once", name, where, "key")
        if sum(1 for c in self.consent if c.required) != 1:
            raise _Located("needs exactly one item with required: true", "consent")
        known = {q.key: q for q in self.questions}
        for index, checkin in enumerate(self.checkins):
            for position, key in enumerate(checkin.questions):
                here = ("checkins", index, "questions", position)
                if key not in known:
                    raise _Located(f"{key!r} is not one of the questions", *here)
                condition = known[key].ask_if
                if condition is not None:
                    earlier = checkin.questions[:position]
                    if condition.question not in earlier:
                        raise _Located(
                            f"{key!r} depends on {condition.question!r}, "
                            "which must be asked before it in this check-in",
                            *here,
                        )
                    if known[condition.question].kind != "scale":
                        raise _Located(f"{key!r} can only depend on a scale question", *here)
        for index, threshold in enumerate(self.safeguarding.thresholds):
            if threshold.question not in known or known[threshold.question].kind != "scale":
                raise _Located(
                    f"{threshold.question!r} is not a scale question",
                    "safeguarding",
                    "thresholds",
                    index,
                    "question",
                )
        return self

    @property
    def required_consent(self) -> ConsentItem:
        """The consent item without which someone cannot take part."""
        return next(c for c in self.consent if c.required)

    def question(self, key: str) -> Question:
        """The question with ``key``."""
        return next(q for q in self.questions if q.key == key)

    def checkin(self, key: str) -> CheckinDef:
        """The check-in definition with ``key``."""
        return next(c for c in self.checkins if c.key == key)

    def group(self, key: str | None) -> Group | None:
        """The group with ``key``, if any."""
        return next((g for g in self.groups if g.key == key), None)

    def connector_of(self, group_key: str | None) -> str | None:
        """The connector of the group ``group_key`` (None without a known group)."""
        group = self.group(group_key)
        return group.connector if group is not None else None


def _line_of(root: yaml.Node | None, location: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at ``location``, or of its nearest parent."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for key in location:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            match = node.value[key] if key < len(node.value) else None
        else:
            match = None
        if match is None:
            break
        node = match
        line = node.start_mark.line + 1
    return line


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is missing; add it"
    if kind == "extra_forbidden":
        return "is not a setting the protocol knows; check the spelling or remove it"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def load_protocol(path: Path) -> StudyProtocol:
    """Read and validate the protocol at ``path``; raise ProtocolError with a clear message."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProtocolError(f"{path}: the study protocol file does not exist") from exc
    except OSError as exc:
        raise ProtocolError(f"{path}: the study protocol file cannot be read ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"{path}: the study protocol is not a text file in UTF-8; save it as UTF-8 text"
        ) from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "it is not valid YAML"
        raise ProtocolError(
            f"{where}: {problem}; check the indentation and quotes on that line"
        ) from exc
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: the protocol must be a YAML mapping of settings")
    try:
        return StudyProtocol.model_validate(data)
    except ValidationError as exc:
        problems = []
        for details in exc.errors():
            error: dict[str, Any] = dict(details)
            location = tuple(error["loc"])
            cause = (error.get("ctx") or {}).get("error")
            if isinstance(cause, _Located):
                location = location + tuple(cause.location)
                error["msg"] = str(cause)
            line = _line_of(root, location)
            dotted = ".".join(str(p) for p in location) or "(top level)"
            where = f"{path}:{line}" if line else str(path)
            problems.append(f"{where}: {dotted} {_describe(error)}")
        raise ProtocolError("\n".join(problems)) from exc
