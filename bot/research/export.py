"""``companion export`` and ``/export``: one zip of long-format tables with their codebook.

The zip holds ``responses.csv`` (one row per answer in force), ``answer_history.csv``,
``checkins.csv``, ``participants.csv``, ``meetings.csv``, ``attendance.csv``,
``involvement.csv``, ``questions.csv`` and ``value_labels.csv`` (or, with ``xlsx``, the same
tables as sheets of ``export.xlsx``), a Frictionless ``datapackage.json`` and ``codebook.csv``,
``README.txt``, the study protocol, voice notes under ``voice/`` and ``SHA256SUMS``.

People appear only under their research pseudonym (:mod:`bot.research.pseudonyms`); no Telegram
id, username or name is read. Rows are streamed a batch at a time from the database into the
zip (XlsxWriter in ``constant_memory`` mode for sheets), so memory stays flat however big the
study. The zip is written under a temporary name and renamed when complete, and every export
is recorded in the audit log with its filters, row counts and checksum.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Dialect, Select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.zones import zone_named
from bot.partners.voice_files import read_voice
from bot.protocol import StudyProtocol
from bot.research import codebook as cb
from bot.research import parts, reading
from bot.research.pseudonyms import Pseudonymiser
from bot.research.reading import Target, plain_sql
from bot.research.rows import (
    Partner,
    Question,
    RowContext,
    answer_csv,
    checkin_csv,
    csv_line,
)
from prompts import Prompts
from storage.clock import utcnow
from storage.crypto import TextCipher
from storage.db import Database
from storage.models import AuditEvent, PersonStatus
from storage.queries import research as q

Format = Literal["csv", "xlsx"]
Progress = Callable[[str, int, int | None], None]  # table, rows written so far, rows in all
WORKBOOK = "export.xlsx"


class ExportError(ValueError):
    """The export cannot be made; ``reason`` names the label that explains why."""

    def __init__(self, reason: str, /, **values: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values

    def sentence(self, prompts: Prompts) -> str:
        """The one plain sentence for a person."""
        return prompts.label(f"research.cli.{self.reason}", **self.values)


@dataclass(frozen=True)
class ExportOptions:
    """What to export and where."""

    out: Path
    format: Format = "csv"
    window: q.Window = field(default_factory=q.Window)
    free_text: bool = True
    voice: bool = True
    jobs: int | None = None  # processes for a big responses.csv; None: one per core
    #: Write one part of a big responses.csv in this process; a running bot (/export) leaves
    #: every part to helpers so that its own process keeps answering partners.
    own_part: bool = True

    def filters(self) -> dict[str, Any]:
        """The filters, as recorded in README.txt and the audit log."""
        window = self.window
        return {
            "since": window.since.date().isoformat() if window.since else None,
            "until": (window.until - timedelta(days=1)).date().isoformat()
            if window.until
            else None,
            "groups": list(window.groups),
            "free_text": self.free_text,
            "voice": self.voice,
            "format": self.format,
        }


@dataclass
class ExportResult:
    """A finished export."""

    path: Path
    rows: dict[str, int]
    sha256: str
    size: int
    options: ExportOptions
    voice_notes: int
    helper_peaks_mb: tuple[float, ...] = ()  # each helper process's peak memory, if any


def parse_day(option: str, value: str | None) -> date | None:
    """A ``--since``/``--until`` value as a date; ExportError with a plain reason if it is not."""
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ExportError("bad_date", option=option, value=value) from exc


def make_window(
    protocol: StudyProtocol,
    *,
    since: date | None = None,
    until: date | None = None,
    groups: Sequence[str] = (),
) -> q.Window:
    """The rows to export: whole UTC days from ``since`` to ``until`` (both included)."""
    known = [g.key for g in protocol.groups]
    for group in groups:
        if group not in known:
            raise ExportError("unknown_group", group=group, known=", ".join(known))
    if since is not None and until is not None and since > until:
        raise ExportError("dates_reversed", since=since.isoformat(), until=until.isoformat())
    return q.Window(
        since=datetime.combine(since, datetime.min.time(), UTC) if since else None,
        until=datetime.combine(until, datetime.min.time(), UTC) + timedelta(days=1)
        if until
        else None,
        groups=tuple(dict.fromkeys(groups)),
    )


def check_destination(out: Path) -> None:
    """Refuse an output that is not a ``.zip`` in a folder we can write, before any work."""
    if out.suffix.lower() != ".zip":
        raise ExportError("not_a_zip", path=out)
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise ExportError("unwritable", path=out, reason="it is a folder")
    if not folder.is_dir():
        raise ExportError("unwritable", path=out, reason=f"the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ExportError("unwritable", path=out, reason=f"the folder {folder} is not writable")


# -- formatting ------------------------------------------------------------------------------


def _utc(value: datetime | None) -> str:
    """ISO 8601 in UTC with a Z, to the second (Table Schema's default datetime format)."""
    if value is None:
        return ""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="seconds")[:19] + "Z"  # "+00:00" becomes "Z"


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    """ISO 8601 in ``zone``, with its offset, to the second."""
    if value is None:
        return ""
    return value.astimezone(zone).isoformat(timespec="seconds")


