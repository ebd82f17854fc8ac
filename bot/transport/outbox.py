"""The transactional outbox: what the bot will send, written as rows.

Everything the bot sends on its own is first a row in ``outbox_message``, written by
:func:`enqueue` (or :func:`add_reply`) in the same transaction as the change behind it and
identified by a unique idempotency key. :mod:`bot.transport.sender` is the only thing that
sends those rows. Nothing here commits: the caller owns the unit of work.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache
from typing import Any

import telegram
from sqlalchemy import ColumnElement, Table, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from storage.clock import utcnow
from storage.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

#: Bot API methods the sender knows how to make, and the payload field holding the file.
FILE_FIELDS: dict[str, str] = {
    "sendDocument": "document",
    "sendPhoto": "photo",
    "sendVoice": "voice",
}
SUPPORTED_METHODS: frozenset[str] = frozenset({"sendMessage", *FILE_FIELDS})

#: ``last_error`` of a row that failed because its person cannot be reached (403, blocked):
#: exactly this for rows held back, this and Telegram's reason for the row that got the 403.
UNREACHABLE = "unreachable"

#: Statuses in which a row still has to be sent (and holds back later rows to its chat).
OPEN_STATUSES = (OutboxStatus.PENDING, OutboxStatus.SENDING)

#: Statuses in which a row's delivery is settled: nothing will send it again, so its text is
#: no longer needed (``unknown`` included: only a conversation step is ever sent once more,
#: and it goes back to ``pending`` for that, never through ``unknown``).
SETTLED_STATUSES = (
    OutboxStatus.SENT,
    OutboxStatus.FAILED,
    OutboxStatus.CANCELLED,
    OutboxStatus.UNKNOWN,
)

#: Payload key marking a row whose text or caption quotes someone's own words (``enqueue``'s
#: ``quotes``). The sender never sends it to Telegram; it stays when the words are cleared,
#: to say why the row has no text.
QUOTES = "quotes_own_words"
_WORDS = ("text", "caption")


class OutboxPayloadError(ValueError):
    """A payload the sender could never send (unknown method, missing text or file)."""


def _outbox_values(
    *,
    key: str,
    chat_id: int,
    text: str | None,
    method: str,
    payload: dict[str, Any] | None,
    reply_markup: telegram.InlineKeyboardMarkup | None,
    person_id: int | None,
    kind: str,
    not_before: datetime | None,
    conversation_step: bool = False,
    broadcast_id: int | None = None,
    quotes: bool = False,
) -> dict[str, Any]:
    """The column values of a validated, pending outbox row (see :func:`enqueue`)."""
    if method not in SUPPORTED_METHODS:
        raise OutboxPayloadError(f"unsupported outbox method {method!r}")
    data: dict[str, Any] = dict(payload or {})
    if text is not None:
        data["caption" if method in FILE_FIELDS else "text"] = text
        data.setdefault("parse_mode", "HTML")
    if reply_markup is not None:
        data["reply_markup"] = reply_markup.to_dict()
    if quotes:
        data[QUOTES] = True
    if method == "sendMessage" and not data.get("text"):
        raise OutboxPayloadError("sendMessage needs text")
    if method in FILE_FIELDS and FILE_FIELDS[method] not in data:
        raise OutboxPayloadError(f"{method} needs payload[{FILE_FIELDS[method]!r}]")
    if not_before is not None and not_before.tzinfo is None:
        raise ValueError("not_before must be timezone-aware")
    now = utcnow()
    return {
        "idempotency_key": key,
        "chat_id": chat_id,
        "person_id": person_id,
        "kind": kind,
        "method": method,
        "payload": data,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "conversation_step": conversation_step,
        "broadcast_id": broadcast_id,
    }


_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
_INSERT_ROW = insert(_OUTBOX)


@cache
def _insert_if_new(dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`` for ``dialect``.

    The dialect's module is imported on first use: a bot on SQLite never loads PostgreSQL's.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        statement: Insert = postgresql_insert(_OUTBOX).on_conflict_do_nothing(
            index_elements=[_OUTBOX.c.idempotency_key]
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(_OUTBOX).on_conflict_do_nothing(
            index_elements=[_OUTBOX.c.idempotency_key]
        )
    return statement.returning(_OUTBOX.c.id)


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    chat_id: int,
    text: str | None = None,
    method: str = "sendMessage",
    payload: dict[str, Any] | None = None,
    reply_markup: telegram.InlineKeyboardMarkup | None = None,
    person_id: int | None = None,
    kind: str = "message",
    not_before: datetime | None = None,
    conversation_step: bool = False,
    quotes: bool = False,
) -> int | None:
    """Queue a message in the caller's transaction; return its id, or None if ``key`` exists.

    Nothing is committed here: the row becomes visible to the sender when the caller's unit of
    work commits (call :meth:`OutboxSender.wake` afterwards to have it sent at once). A
    repeated key is skipped by the INSERT itself (``ON CONFLICT DO NOTHING``, which SQLite and
    PostgreSQL both have), so the caller's transaction stays usable and no savepoint is
    needed. Any other integrity error (a person id that does not exist) is raised: that is a
    bug, not a repeat.

    ``text`` is sent as HTML (``parse_mode`` may be overridden in ``payload``). For
    ``sendDocument`` and ``sendPhoto`` the file goes in ``payload["document"]`` /
    ``payload["photo"]``: either a Telegram file id or URL (a string), or
    ``{"path": "relative/to/data_dir", "filename": "optional.csv"}``; ``text`` becomes the
    caption. ``not_before`` (aware) delays the first attempt. ``conversation_step``: the person
    is waiting on this message to go on (see ``OutboxMessage.conversation_step``). ``quotes``:
    the text quotes someone's own words (a relayed message, their reflections), so it is
    cleared as soon as the row is settled (see :func:`clear_quoted_words`).
    """
    values = _outbox_values(
        key=key,
        chat_id=chat_id,
        text=text,
        method=method,
        payload=payload,
        reply_markup=reply_markup,
        person_id=person_id,
        kind=kind,
        not_before=not_before,
        conversation_step=conversation_step,
        quotes=quotes,
    )
    result = await session.execute(_insert_if_new(session.get_bind().dialect.name), values)
    return result.scalar_one_or_none()


async def enqueue_new(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Queue many messages whose keys cannot exist yet, in one statement (executemany).

    Each item holds :func:`enqueue`'s keyword arguments (``key`` and ``chat_id`` at least),
    plus ``broadcast_id`` for the deliveries of a broadcast. Like :func:`add_reply`, a key
    that exists after all fails the caller's transaction loudly.
    """
    defaults: dict[str, Any] = {
        "text": None,
        "method": "sendMessage",
        "payload": None,
        "reply_markup": None,
        "person_id": None,
        "kind": "message",
        "not_before": None,
    }
    if rows:
        await session.execute(_INSERT_ROW, [_outbox_values(**(defaults | row)) for row in rows])


