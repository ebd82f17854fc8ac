"""Broadcasts: one message from a connector to everyone, some groups, or a meeting's partners.

A broadcast is a :class:`~storage.models.Broadcast` row (who, to whom, the counts) and one
outbox row per partner (kind ``broadcast``, never resent when its outcome is unknown), all
written in one transaction, so it survives a restart and the sender paces it like anything
else. Its report is read from those rows (:func:`report`); cancelling marks what has not left
``cancelled`` (:func:`cancel`). A partner's quiet hours hold their copy until they end, unless
the broadcast is urgent. ``{name}`` in the text becomes each partner's name.

Nothing here knows about Telegram updates: ``/broadcast`` and ``companion broadcast`` both
call these functions. The audit log gets who, the audience and the counts, never the text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.quiet import is_quiet, quiet_ends, quiet_hours
from bot.calendar.zones import zone_of
from bot.protocol import StudyProtocol
from bot.transport.outbox import enqueue, enqueue_new
from prompts import Prompts
from storage.models import (
    AuditEvent,
    Broadcast,
    Meeting,
    OutboxMessage,
    OutboxStatus,
    PersonStatus,
)
from storage.queries.broadcasts import DeliveryCounts, Member, audience_members, delivery_counts

KIND = "broadcast"
TEXT_LIMIT = 4096  # Telegram's limit for a message
CAPTION_LIMIT = 1024  # and for a photo's or a document's caption
NAME_PLACEHOLDER = "{name}"
#: What ``{name}`` is counted as when checking the length (names are at most this long).
NAME_ALLOWANCE = 64
METHODS = {"text": "sendMessage", "photo": "sendPhoto", "document": "sendDocument"}
FILE_FIELD = {"photo": "photo", "document": "document"}
LEFT_OUT_REASONS = ("paused", "withdrawn", "unreachable", "not_set_up")
_TAG = re.compile(r"<[^>]+>")


class BroadcastError(ValueError):
    """Why a broadcast cannot go: ``reason`` names the sentence, ``values`` fill it."""

    def __init__(self, reason: str, **values: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


@dataclass(frozen=True)
class Audience:
    """Who a broadcast is for: groups (none: everyone), or a meeting's partners."""

    groups: tuple[str, ...] = ()
    meeting_id: int | None = None
    said_yes: bool = False

    def to_json(self) -> dict[str, Any]:
        """The form kept on the broadcast row and in the audit log."""
        return {
            "groups": list(self.groups),
            "meeting_id": self.meeting_id,
            "said_yes": self.said_yes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audience:
        """The audience :meth:`to_json` wrote."""
        meeting = data.get("meeting_id")
        return cls(
            groups=tuple(str(g) for g in data.get("groups") or ()),
            meeting_id=int(meeting) if meeting is not None else None,
            said_yes=bool(data.get("said_yes")),
        )


@dataclass(frozen=True)
class Content:
    """What is sent: HTML text (Telegram formatting as typed), or a file with a caption."""

    kind: str  # "text", "photo" or "document"
    text: str = ""
    file_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The form kept in the connector's draft."""
        return {"kind": self.kind, "text": self.text, "file_id": self.file_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Content:
        """The content :meth:`to_json` wrote."""
        return cls(
            kind=str(data["kind"]), text=str(data.get("text") or ""), file_id=data.get("file_id")
        )


def visible_length(text: str) -> int:
    """How long ``text`` (HTML) is as the partner sees it, with ``{name}`` at its longest."""
    plain = html.unescape(_TAG.sub("", text))
    names = plain.count(NAME_PLACEHOLDER)
    return len(plain) + names * (NAME_ALLOWANCE - len(NAME_PLACEHOLDER))


def check_content(content: Content) -> None:
    """Raise :class:`BroadcastError` for an empty message, or one Telegram would refuse."""
    if content.kind not in METHODS:
        raise BroadcastError("unsupported")
    length = visible_length(content.text)
    if content.kind == "text":
        if not content.text.strip():
            raise BroadcastError("empty")
        if length > TEXT_LIMIT:
            raise BroadcastError("too_long", limit=TEXT_LIMIT, over=length - TEXT_LIMIT)
        return
    if not content.file_id:
        raise BroadcastError("empty")
    if length > CAPTION_LIMIT:
        raise BroadcastError("caption_too_long", limit=CAPTION_LIMIT, over=length - CAPTION_LIMIT)


def personalised(text: str, name: str) -> str:
    """``text`` with ``{name}`` replaced by the partner's name (escaped for HTML)."""
    return text.replace(NAME_PLACEHOLDER, html.escape(name, quote=False))


def message_values(content: Content, name: str) -> dict[str, Any]:
    """The outbox arguments (method, text, payload) of ``content`` for one partner."""
    values: dict[str, Any] = {"method": METHODS[content.kind]}
    text = personalised(content.text, name)
    if content.kind == "text":
        values["text"] = text
    else:
        values["payload"] = {FILE_FIELD[content.kind]: content.file_id}
        values["text"] = text or None
    return values


async def queue_preview(
    session: AsyncSession, *, key: str, chat_id: int, content: Content, name: str
) -> None:
    """Queue ``content`` to the connector exactly as a partner called ``name`` will see it.

    A step of the connector's draft (they answer the question under it), unlike the
    broadcast's own deliveries, which are never sent twice."""
    await enqueue(
        session,
        key=key,
        chat_id=chat_id,
        kind="reply",
        conversation_step=True,
        **message_values(content, name),
    )


@dataclass
class Plan:
    """Who a broadcast would reach now, and who is left out and why."""

    recipients: list[Member] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)
    in_quiet_hours: int = 0


async def check_audience(
    session: AsyncSession, protocol: StudyProtocol, audience: Audience
) -> None:
    """Raise :class:`BroadcastError` for a group or a meeting that does not exist."""
    for key in audience.groups:
        if protocol.group(key) is None:
            known = ", ".join(g.key for g in protocol.groups)
            raise BroadcastError("unknown_group", group=key, known=known)
    if audience.meeting_id is not None:
        meeting = await session.get(Meeting, audience.meeting_id)
        if meeting is None:
            raise BroadcastError("unknown_meeting", meeting=audience.meeting_id)


async def plan(
    session: AsyncSession, protocol: StudyProtocol, audience: Audience, *, now: datetime
) -> Plan:
    """Resolve ``audience`` now: the partners it reaches and those it leaves out."""
    await check_audience(session, protocol, audience)
    groups: tuple[str, ...] = audience.groups
    if audience.meeting_id is not None:
        meeting = await session.get(Meeting, audience.meeting_id)
        groups = tuple(meeting.groups) if meeting is not None else ()
    members = await audience_members(
        session, groups=groups, said_yes_to=audience.meeting_id if audience.said_yes else None
    )
    result = Plan(left_out=dict.fromkeys(LEFT_OUT_REASONS, 0))
    for member in members:
        reason = _left_out_reason(member, now)
        if reason is not None:
            result.left_out[reason] += 1
            continue
        result.recipients.append(member)
        if is_quiet(member.profile, protocol, now):
            result.in_quiet_hours += 1
    return result


def _left_out_reason(member: Member, now: datetime) -> str | None:
    if member.status == PersonStatus.WITHDRAWN:
        return "withdrawn"
    if member.status == PersonStatus.UNREACHABLE:
        return "unreachable"
    if member.profile.onboarded_at is None:
        return "not_set_up"
    paused = member.profile.paused_until
    if paused is not None and paused > now:
        return "paused"
    return None


def progress_key(broadcast_id: int) -> str:
    """The outbox key of the connector's progress message (edited in place as it goes)."""
    return f"{KIND}:{broadcast_id}:progress"


def report_key(broadcast_id: int) -> str:
    """The outbox key of the connector's final report."""
    return f"{KIND}:{broadcast_id}:report"


async def send(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    *,
    audience: Audience,
    content: Content,
    urgent: bool,
    by_person_id: int | None,
    now: datetime,
    progress_chat_id: int | None = None,
) -> Broadcast:
    """Write the broadcast and one outbox row per partner it reaches, in the caller's
    transaction; the connector's progress message too, when ``progress_chat_id`` is given.

    Raises :class:`BroadcastError` for bad content, an unknown group or meeting, or an
    audience that reaches nobody; then nothing is written.
    """
    check_content(content)
    planned = await plan(session, protocol, audience, now=now)
    if not planned.recipients:
        raise BroadcastError("nobody")
    broadcast = Broadcast(
        created_by_person_id=by_person_id,
        created_at=now,
        audience=audience.to_json(),
        content_kind=content.kind,
        urgent=urgent,
        recipients=len(planned.recipients),
        left_out=planned.left_out,
        progress_chat_id=progress_chat_id,
    )
    session.add(broadcast)
    await session.flush()
    rows = []
    for member in planned.recipients:
        not_before = None
        window = quiet_hours(member.profile, protocol)
        if not urgent and window is not None and is_quiet(member.profile, protocol, now):
            not_before = quiet_ends(window, now, zone_of(member.profile))
        rows.append(
            {
                "key": f"{KIND}:{broadcast.id}:{member.person_id}",
                "chat_id": member.chat_id,
                "person_id": member.person_id,
                "kind": KIND,
                "not_before": not_before,
                "broadcast_id": broadcast.id,
                **message_values(content, member.name),
            }
        )
    await enqueue_new(session, rows)
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=by_person_id,
            action="broadcast.sent",
            detail={
                "broadcast_id": broadcast.id,
                "audience": audience.to_json(),
                "kind": content.kind,
                "urgent": urgent,
                "recipients": len(planned.recipients),
                "left_out": planned.left_out,
            },
        )
    )
    if progress_chat_id is not None:
        await enqueue(
            session,
            key=progress_key(broadcast.id),
            chat_id=progress_chat_id,
            text=prompts.render(
                "broadcast/progress",
                id=broadcast.id,
                recipients=broadcast.recipients,
                counts=DeliveryCounts(sending=broadcast.recipients),
            ),
            kind="broadcast_progress",
            conversation_step=True,  # the end of the connector's draft: they wait for it
        )
    return broadcast