def _bool(value: bool | None) -> str:
    if value is None:
        return ""
    return "true" if value else "false"


class _Context(RowContext):
    """The row builders' context, made from the protocol, its words and the options."""

    def __init__(
        self,
        protocol: StudyProtocol,
        prompts: Prompts,
        cipher: TextCipher,
        pseudonyms: Pseudonymiser,
        options: ExportOptions,
    ) -> None:
        questions = {}
        for question in protocol.questions:
            wording = cb.question_wording(prompts, question)
            questions[question.key] = Question(
                wording, cb.wording_version(wording), cb.answer_labels(prompts, question)
            )
        super().__init__(
            questions=questions,
            kinds={c.key: c.schedule for c in protocol.checkins},
            unreadable=prompts.label("research.unreadable_text"),
            cipher=cipher,
            pseudonym=pseudonyms,
            free_text=options.free_text,
            voice=options.voice,
        )
        self.protocol = protocol
        self.prompts = prompts
        self.pseudonyms = pseudonyms
        self.options = options
        self.helper_peaks_mb: list[float] = []  # of the processes that wrote parts


# -- writing ---------------------------------------------------------------------------------


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes what passes through it on the way to ``target``."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sha.update(data)
        return self.target.write(data)


class _Sink(Protocol):
    def table(self, table: cb.Table) -> _TableWriter: ...


class _TableWriter(Protocol):
    def rows(self, rows: Iterable[list[Any]]) -> None: ...

    def lines(self, text: str) -> None: ...

    def close(self) -> None: ...


class _Zip:
    """The zip being written, with a SHA-256 of every member for SHA256SUMS."""

    def __init__(self, path: Path) -> None:
        self.archive = zipfile.ZipFile(
            path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
        )
        self.sums: list[tuple[str, str]] = []

    def add_bytes(self, name: str, data: bytes) -> None:
        self.archive.writestr(name, data)
        self.sums.append((hashlib.sha256(data).hexdigest(), name))

    def add_file(self, name: str, path: Path) -> None:
        sha = hashlib.sha256()
        with path.open("rb") as source, self.archive.open(name, "w", force_zip64=True) as target:
            while chunk := source.read(1 << 20):
                sha.update(chunk)
                target.write(chunk)
        self.sums.append((sha.hexdigest(), name))

    def close(self) -> None:
        listing = "".join(f"{sha}  {name}\n" for sha, name in self.sums)
        self.archive.writestr("SHA256SUMS", listing)
        self.archive.close()


class _CsvTable:
    def __init__(self, bundle: _Zip, table: cb.Table) -> None:
        self.bundle = bundle
        self.name = f"{table.name}.csv"
        self.raw = bundle.archive.open(self.name, "w", force_zip64=True)
        self.hashing = _Hashing(self.raw)
        buffered = io.BufferedWriter(self.hashing, buffer_size=1 << 16)
        self.text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
        self.text.write(csv_line(table.names))

    def rows(self, rows: Iterable[list[Any]]) -> None:
        self.text.write("".join(map(csv_line, rows)))

    def lines(self, text: str) -> None:
        """Append rows already made into CSV lines (:mod:`bot.research.rows`)."""
        self.text.write(text)

    def append_raw(self, data: bytes) -> None:
        """Append CSV rows already encoded (a part written by a helper process)."""
        self.text.flush()
        self.text.buffer.write(data)

    def close(self) -> None:
        self.text.flush()
        self.text.detach().flush()
        self.raw.close()
        self.bundle.sums.append((self.hashing.sha.hexdigest(), self.name))


