"""The export's tables, column by column: the one place a column's name, type and meaning live.

From these definitions come the CSV headers, the xlsx sheets, the Frictionless
``datapackage.json`` (Table Schema: every field with its type, a description, value labels as
``categories`` and ``constraints.enum``) and ``codebook.csv`` for people who do not read JSON.
The words (descriptions, value labels) come from ``prompts/<locale>/labels/research.yaml``;
question wording and scale ends from the study protocol's templates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from bot.protocol import Question, StudyProtocol
from prompts import Prompts


@dataclass(frozen=True)
class Column:
    """One column of one table."""

    name: str
    type: str = "string"  # a Table Schema type
    about: str | None = None  # the description's label key (default: the name)
    values: str | None = None  # label group under research.values: the coded values
    required: bool = False
    free_text: bool = False  # left out with --no-free-text
    voice: bool = False  # left out with --no-voice
    format: str | None = None  # a Table Schema format, when not the default
    about_values: dict[str, str] = field(default_factory=dict)  # values for the description


@dataclass(frozen=True)
class Table:
    """One table of the export: a CSV file, or a sheet of the workbook."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    partner_key: bool = False  # has a pseudonym that refers to participants.pseudonym

    def kept(self, *, free_text: bool, voice: bool) -> Table:
        """The table without the columns an export's options leave out."""
        columns = tuple(
            c for c in self.columns if (free_text or not c.free_text) and (voice or not c.voice)
        )
        return replace(self, columns=columns)

    @property
    def names(self) -> list[str]:
        """The column names, in order (the CSV header)."""
        return [c.name for c in self.columns]


_ANSWER_COLUMNS = (
    Column("answer_id", "integer", required=True),
    Column("pseudonym", required=True),
    Column("group"),
    Column("checkin_id", "integer", required=True),
    Column("checkin_kind", values="checkin_kind"),
    Column("checkin_key"),
    Column("planned_local_date", "date"),
    Column("question_id", required=True),
    Column("question_wording"),
    Column("wording_version"),
    Column("value"),
    Column("value_label"),
    Column("free_text", free_text=True),
    Column("voice_file", voice=True),
    Column("voice_seconds", "integer"),
    Column("skipped", "boolean"),
    Column("answered_at_utc", "datetime", required=True),
    Column("answered_at_local", "datetime", format="any"),
    Column("reminder_sent", "boolean"),
    Column("seconds_to_answer", "integer"),
    Column("partner_withdrawn", "boolean"),
)

RESPONSES = Table("responses", _ANSWER_COLUMNS, ("answer_id",), partner_key=True)
ANSWER_HISTORY = Table(
    "answer_history",
    (*_ANSWER_COLUMNS, Column("superseded_at_utc", "datetime", required=True)),
    ("answer_id",),
    partner_key=True,
)
CHECKINS = Table(
    "checkins",
    (
        Column("checkin_id", "integer", required=True),
        Column("pseudonym", required=True),
        Column("group"),
        Column("checkin_kind", values="checkin_kind"),
        Column("checkin_key"),
        Column("planned_local_date", "date"),
        Column("due_at_utc", "datetime"),
        Column("opened_at_utc", "datetime"),
        Column("completed_at_utc", "datetime"),
        Column("closes_at_utc", "datetime"),
        Column("status", values="checkin_status", required=True),
        Column("reason"),
        Column("reminder_sent", "boolean"),
        Column("answers", "integer"),
        Column("partner_withdrawn", "boolean"),
    ),
    ("checkin_id",),
    partner_key=True,
)
MEETINGS = Table(
    "meetings",
    (
        Column("meeting_id", "integer", required=True),
        Column("title"),
        Column("starts_at_utc", "datetime"),
        Column("starts_at_local", "datetime", format="any"),
        Column("timezone"),
        Column("length_minutes", "integer"),
        Column("groups"),
        Column("cancelled_at_utc", "datetime"),
    ),
    ("meeting_id",),
)
ATTENDANCE = Table(
    "attendance",
    (
        Column("meeting_id", "integer", required=True),
        Column("pseudonym", required=True),
        Column("group"),
        Column("said", values="said"),
        Column("said_at_utc", "datetime"),
        Column("attended", "boolean"),
        Column("minutes", "integer"),
    ),
    ("meeting_id", "pseudonym"),
    partner_key=True,
)
INVOLVEMENT = Table(
    "involvement",
    (
        Column("involvement_id", "integer", required=True),
        Column("pseudonym", required=True),
        Column("group"),
        Column("kind"),
        Column("meeting_id", "integer"),
        Column("attended", "boolean"),
        Column("minutes", "integer"),
        Column("occurred_at_utc", "datetime"),
        Column("occurred_at_local", "datetime", format="any"),
        Column("recorded_at_utc", "datetime"),
    ),
    ("involvement_id",),
    partner_key=True,
)
QUESTIONS = Table(
    "questions",
    (
        Column("question_id", required=True),
        Column("question_kind"),
        Column("question_wording"),
        Column("wording_version"),
        Column("optional", "boolean"),
        Column("scale_min", "integer"),
        Column("scale_max", "integer"),
    ),
    ("question_id",),
)
VALUE_LABELS = Table(
    "value_labels",
    (Column("question_id", required=True), Column("value", required=True), Column("label")),
    ("question_id", "value"),
)
CODEBOOK = Table(
    "codebook",
    (
        Column("file", required=True),
        Column("column", required=True),
        Column("type"),
        Column("description"),
        Column("values"),
    ),
    ("file", "column"),
)


