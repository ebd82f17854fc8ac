"""The rows of ``responses.csv``, ``answer_history.csv`` and ``checkins.csv``, as CSV text.

This module is lean on purpose (the standard library and the text cipher, nothing of the bot or
SQLAlchemy): :mod:`bot.research.shard` runs it in a helper process that writes part of a big
export, and that process should not carry the bot's memory. Everything a row needs that is not
in the query row is in :class:`RowContext`, which can travel to that process as plain data.

The query rows come from :func:`storage.queries.research.answers` and
:func:`storage.queries.research.checkins`, with times already as UTC text. A batch of them
becomes one string of CSV lines, one line per query row: these tables run to a million rows,
and most of a row (the person, the check-in, the question with its wording and the value's
label) repeats from row to row, so each of those is made into CSV once and reused, where the
``csv`` module would look at all twenty fields of every row again. The workbook (``--format
xlsx``) reads the same lines back, so what a row holds has this one home.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storage.crypto import TextCipher

UTC_ZONE = ZoneInfo("UTC")
_fromisoformat = datetime.fromisoformat
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')
_HOUR = timedelta(hours=1)
_LAST_OF_HOUR = _HOUR - timedelta(microseconds=1)


def csv_field(value: str) -> str:
    """``value`` as one CSV field: quoted, with its quotes doubled, only where it has to be.

    A line break of either kind needs it: Python's ``csv`` writer leaves a lone carriage
    return bare when lines end in a newline, and readers take it for the end of the row.
    """
    if _NEEDS_QUOTES.search(value) is None:
        return value
    return '"' + value.replace('"', '""') + '"'


def csv_line(values: Iterable[Any]) -> str:
    """One CSV line of ``values`` (text as it is, None as empty, anything else as ``str``)."""
    return (
        ",".join(
            csv_field(v if isinstance(v, str) else "" if v is None else str(v)) for v in values
        )
        + "\n"
    )


@dataclass(frozen=True)
class Partner:
    """How one person appears in the export."""

    pseudonym: str
    group: str
    zone: ZoneInfo
    withdrawn: str  # "true" / "false", ready for the row


@dataclass(frozen=True)
class Question:
    """How one question of the protocol appears in the export."""

    wording: str
    version: str
    labels: dict[str, str]


_NOBODY = Partner("", "", UTC_ZONE, "")


def local_time(utc: str | None, zone: ZoneInfo) -> str:
    """A UTC text time as ISO 8601 in ``zone``, with its offset, to the second."""
    if not utc:
        return ""
    return _fromisoformat(utc).astimezone(zone).isoformat(timespec="seconds")


class LocalClock:
    """:func:`local_time` for one zone, for a million times: the offset looked up once an hour.

    Converting a time with ``zoneinfo`` costs about 1.5 µs, and an offset holds for months.
    So the local date and hour are worked out once per UTC hour, and each time in that hour
    takes its minutes and seconds from the UTC text as they are. An hour that holds a change
    of offset, or whose offset is not whole hours (India, Newfoundland), is converted time by
    time instead, as is a text that is not 20 characters ending in ``Z`` (the queries give
    ``YYYY-MM-DDTHH:MM:SSZ`` and nothing else). Offsets never change twice within one hour,
    so an hour with the same offset at its first and last microsecond has it throughout.
    """

    MAX_HOURS = 2_000  # about 0.5 MB for a zone; forgotten all at once beyond that

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._hours: dict[str, tuple[str, str] | None] = {}

    def time(self, utc: str | None) -> str:
        """``utc`` (``YYYY-MM-DDTHH:MM:SSZ``) as ISO 8601 in this zone, with its offset."""
        if not utc:
            return ""
        hour = utc[:13]
        try:
            known = self._hours[hour]
        except KeyError:
            known = self._learn(hour)
        if known is None or len(utc) != 20 or utc[19] != "Z":
            return local_time(utc, self.zone)
        return known[0] + utc[13:19] + known[1]

    def date(self, utc: str | None) -> str:
        """The date in this zone of a UTC text time."""
        return self.time(utc)[:10]

    def _learn(self, hour: str) -> tuple[str, str] | None:
        if len(self._hours) >= self.MAX_HOURS:
            self._hours.clear()
        try:
            start = _fromisoformat(hour + ":00:00+00:00")
        except ValueError:
            return None  # not a time this clock reads; local_time will say what is wrong
        first = start.astimezone(self.zone)
        offset = first.utcoffset()
        last = (start + _LAST_OF_HOUR).astimezone(self.zone)
        known = None
        if offset is not None and offset == last.utcoffset() and not offset % _HOUR:
            stamp = first.isoformat(timespec="seconds")  # YYYY-MM-DDTHH:00:00+HH:MM
            known = (stamp[:13], stamp[19:])
        self._hours[hour] = known
        return known


class RowContext:
    """What every row builder needs besides the query row: people, questions and the cipher."""

    def __init__(
        self,
        *,
        questions: dict[str, Question],
        kinds: dict[str, str],
        unreadable: str,
        cipher: TextCipher,
        pseudonym: Callable[[str], str],
        free_text: bool,
        voice: bool,
    ) -> None:
        self.questions = questions
        self.kinds = kinds
        self.unreadable = unreadable
        self.cipher = cipher
        self.pseudonym = pseudonym
        self.free_text = free_text
        self.voice = voice
        self.people: dict[int, Partner] = {}
        self.voice_files: list[tuple[str, str]] = []  # (stored path, name in the zip)
        self._clocks: dict[ZoneInfo, LocalClock] = {}
        self._question_cells: dict[tuple[str, str], str] = {}

    def kind(self, checkin_key: str, manual: bool) -> str:
        """The check-in's kind as the export names it."""
        if manual:
            return "partner"
        return self.kinds.get(checkin_key, checkin_key)

    def partner(self, person_id: int) -> Partner:
        """The person as the export shows them."""
        known = self.people.get(person_id)
        if known is None:  # a person outside the partner list (never expected): no identity
            known = Partner(self.pseudonym(f"id:{person_id}"), "", UTC_ZONE, "")
            self.people[person_id] = known
        return known

    def clock(self, zone: ZoneInfo) -> LocalClock:
        """The clock for ``zone``, one for everyone in it."""
        clock = self._clocks.get(zone)
        if clock is None:
            clock = self._clocks[zone] = LocalClock(zone)
        return clock

    def question_cells(self, question_key: str, value: str) -> str:
        """The question, its wording and version, the value and its label, as CSV fields."""
        key = (question_key, value)
        cells = self._question_cells.get(key)
        if cells is None:
            question = self.questions.get(question_key)
            wording, version, label = "", "", ""
            if question is not None:
                wording, version = question.wording, question.version
                label = question.labels.get(value, value) if value else ""
            cells = ",".join(map(csv_field, (question_key, wording, version, value, label)))
            self._question_cells[key] = cells
        return cells

    def open_texts(self, sealed: Sequence[str]) -> list[str]:
        """Encrypted free text as the partners wrote it, or a note where its key is gone."""
        unreadable = self.unreadable
        return [unreadable if text is None else text for text in self.cipher.decrypt_many(sealed)]

    def to_plain(self) -> dict[str, Any]:
        """Everything but the cipher and the pseudonym maker, as JSON-ready data."""
        return {
            "questions": {
                key: [q.wording, q.version, q.labels] for key, q in self.questions.items()
            },
            "kinds": self.kinds,
            "unreadable": self.unreadable,
            "free_text": self.free_text,
            "voice": self.voice,
            "people": [
                [pid, p.pseudonym, p.group, p.zone.key, p.withdrawn]
                for pid, p in self.people.items()
            ],
        }

    @classmethod
    def from_plain(
        cls, plain: dict[str, Any], cipher: TextCipher, pseudonym: Callable[[str], str]
    ) -> RowContext:
        """The context :meth:`to_plain` described."""
        ctx = cls(
            questions={
                key: Question(wording, version, labels)
                for key, (wording, version, labels) in plain["questions"].items()
            },
            kinds=plain["kinds"],
            unreadable=plain["unreadable"],
            cipher=cipher,
            pseudonym=pseudonym,
            free_text=plain["free_text"],
            voice=plain["voice"],
        )
        zones: dict[str, ZoneInfo] = {}
        for pid, pseudonym_, group, zone, withdrawn in plain["people"]:
            if zone not in zones:
                zones[zone] = ZoneInfo(zone)
            ctx.people[pid] = Partner(pseudonym_, group, zones[zone], withdrawn)
        return ctx