class _CsvSink:
    def __init__(self, bundle: _Zip) -> None:
        self.bundle = bundle

    def table(self, table: cb.Table) -> _TableWriter:
        return _CsvTable(self.bundle, table)


_NUMBER_TYPES: dict[str, Callable[[str], Any]] = {"integer": int, "number": float}


class _SheetTable:
    def __init__(self, workbook: Any, table: cb.Table) -> None:
        self.sheet = workbook.add_worksheet(table.name)
        self.sheet.write_row(0, 0, table.names)
        self.next_row = 1
        self.converters = [_NUMBER_TYPES.get(c.type) for c in table.columns]

    def rows(self, rows: Iterable[list[Any]]) -> None:
        sheet, index = self.sheet, self.next_row
        for row in rows:
            sheet.write_row(index, 0, row)
            index += 1
        self.next_row = index

    def lines(self, text: str) -> None:
        """Rows made into CSV lines, read back into cells, a number column's as numbers."""
        typed = self.converters
        self.rows(
            [convert(v) if convert and v else v for convert, v in zip(typed, row, strict=True)]
            for row in csv.reader(io.StringIO(text))
        )

    def close(self) -> None:
        return None


class _SheetSink:
    def __init__(self, path: Path) -> None:
        import xlsxwriter

        self.workbook = xlsxwriter.Workbook(
            str(path),
            {"constant_memory": True, "strings_to_numbers": False, "strings_to_urls": False},
        )

    def table(self, table: cb.Table) -> _TableWriter:
        return _SheetTable(self.workbook, table)

    def close(self) -> None:
        self.workbook.close()


class _Counter:
    """Counts the rows as the writer takes them, and reports progress."""

    def __init__(self, name: str, total: int | None, progress: Progress | None) -> None:
        self.name, self.total, self.progress, self.count = name, total, progress, 0

    def reached(self, count: int) -> None:
        """``count`` rows are written: report it."""
        self.count = count
        if self.progress is not None:
            self.progress(self.name, count, self.total)


Build = Callable[[Sequence[Any]], str]  # query rows to CSV lines, one per row


@dataclass(frozen=True)
class _Source:
    """Where the big tables are read: with the plain driver on a connection of their own
    (:mod:`bot.research.reading`), or through the session for a database only it can see (an
    SQLite database in memory)."""

    session: AsyncSession
    target: Target | None

    def batches(self, statement: Select) -> AsyncIterator[Sequence[Any]]:
        """The rows of ``statement``, a batch at a time."""
        if self.target is None:
            return q.stream(self.session, statement)
        return reading.batches(self.target, plain_sql(statement, self.dialect))

    @property
    def dialect(self) -> Dialect:
        """The database's SQL dialect."""
        return self.session.get_bind().dialect


async def _stream_into(
    source: _Source, writer: _TableWriter, statement: Select, build: Build, counter: _Counter
) -> None:
    """The rows of ``statement``, a batch at a time, built and written, and counted."""
    async for batch in source.batches(statement):
        writer.lines(build(batch))
        counter.reached(counter.count + len(batch))


async def _write_streamed(
    source: _Source,
    sink: _Sink,
    table: cb.Table,
    statement: Select,
    build: Build,
    *,
    total: int | None = None,
    progress: Progress | None = None,
) -> int:
    writer = sink.table(table)
    counter = _Counter(table.name, total, progress)
    try:
        await _stream_into(source, writer, statement, build, counter)
    finally:
        writer.close()
    return counter.count


def _write_rows(sink: _Sink, table: cb.Table, rows: list[list[Any]]) -> int:
    writer = sink.table(table)
    try:
        writer.rows(rows)
    finally:
        writer.close()
    return len(rows)


async def _load_partners(session: AsyncSession, ctx: _Context) -> list[list[Any]]:
    """Fill ``ctx.people`` and return the participants rows."""
    protocol, now = ctx.protocol, utcnow()
    consents: dict[int, dict[str, bool]] = {}
    async for batch in q.stream(session, q.consent_decisions(ctx.options.window)):
        for person_id, item, granted in batch:
            consents.setdefault(person_id, {})[item] = bool(granted)
    rows = []
    async for batch in q.stream(session, q.partners(ctx.options.window)):
        for r in batch:
            (pid, internal, status, group, zone_name, enrolled, paused, withdrawn, changed) = r
            withdrawn_now = status == PersonStatus.WITHDRAWN
            partner = Partner(
                ctx.pseudonyms(internal),
                group or "",
                zone_named(zone_name or protocol.groups[0].timezone),
                "true" if withdrawn_now else "false",
            )
            ctx.people[pid] = partner
            state = str(status)
            if status == PersonStatus.ACTIVE and paused is not None and paused > now:
                state = "paused"
            mine = consents.get(pid, {})
            rows.append(
                [
                    partner.pseudonym,
                    partner.group,
                    enrolled.date().isoformat() if enrolled else "",
                    state,
                    *[_bool(mine.get(c.key)) for c in protocol.consent],
                    _utc(withdrawn or (changed if withdrawn_now else None)),
                ]
            )
    return rows


