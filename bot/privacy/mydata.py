"""``/mydata``: a copy of everything held about one person (a subject access request).

:func:`collect` reads, for ONE person only, every table that holds something about them:
their identity (Telegram ids and names: it is their own data), profile, invite, consent
decisions, check-ins, every answer including changed ones (free text decrypted), the support
checks (safeguarding alerts) about them under plain, neutral names, the audit lines that
concern them, and the messages the bot sent them. :func:`write_export` puts it in a zip:
``my_data.json`` (all of it), one CSV per table, a ``README.txt`` and their voice notes.
:func:`export_person` does both and records an ``data.access`` audit event.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Text, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.partners.voice_files import audio_name, read_voice
from bot.privacy import views
from prompts import Prompts
from storage.clock import utcnow
from storage.crypto import TextCipher
from storage.models import (
    Answer,
    AuditEvent,
    Checkin,
    ConsentDecision,
    Invite,
    Involvement,
    OutboxMessage,
    PartnerProfile,
    Person,
    RelayedMessage,
    SafeguardingAlert,
)
from storage.queries.impact import changes_for
from storage.queries.people import identity_of

EXPORTS_FOLDER = "exports"
JSON_NAME = "my_data.json"

Row = dict[str, Any]


@dataclass(frozen=True)
class Export:
    """A finished export file."""

    path: Path  # absolute
    relative_path: str  # relative to the data folder (for the outbox)
    filename: str  # the name the person sees
    counts: dict[str, int]


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _row(obj: Any, columns: tuple[str, ...]) -> Row:
    return {name: _value(getattr(obj, name)) for name in columns}


def _decrypted(cipher: TextCipher, stored: str | None, encrypted: bool) -> str | None:
    if stored is None:
        return None
    try:
        return cipher.decrypt(stored, encrypted)
    except ValueError:
        return "[cannot be read: encrypted with a key that is no longer set]"


def _mentions(detail: dict[str, Any], person: Person) -> bool:
    """Whether an audit line's detail is about ``person`` (by id or pseudonym)."""
    for key, value in detail.items():
        if key.endswith("person_id") and value == person.id:
            return True
        if value == person.pseudonym:
            return True
    return False


def _own_detail(detail: dict[str, Any], person: Person) -> dict[str, Any]:
    """An audit detail without anyone else's person ids."""
    return {
        key: value
        for key, value in detail.items()
        if not (key.endswith("person_id") and value not in (None, person.id))
    }