async def add_reply(
    session: AsyncSession,
    *,
    key: str,
    chat_id: int,
    text: str,
    reply_markup: telegram.InlineKeyboardMarkup | None = None,
    person_id: int | None = None,
    kind: str = "reply",
    conversation_step: bool = False,
    quotes: bool = False,
) -> None:
    """Queue a reply whose key cannot exist yet (it is derived from the update being handled).

    No duplicate check and no savepoint: one plain INSERT in the caller's transaction, without
    the ORM's unit of work (which cost more than the INSERT itself on the hot path). Should the
    key exist after all, the update fails loudly rather than silently.
    """
    values = _outbox_values(
        key=key,
        chat_id=chat_id,
        text=text,
        method="sendMessage",
        payload=None,
        reply_markup=reply_markup,
        person_id=person_id,
        kind=kind,
        not_before=None,
        conversation_step=conversation_step,
        quotes=quotes,
    )
    await session.execute(_INSERT_ROW, values)


def without_words(payload: dict[str, Any]) -> dict[str, Any] | None:
    """``payload`` with its quoted words (text, caption) taken out, or None when it has none
    to take out (not marked as quoting, or cleared already)."""
    if not payload.get(QUOTES) or not any(field in payload for field in _WORDS):
        return None
    return {k: v for k, v in payload.items() if k not in _WORDS}


_CLEAR_WORDS = (
    update(_OUTBOX).where(_OUTBOX.c.id == bindparam("b_id")).values(payload=bindparam("b_payload"))
)


async def clear_quoted_words(session: AsyncSession, *where: ColumnElement[bool]) -> int:
    """Clear the text and caption of settled rows matching ``where`` that quote someone's own
    words (see ``quotes`` in :func:`enqueue`); return how many were cleared.

    The one place that rule is applied: the sender calls it as it settles rows, withdrawal
    for the rows it cancels. The method, chat and status stay, so the delivery record still
    makes sense. Portable: the JSON is read and rewritten here, not in SQL.
    """
    rows = await session.execute(
        select(_OUTBOX.c.id, _OUTBOX.c.payload).where(
            _OUTBOX.c.status.in_(SETTLED_STATUSES), *where
        )
    )
    cleared = [
        {"b_id": row_id, "b_payload": stripped}
        for row_id, payload in rows.all()
        if (stripped := without_words(payload or {})) is not None
    ]
    if cleared:
        await session.execute(_CLEAR_WORDS, cleared)
    return len(cleared)


def addressed_to(person_id: int, chat_id: int | None) -> ColumnElement[bool]:
    """Rows meant for a person: by their id, or (rows to staff carry none) by their chat."""
    to_them = OutboxMessage.person_id == person_id
    return or_(to_them, OutboxMessage.chat_id == chat_id) if chat_id is not None else to_them


async def cancel_pending(
    session: AsyncSession, *, person_id: int, chat_id: int | None, reason: str
) -> int:
    """Cancel every row not yet sent to a person (see :func:`addressed_to`); how many.

    Rows already with Telegram (sending, sent, unknown) are history and stay as they are;
    settled rows to them that quote someone's words lose those words.
    """
    result = await session.execute(
        update(OutboxMessage)
        .where(addressed_to(person_id, chat_id), OutboxMessage.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    await clear_quoted_words(session, addressed_to(person_id, chat_id))
    return int(getattr(result, "rowcount", 0) or 0)