async def _meeting_rows(
    session: AsyncSession, ctx: _Context
) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]]]:
    """Meetings, attendance and involvement rows (small tables: read whole)."""
    window = ctx.options.window
    wanted = set(window.groups)
    meetings = []
    kept: set[int] = set()
    for r in (await session.execute(q.meetings(window))).all():
        (mid, title, starts_at, zone_name, length, groups, _version, cancelled_at) = r
        groups = list(groups or [])
        if wanted and groups and not wanted & set(groups):
            continue
        kept.add(mid)
        meetings.append(
            [
                mid,
                title,
                _utc(starts_at),
                _local(starts_at, zone_named(zone_name)),
                zone_name,
                length,
                " ".join(groups),
                _utc(cancelled_at),
            ]
        )
    attendance = []
    for r in (await session.execute(q.attendance(window))).all():
        (mid, pid, said, said_at, attended, minutes) = r
        if mid not in kept:
            continue
        partner = ctx.partner(pid)
        attendance.append(
            [
                mid,
                partner.pseudonym,
                partner.group,
                said,
                _utc(said_at),
                _bool(attended),
                minutes if minutes is not None else "",
            ]
        )
    involvement = []
    for r in (await session.execute(q.involvement(window))).all():
        (iid, pid, kind, mid, attended, minutes, occurred, recorded) = r
        partner = ctx.partner(pid)
        involvement.append(
            [
                iid,
                partner.pseudonym,
                partner.group,
                kind,
                mid if mid is not None else "",
                _bool(attended),
                minutes,
                _utc(occurred),
                _local(occurred, partner.zone),
                _utc(recorded),
            ]
        )
    return meetings, attendance, involvement


def _question_rows(ctx: _Context) -> tuple[list[list[Any]], list[list[Any]]]:
    questions, labels = [], []
    for question in ctx.protocol.questions:
        described = ctx.questions[question.key]
        questions.append(
            [
                question.key,
                question.kind,
                described.wording,
                described.version,
                _bool(question.optional),
                question.min if question.min is not None else "",
                question.max if question.max is not None else "",
            ]
        )
        labels += [[question.key, value, label] for value, label in described.labels.items()]
    return questions, labels


@dataclass(frozen=True)
class _Split:
    """What starting helper processes for ``responses.csv`` takes (see bot.research.parts)."""

    secret: str
    folder: Path
    prefix: str


@dataclass
class _Parts:
    """The export's own part of ``responses.csv`` (a check-in id range, if any) and helpers."""

    own: tuple[int, int] | None
    helpers: list[parts.Part]


async def _start_parts(
    source: _Source, ctx: _Context, span: q.AnswerSpan, split: _Split | None
) -> _Parts | None:
    target = source.target
    if split is None or target is None:
        return None
    options = ctx.options
    cores = parts.usable_cores() if options.jobs is None else options.jobs
    own_share = parts.OWN_SHARE[target[0]] if options.own_part else 1.0
    ranges = parts.plan(span, cores=cores, own_share=own_share)
    if not ranges:
        return None
    own, theirs = (ranges[0], ranges[1:]) if options.own_part else (None, ranges)
    helpers = await parts.start(
        ranges=theirs,
        window=options.window,
        dialect=source.dialect,
        target=target,
        ctx=ctx,
        secret=split.secret,
        folder=split.folder,
        prefix=split.prefix,
    )
    return _Parts(own, helpers)