def _person_cells(partner: Partner) -> str:
    """The pseudonym and the group, as CSV fields."""
    return f"{csv_field(partner.pseudonym)},{csv_field(partner.group)}"


def _checkin_cells(
    ctx: RowContext, clock: LocalClock, checkin_key: str, manual: Any, due_at: str | None
) -> str:
    """A check-in's kind, key and planned local date, as CSV fields."""
    kind = ctx.kind(checkin_key, bool(manual))
    return f"{csv_field(kind)},{csv_field(checkin_key)},{clock.date(due_at)}"


_TEXT, _ENCRYPTED = 9, 10  # where the answers query has the free text and its flag


def answer_csv(ctx: RowContext, rows: Sequence[Any], *, history: bool) -> str:
    """Lines of responses.csv (or answer_history.csv), one per row of the answers query."""
    free_text = ctx.free_text
    voice = ctx.voice
    question_cells = ctx.question_cells
    sealed = [r[_TEXT] for r in rows if r[_TEXT] and r[_ENCRYPTED]] if free_text else []
    opened = iter(ctx.open_texts(sealed))  # decrypted together: much cheaper than one by one
    out = io.StringIO()
    add = out.write
    last_checkin = None
    partner, clock, checkin_cells = _NOBODY, ctx.clock(UTC_ZONE), ""  # set by the first row
    for r in rows:
        (
            answer_id,
            checkin_id,
            person_id,
            checkin_key,
            manual,
            due_at,
            question_key,
            number,
            choice,
            stored_text,
            encrypted,
            voice_seconds,
            voice_path,
            skipped,
            answered_at,
            seconds,
            reminded,
            superseded_at,
        ) = r
        if checkin_id != last_checkin:
            last_checkin = checkin_id
            partner = ctx.partner(person_id)
            clock = ctx.clock(partner.zone)
            checkin_cells = (
                f"{_person_cells(partner)},{checkin_id},"
                f"{_checkin_cells(ctx, clock, checkin_key, manual, due_at)}"
            )
        if number is not None:
            value = str(number)
        elif choice is not None:
            value = choice
        else:
            value = ""
        line = f"{answer_id},{checkin_cells},{question_cells(question_key, value)}"
        if free_text:
            if not stored_text:
                line += ","
            else:
                line += "," + csv_field(next(opened) if encrypted else stored_text)
        if voice:
            if voice_path:
                name = f"voice/{partner.pseudonym}-{answer_id}.ogg"
                ctx.voice_files.append((voice_path, name))
                line += "," + csv_field(name)
            else:
                line += ","
        line += (
            f",{'' if voice_seconds is None else voice_seconds}"
            f",{'true' if skipped else 'false'}"
            f",{answered_at},{clock.time(answered_at)},{reminded}"
            f",{'' if seconds is None else seconds},{partner.withdrawn}"
        )
        if history:
            line += "," + (superseded_at or "")
        add(line)
        add("\n")
    return out.getvalue()


def checkin_csv(ctx: RowContext, rows: Sequence[Any]) -> str:
    """Lines of checkins.csv, one per row of the check-ins query."""
    out = io.StringIO()
    for r in rows:
        (
            checkin_id,
            person_id,
            checkin_key,
            manual,
            due_at,
            opened_at,
            completed_at,
            closes_at,
            status,
            reason,
            reminded,
            answers,
        ) = r
        partner = ctx.partner(person_id)
        out.write(
            ",".join(
                (
                    str(checkin_id),
                    _person_cells(partner),
                    _checkin_cells(ctx, ctx.clock(partner.zone), checkin_key, manual, due_at),
                    due_at or "",
                    opened_at or "",
                    completed_at or "",
                    closes_at or "",
                    csv_field(status),
                    csv_field(reason or ""),
                    reminded,
                    str(answers),
                    partner.withdrawn,
                )
            )
        )
        out.write("\n")
    return out.getvalue()