@dataclass(frozen=True)
class Report:
    """A broadcast and how its deliveries stand."""

    broadcast: Broadcast
    counts: DeliveryCounts

    @property
    def done(self) -> bool:
        """Nothing is still going out (copies held for quiet hours may still wait)."""
        return self.counts.sending == 0

    def to_json(self) -> dict[str, Any]:
        """The report as ``companion broadcast report --json`` prints it."""
        b, c = self.broadcast, self.counts
        return {
            "id": b.id,
            "created_at": b.created_at.isoformat(),
            "audience": b.audience,
            "kind": b.content_kind,
            "urgent": b.urgent,
            "recipients": b.recipients,
            "delivered": c.delivered,
            "waiting": c.waiting,
            "sending": c.sending,
            "unreachable": c.unreachable,
            "failed": c.failed,
            "unknown": c.unknown,
            "cancelled": c.cancelled,
            "left_out": dict(b.left_out),
            "cancelled_at": b.cancelled_at.isoformat() if b.cancelled_at else None,
            "finished": self.done,
        }


async def report(session: AsyncSession, broadcast_id: int, *, now: datetime) -> Report | None:
    """The broadcast's report now (None: no such broadcast)."""
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        return None
    return Report(broadcast, await delivery_counts(session, broadcast_id, now=now))