async def _write_parts(
    source: _Source,
    writer: _TableWriter,
    in_parts: _Parts,
    ctx: _Context,
    *,
    total: int,
    progress: Progress | None,
) -> int:
    """``responses.csv``: the export's own part, then the helpers' parts appended in order."""
    if not isinstance(writer, _CsvTable):
        raise TypeError("only CSV is written in parts")
    counter = _Counter("responses", total, progress)
    try:
        if in_parts.own is not None:
            statement = q.answers(ctx.options.window, in_force=True, checkins=in_parts.own)
            build = partial(answer_csv, ctx, history=False)
            await _stream_into(source, writer, statement, build, counter)
        own = counter.count
        written = await parts.append_all(
            in_parts.helpers, writer.append_raw, counter.reached, done=own
        )
    except parts.PartFailedError as exc:
        raise ExportError("part_failed", reason=str(exc)) from exc
    finally:
        writer.close()
    ctx.voice_files += written.voice_files
    ctx.helper_peaks_mb += written.peaks_mb
    return own + written.rows


async def _write_tables(
    source: _Source,
    sink: _Sink,
    ctx: _Context,
    tables: dict[str, cb.Table],
    *,
    progress: Progress | None,
    split: _Split | None = None,
) -> dict[str, int]:
    """Write every table; a big ``responses.csv`` is written in parts (with helpers), last."""
    window, session = ctx.options.window, source.session
    counts: dict[str, int] = {}
    participants = await _load_partners(session, ctx)
    span = await q.answer_span(session, window, in_force=True)
    in_parts = await _start_parts(source, ctx, span, split)
    try:
        if in_parts is None:
            counts["responses"] = await _write_streamed(
                source,
                sink,
                tables["responses"],
                q.answers(window, in_force=True),
                partial(answer_csv, ctx, history=False),
                total=span.count,
                progress=progress,
            )
        counts["answer_history"] = await _write_streamed(
            source,
            sink,
            tables["answer_history"],
            q.answers(window, in_force=False),
            partial(answer_csv, ctx, history=True),
            progress=progress,
        )
        counts["checkins"] = await _write_streamed(
            source,
            sink,
            tables["checkins"],
            q.checkins(window),
            partial(checkin_csv, ctx),
            progress=progress,
        )
        counts["participants"] = _write_rows(sink, tables["participants"], participants)
        meetings, attendance, involvement = await _meeting_rows(session, ctx)
        counts["meetings"] = _write_rows(sink, tables["meetings"], meetings)
        counts["attendance"] = _write_rows(sink, tables["attendance"], attendance)
        counts["involvement"] = _write_rows(sink, tables["involvement"], involvement)
        questions, labels = _question_rows(ctx)
        counts["questions"] = _write_rows(sink, tables["questions"], questions)
        counts["value_labels"] = _write_rows(sink, tables["value_labels"], labels)
        if in_parts is not None:
            counts["responses"] = await _write_parts(
                source,
                sink.table(tables["responses"]),
                in_parts,
                ctx,
                total=span.count,
                progress=progress,
            )
    finally:
        await parts.stop(in_parts.helpers if in_parts is not None else [])
    return {name: counts[name] for name in tables}


def _tables(protocol: StudyProtocol, options: ExportOptions) -> dict[str, cb.Table]:
    every = [
        cb.RESPONSES,
        cb.ANSWER_HISTORY,
        cb.CHECKINS,
        cb.participants_table(protocol),
        cb.MEETINGS,
        cb.ATTENDANCE,
        cb.INVOLVEMENT,
        cb.QUESTIONS,
        cb.VALUE_LABELS,
    ]
    return {t.name: t.kept(free_text=options.free_text, voice=options.voice) for t in every}


def datapackage(
    protocol: StudyProtocol,
    prompts: Prompts,
    tables: list[cb.Table],
    *,
    fmt: Format,
    made: datetime,
) -> dict[str, Any]:
    """The Frictionless Data Package descriptor of an export."""
    resources = []
    for table in [*tables, cb.CODEBOOK]:
        if fmt == "csv" or table is cb.CODEBOOK:
            resources.append(
                cb.table_resource(prompts, table, path=f"{table.name}.csv", fmt="csv")
            )
        else:
            resources.append(cb.table_resource(prompts, table, path=WORKBOOK, fmt="xlsx"))
    return {
        "profile": "tabular-data-package",
        "name": "involvement-companion-export",
        "title": protocol.study.name,
        "description": prompts.label("research.tables.codebook"),
        "created": _utc(made),
        "resources": resources,
    }


def _csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    return "".join(map(csv_line, [header, *rows])).encode("utf-8")


