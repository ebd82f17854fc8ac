"""The rows of ``responses.csv``, ``answer_history.csv`` and ``checkins.csv``, from query rows.

This module is lean on purpose (the standard library and the text cipher, nothing of the bot or
SQLAlchemy): :mod:`bot.research.shard` runs it in a helper process that writes part of a big
export, and that process should not carry the bot's memory. Everything a row needs that is not
in the query row is in :class:`RowContext`, which can travel to that process as plain data.

The query rows come from :func:`storage.queries.research.answers` and
:func:`storage.queries.research.checkins`, with times already as UTC text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from storage.crypto import TextCipher

UTC_ZONE = ZoneInfo("UTC")
_fromisoformat = datetime.fromisoformat


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


def local_time(utc: str | None, zone: ZoneInfo) -> str:
    """A UTC text time as ISO 8601 in ``zone``, with its offset, to the second."""
    if not utc:
        return ""
    return _fromisoformat(utc).astimezone(zone).isoformat(timespec="seconds")


def local_date(utc: str | None, zone: ZoneInfo) -> str:
    """The date in ``zone`` of a UTC text time."""
    if not utc:
        return ""
    return _fromisoformat(utc).astimezone(zone).date().isoformat()


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

    def text(self, stored: str | None, encrypted: bool) -> str:
        """Free text as the partner wrote it, or a note when its key is gone."""
        if stored is None:
            return ""
        try:
            return self.cipher.decrypt(stored, encrypted)
        except ValueError:
            return self.unreadable

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


def answer_rows(ctx: RowContext, rows: Sequence[Any], *, history: bool) -> Iterator[list[Any]]:
    """Rows of responses.csv (or answer_history.csv) from the answers query."""
    free_text = ctx.free_text
    voice = ctx.voice
    questions = ctx.questions
    people = ctx.people
    last_checkin = None
    planned = kind = ""
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
            text,
            encrypted,
            voice_seconds,
            voice_path,
            skipped,
            answered_at,
            seconds,
            reminded,
            superseded_at,
        ) = r
        partner = people.get(person_id) or ctx.partner(person_id)
        if checkin_id != last_checkin:
            last_checkin = checkin_id
            planned = local_date(due_at, partner.zone)
            kind = ctx.kind(checkin_key, bool(manual))
        question = questions.get(question_key)
        if number is not None:
            value = str(number)
        elif choice is not None:
            value = choice
        else:
            value = ""
        row = [
            answer_id,
            partner.pseudonym,
            partner.group,
            checkin_id,
            kind,
            checkin_key,
            planned,
            question_key,
            question.wording if question else "",
            question.version if question else "",
            value,
            question.labels.get(value, value) if question and value else "",
        ]
        if free_text:
            row.append(ctx.text(text, encrypted))
        if voice:
            if voice_path:
                name = f"voice/{partner.pseudonym}-{answer_id}.ogg"
                ctx.voice_files.append((voice_path, name))
                row.append(name)
            else:
                row.append("")
        row += [
            voice_seconds if voice_seconds is not None else "",
            "true" if skipped else "false",
            answered_at,
            local_time(answered_at, partner.zone),
            reminded,
            seconds if seconds is not None else "",
            partner.withdrawn,
        ]
        if history:
            row.append(superseded_at or "")
        yield row


def checkin_rows(ctx: RowContext, rows: Sequence[Any]) -> Iterator[list[Any]]:
    """Rows of checkins.csv from the check-ins query."""
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
        yield [
            checkin_id,
            partner.pseudonym,
            partner.group,
            ctx.kind(checkin_key, bool(manual)),
            checkin_key,
            local_date(due_at, partner.zone),
            due_at or "",
            opened_at or "",
            completed_at or "",
            closes_at or "",
            status,
            reason or "",
            reminded,
            answers,
            partner.withdrawn,
        ]