async def cancel(
    session: AsyncSession, broadcast_id: int, *, by_person_id: int | None, now: datetime
) -> int | None:
    """Cancel every copy that has not left yet; return how many (None: no such broadcast).

    A copy already on its way (``sending``) is not stopped: it is reported as it ends.
    """
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        return None
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.broadcast_id == broadcast_id,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.CANCELLED, last_error="broadcast cancelled")
        .execution_options(synchronize_session=False)
    )
    stopped = int(getattr(result, "rowcount", 0) or 0)
    if broadcast.cancelled_at is None:
        broadcast.cancelled_at = now
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=by_person_id,
            action="broadcast.cancelled",
            detail={"broadcast_id": broadcast_id, "cancelled": stopped},
        )
    )
    return stopped


async def audience_words(
    session: AsyncSession, prompts: Prompts, protocol: StudyProtocol, audience: dict[str, Any]
) -> str:
    """Who a broadcast was for, in a few words."""
    parsed = Audience.from_json(audience)
    if parsed.meeting_id is not None:
        meeting = await session.get(Meeting, parsed.meeting_id)
        title = meeting.title if meeting is not None else f"#{parsed.meeting_id}"
        key = "broadcast.audience.said_yes" if parsed.said_yes else "broadcast.audience.meeting"
        return prompts.label(key, title=title)
    if not parsed.groups:
        return prompts.label("broadcast.audience.everyone")
    names = [g.name if (g := protocol.group(k)) is not None else k for k in parsed.groups]
    return ", ".join(names)