def _add_voice(bundle: _Zip, ctx: _Context, data_dir: Path) -> int:
    root = data_dir.resolve()
    added = 0
    for stored, name in ctx.voice_files:
        candidate = (root / stored).resolve()
        if not candidate.is_relative_to(root):
            continue
        try:
            audio = read_voice(candidate, ctx.cipher)
        except (OSError, ValueError):
            continue  # not downloaded, removed by retention, or its key is gone
        bundle.add_bytes(name, audio)
        added += 1
    return added


async def write_export(
    db: Database,
    protocol: StudyProtocol,
    prompts: Prompts,
    options: ExportOptions,
    *,
    secret: str | None,
    data_dir: Path,
    study_file: Path | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the export zip described by ``options`` and return what was written.

    Raises ExportError (a plain reason) for a missing key or an unwritable destination; the
    destination is untouched unless the whole zip was written. The caller records it with
    :func:`record_export`.
    """
    try:
        pseudonyms = Pseudonymiser(secret)
    except ValueError as exc:
        raise ExportError("no_key") from exc
    check_destination(options.out)
    made = utcnow()
    ctx = _Context(protocol, prompts, TextCipher(secret), pseudonyms, options)
    tables = _tables(protocol, options)
    out = options.out
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(handle)
    partial = Path(temporary)
    workbook_path = partial.with_name(partial.name + ".xlsx")
    try:
        bundle = _Zip(partial)
        async with db.sessions() as session:
            source = _Source(session, db.plain_driver_target())
            if options.format == "xlsx":
                sheets = _SheetSink(workbook_path)
                counts = await _write_tables(source, sheets, ctx, tables, progress=progress)
                codebook = cb.codebook_rows(prompts, list(tables.values()), fmt="xlsx")
                _write_rows(sheets, cb.CODEBOOK, codebook)
                sheets.close()
                bundle.add_file(WORKBOOK, workbook_path)
            else:
                split = _Split(secret or "", partial.parent, partial.name)
                counts = await _write_tables(
                    source, _CsvSink(bundle), ctx, tables, progress=progress, split=split
                )
                codebook = cb.codebook_rows(prompts, list(tables.values()), fmt="csv")
        bundle.add_bytes("codebook.csv", _csv_bytes(cb.CODEBOOK.names, codebook))
        package = datapackage(
            protocol, prompts, list(tables.values()), fmt=options.format, made=made
        )
        bundle.add_bytes(
            "datapackage.json", json.dumps(package, ensure_ascii=False, indent=2).encode("utf-8")
        )
        voice_count = _add_voice(bundle, ctx, data_dir) if options.voice else 0
        if study_file is not None:
            _add_protocol(bundle, study_file)
        readme = prompts.text(
            "research/export_readme",
            study=protocol.study.name,
            made=_utc(made),
            fmt=options.format,
            tables=[
                {
                    "file": f"{n}.csv" if options.format == "csv" else f"{WORKBOOK} ({n})",
                    "about": prompts.label(f"research.tables.{n}"),
                    "rows": counts[n],
                }
                for n in tables
            ],
            filters=options.filters(),
            voice_count=voice_count,
            withdrawal=protocol.withdrawal.data,
            protocol_file=study_file.name if study_file is not None else None,
        )
        bundle.add_bytes("README.txt", readme.encode("utf-8") + b"\n")
        bundle.close()
        os.replace(partial, out)
    except BaseException:
        _discard(partial)
        raise
    finally:
        _discard(workbook_path)
    sha, size = _checksum(out)
    return ExportResult(out, counts, sha, size, options, voice_count, tuple(ctx.helper_peaks_mb))


def _add_protocol(bundle: _Zip, study_file: Path) -> None:
    if study_file.is_file():
        bundle.add_bytes(f"protocol/{study_file.name}", study_file.read_bytes())


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _checksum(path: Path) -> tuple[str, int]:
    """The SHA-256 and size of a written file."""
    sha = hashlib.sha256()
    with path.open("rb") as written:
        while chunk := written.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest(), path.stat().st_size


def record_export(
    session: AsyncSession, result: ExportResult, *, via: str, actor_person_id: int | None = None
) -> None:
    """Add the export's line to the audit log, in the caller's transaction."""
    session.add(
        AuditEvent(
            at=utcnow(),
            actor_person_id=actor_person_id,
            action="research.export",
            detail={
                "via": via,
                "filters": result.options.filters(),
                "rows": result.rows,
                "voice_notes": result.voice_notes,
                "sha256": result.sha256,
                "bytes": result.size,
                "file": result.path.name,
            },
        )
    )