def participants_table(protocol: StudyProtocol) -> Table:
    """The participants table: one consent column per consent item of the protocol."""
    consent = tuple(
        Column(f"consent_{c.key}", "boolean", about="consent", about_values={"key": c.key})
        for c in protocol.consent
    )
    return Table(
        "participants",
        (
            Column("pseudonym", required=True),
            Column("group"),
            Column("enrolled_on", "date"),
            Column("state", values="state", required=True),
            *consent,
            Column("withdrawn_at_utc", "datetime"),
        ),
        ("pseudonym",),
    )


# -- words -----------------------------------------------------------------------------------


def describe(prompts: Prompts, column: Column) -> str:
    """What ``column`` holds, in words."""
    return prompts.label(f"research.columns.{column.about or column.name}", **column.about_values)


def value_words(prompts: Prompts, group: str) -> dict[str, str]:
    """The labels of a coded column's values, e.g. check-in statuses."""
    return prompts.labels(f"research.values.{group}")


def question_wording(prompts: Prompts, question: Question) -> str:
    """The question as the protocol words it (markup removed, no name filled in)."""
    import re

    html = prompts.render(question.wording, name="")
    return re.sub(r"<[^>]+>", "", html).strip()


def wording_version(wording: str) -> str:
    """A short fingerprint of a wording: analysts can split answers by it."""
    return hashlib.sha256(wording.encode("utf-8")).hexdigest()[:8]


def answer_labels(prompts: Prompts, question: Question) -> dict[str, str]:
    """Every coded answer of ``question`` with its words (scale ends and choices)."""
    if question.kind == "choice":
        return {o.key: prompts.label(o.label) for o in question.options}
    if question.kind == "scale" and question.min is not None and question.max is not None:
        labels = {str(n): str(n) for n in range(question.min, question.max + 1)}
        labels[str(question.min)] = f"{question.min} = {prompts.label(question.low_label or '')}"
        labels[str(question.max)] = f"{question.max} = {prompts.label(question.high_label or '')}"
        return labels
    return {}


def table_resource(
    prompts: Prompts, table: Table, *, path: str, fmt: str, sheet: str | None = None
) -> dict[str, Any]:
    """The Data Package resource (with its Table Schema) describing ``table``."""
    fields = []
    for column in table.columns:
        described: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "description": describe(prompts, column),
        }
        if column.format:
            described["format"] = column.format
        constraints: dict[str, Any] = {}
        if column.required:
            constraints["required"] = True
        if column.values:
            words = value_words(prompts, column.values)
            described["categories"] = [{"value": k, "label": v} for k, v in words.items()]
            constraints["enum"] = list(words)
        if constraints:
            described["constraints"] = constraints
        fields.append(described)
    schema: dict[str, Any] = {"fields": fields}
    if table.primary_key:
        schema["primaryKey"] = list(table.primary_key)
    if table.partner_key:
        schema["foreignKeys"] = [
            {
                "fields": "pseudonym",
                "reference": {"resource": "participants", "fields": "pseudonym"},
            }
        ]
    resource: dict[str, Any] = {
        "name": table.name,
        "path": path,
        "description": prompts.label(f"research.tables.{table.name}"),
        "schema": schema,
    }
    if fmt == "csv":
        resource.update(
            {
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "profile": "tabular-data-resource",
            }
        )
    else:
        resource.update(
            {
                "format": "xlsx",
                "mediatype": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                "dialect": {"sheet": sheet or table.name},
                "profile": "tabular-data-resource",
            }
        )
    return resource


def codebook_rows(prompts: Prompts, tables: list[Table], *, fmt: str) -> list[list[str]]:
    """``codebook.csv``: one row per column of every table."""
    rows = []
    for table in tables:
        where = f"{table.name}.csv" if fmt == "csv" else table.name
        for column in table.columns:
            values = ""
            if column.values:
                words = value_words(prompts, column.values)
                values = "; ".join(f"{k} = {v}" for k, v in words.items())
            rows.append([where, column.name, column.type, describe(prompts, column), values])
    return rows