async def collect(
    session: AsyncSession, person: Person, cipher: TextCipher
) -> dict[str, list[Row]]:
    """Every row held about ``person``, table by table (plain JSON-ready values)."""
    pid = person.id
    tables: dict[str, list[Row]] = {}
    tables["person"] = [
        _row(person, ("pseudonym", "role", "status", "status_changed_at", "created_at"))
    ]

    identity = await identity_of(session, pid)
    identities = [identity] if identity is not None else []
    tables["telegram_identity"] = [
        _row(
            i,
            (
                "telegram_user_id",
                "chat_id",
                "first_name",
                "username",
                "preferred_name",
                "language_code",
                "created_at",
            ),
        )
        for i in identities
    ]
    chat_ids = {i.chat_id for i in identities}

    profile = await session.get(PartnerProfile, pid)
    tables["partner_profile"] = (
        [
            _row(
                profile,
                (
                    "group_key",
                    "timezone",
                    "checkin_weekday",
                    "checkin_time",
                    "quiet_start",
                    "quiet_end",
                    "paused_until",
                    "onboarding_step",
                    "enrolled_at",
                    "onboarded_at",
                    "withdrawn_at",
                    "payment_preference",
                ),
            )
        ]
        if profile is not None
        else []
    )

    invites = (
        (await session.execute(select(Invite).where(Invite.used_by_person_id == pid)))
        .scalars()
        .all()
    )
    tables["invite"] = [
        _row(i, ("role", "group_key", "created_at", "expires_at", "used_at")) for i in invites
    ]

    consents = (
        (
            await session.execute(
                select(ConsentDecision)
                .where(ConsentDecision.person_id == pid)
                .order_by(ConsentDecision.decided_at, ConsentDecision.id)
            )
        )
        .scalars()
        .all()
    )
    tables["consent_decisions"] = [
        _row(c, ("item_key", "granted", "decided_at")) for c in consents
    ]

    checkins = (
        (
            await session.execute(
                select(Checkin)
                .where(Checkin.person_id == pid)
                .order_by(Checkin.due_at, Checkin.id)
            )
        )
        .scalars()
        .all()
    )
    tables["checkins"] = [
        _row(
            c,
            (
                "id",
                "checkin_key",
                "status",
                "due_at",
                "opened_at",
                "closes_at",
                "completed_at",
                "reason",
            ),
        )
        for c in checkins
    ]

    answers = (
        (
            await session.execute(
                select(Answer)
                .where(Answer.person_id == pid)
                .order_by(Answer.answered_at, Answer.id)
            )
        )
        .scalars()
        .all()
    )
    tables["answers"] = [
        {
            **_row(
                a,
                (
                    "id",
                    "checkin_id",
                    "question_key",
                    "value_number",
                    "value_choice",
                ),
            ),
            "value_text": _decrypted(cipher, a.value_text, a.text_encrypted),
            **_row(
                a,
                (
                    "voice_file_id",
                    "voice_duration",
                    "voice_path",
                    "skipped",
                    "answered_at",
                    "superseded_at",
                ),
            ),
        }
        for a in answers
    ]

    alerts = (
        (
            await session.execute(
                select(SafeguardingAlert)
                .where(SafeguardingAlert.person_id == pid)
                .order_by(SafeguardingAlert.raised_at, SafeguardingAlert.id)
            )
        )
        .scalars()
        .all()
    )
    tables["support_checks"] = [
        {
            "noticed_at": _value(a.raised_at),
            "reason": a.rule,
            "noticed_in": a.source,
            "answer_id": a.answer_id,
            "team_followed_up_at": _value(a.acknowledged_at),
        }
        for a in alerts
    ]

    candidates = (
        (
            await session.execute(
                select(AuditEvent)
                .where(
                    or_(
                        AuditEvent.actor_person_id == pid,
                        cast(AuditEvent.detail, Text).like(f"%{person.pseudonym}%"),
                        cast(AuditEvent.detail, Text).like(f"%{pid}%"),
                    )
                )
                .order_by(AuditEvent.at, AuditEvent.id)
            )
        )
        .scalars()
        .all()
    )
    tables["audit_events"] = [
        {
            "at": _value(e.at),
            "action": e.action,
            "by_you": e.actor_person_id == pid,
            "detail": _own_detail(e.detail or {}, person),
        }
        for e in candidates
        if e.actor_person_id == pid or _mentions(e.detail or {}, person)
    ]

    to_them = OutboxMessage.person_id == pid
    if chat_ids:
        to_them = or_(to_them, OutboxMessage.chat_id.in_(chat_ids))
    messages = (
        (
            await session.execute(
                select(OutboxMessage)
                .where(to_them)
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
            )
        )
        .scalars()
        .all()
    )
    tables["messages_to_you"] = [
        {
            "kind": m.kind,
            "method": m.method,
            "status": m.status,
            "created_at": _value(m.created_at),
            "sent_at": _value(m.sent_at),
            "text": (m.payload or {}).get("text") or (m.payload or {}).get("caption"),
        }
        for m in messages
    ]

    relayed = await session.execute(
        select(RelayedMessage)
        .where(RelayedMessage.person_id == pid)
        .order_by(RelayedMessage.created_at, RelayedMessage.id)
    )
    tables["messages_with_your_connector"] = [
        {
            "from": "you" if r.direction == "in" else "your connector",
            "kind": r.content_kind,
            "text": _decrypted(cipher, r.text, r.text_encrypted),
            "created_at": _value(r.created_at),
        }
        for r in relayed.scalars()
    ]
    tables.update(await _given_and_changed(session, pid))
    return tables


async def _given_and_changed(session: AsyncSession, pid: int) -> dict[str, list[Row]]:
    """The time they gave (the involvement log) and what they were told it changed."""
    entries = await session.execute(
        select(Involvement).where(Involvement.person_id == pid).order_by(Involvement.occurred_at)
    )
    columns = ("kind", "meeting_id", "attended", "minutes", "expenses_pence", "occurred_at")
    changes = await changes_for(session, pid, limit=10_000)
    return {
        "time_given": [_row(e, (*columns, "status")) for e in entries.scalars()],
        "what_changed": [
            {"text": c.text, "created_at": _value(c.created_at)} for c in reversed(changes)
        ],
    }


def _csv(rows: list[Row]) -> str:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                for k, v in row.items()
            }
        )
    return buffer.getvalue()


def write_export(
    tables: dict[str, list[Row]],
    path: Path,
    *,
    readme: str,
    about: dict[str, Any],
    voice_files: list[Path] | None = None,
    cipher: TextCipher | None = None,
) -> Path:
    """Write the zip at ``path``: JSON, one CSV per table, README and voice notes.

    Voice notes kept encrypted are decrypted with ``cipher`` (one that cannot is left out).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", readme)
        archive.writestr(
            JSON_NAME,
            json.dumps({"about": about, "tables": tables}, ensure_ascii=False, indent=2),
        )
        for name, rows in tables.items():
            # Excel opens UTF-8 CSV correctly only with a byte order mark.
            archive.writestr(f"{name}.csv", "\ufeff" + _csv(rows))
        for voice in voice_files or []:
            try:
                audio = read_voice(voice, cipher or TextCipher(None))
            except (OSError, ValueError):
                continue
            archive.writestr(f"voice/{audio_name(voice)}", audio)
    partial.replace(path)
    return path


def voice_paths(tables: dict[str, list[Row]], data_dir: Path) -> list[Path]:
    """Voice-note files of the answers, inside the data folder only."""
    root = data_dir.resolve()
    paths = []
    for row in tables.get("answers", []):
        stored = row.get("voice_path")
        if not stored:
            continue
        candidate = (root / stored).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            paths.append(candidate)
    return paths


def remove_old_exports(data_dir: Path, pseudonym: str, keep: Path | None = None) -> int:
    """Delete this person's earlier export files (they hold readable answers); return how many."""
    folder = data_dir / EXPORTS_FOLDER
    removed = 0
    if not folder.is_dir():
        return 0
    for old in folder.glob(f"{pseudonym}-*.zip"):
        if keep is not None and old.resolve() == keep.resolve():
            continue
        old.unlink(missing_ok=True)
        removed += 1
    return removed


async def export_person(
    session: AsyncSession,
    person: Person,
    *,
    cipher: TextCipher,
    prompts: Prompts,
    data_dir: Path,
    study_name: str,
    now: datetime | None = None,
) -> Export:
    """Collect and write ``person``'s data, audit the access, and return the file.

    The zip is written before the caller commits; the audit event is in the caller's
    transaction. Earlier exports of the same person are removed.
    """
    now = now or utcnow()
    tables = await collect(session, person, cipher)
    counts = {name: len(rows) for name, rows in tables.items()}
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    relative = f"{EXPORTS_FOLDER}/{person.pseudonym}-{stamp}.zip"
    voices = await asyncio.to_thread(voice_paths, tables, data_dir)
    readme = views.mydata_readme(
        prompts,
        study=study_name,
        made=now,
        pseudonym=person.pseudonym,
        counts=counts,
        voice=bool(voices),
    )
    path = await asyncio.to_thread(
        write_export,
        tables,
        data_dir / relative,
        readme=readme,
        about={"pseudonym": person.pseudonym, "exported_at": now.isoformat()},
        voice_files=voices,
        cipher=cipher,
    )
    await asyncio.to_thread(remove_old_exports, data_dir, person.pseudonym, path)
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=person.id,
            action="data.access",
            detail={
                "person_id": person.id,
                "pseudonym": person.pseudonym,
                "request": "subject access (/mydata)",
                "rows": counts,
            },
        )
    )
    return Export(
        path=path,
        relative_path=relative,
        filename=f"my-data-{now:%Y-%m-%d}.zip",
        counts=counts,
    )
