"""Broadcast queries: who an audience holds, and how a broadcast's deliveries stand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Broadcast,
    MeetingAnswer,
    MeetingResponse,
    OutboxMessage,
    OutboxStatus,
    PartnerProfile,
    Person,
    Role,
    TelegramIdentity,
)


@dataclass(frozen=True)
class Member:
    """One partner an audience names, with what deciding on and addressing them needs."""

    person_id: int
    status: str
    chat_id: int
    name: str
    profile: PartnerProfile


async def audience_members(
    session: AsyncSession,
    *,
    groups: Sequence[str] = (),
    said_yes_to: int | None = None,
) -> list[Member]:
    """Every enrolled partner in ``groups`` (all partners when empty), whatever their status.

    ``said_yes_to``: only those whose latest answer to that meeting is yes.
    """
    stmt = (
        select(
            Person.id,
            Person.status,
            TelegramIdentity.chat_id,
            TelegramIdentity.called,
            PartnerProfile,
        )
        .join(TelegramIdentity, TelegramIdentity.person_id == Person.id)
        .join(PartnerProfile, PartnerProfile.person_id == Person.id)
        .where(Person.role == Role.PARTNER)
        .order_by(Person.id)
    )
    if groups:
        stmt = stmt.where(PartnerProfile.group_key.in_(list(groups)))
    if said_yes_to is not None:
        stmt = stmt.join(
            MeetingResponse,
            and_(
                MeetingResponse.person_id == Person.id,
                MeetingResponse.meeting_id == said_yes_to,
                MeetingResponse.answer == MeetingAnswer.YES,
            ),
        )
    rows = (await session.execute(stmt)).all()
    return [
        Member(
            person_id=row[0],
            status=row[1],
            chat_id=row[2],
            name=row[3],
            profile=row[4],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class DeliveryCounts:
    """How a broadcast's deliveries stand; the fields add up to its recipients."""

    delivered: int = 0
    waiting: int = 0  # held until the partner's quiet hours end
    sending: int = 0  # due, in flight, or to be retried
    unreachable: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        """Every delivery counted."""
        return (
            self.delivered
            + self.waiting
            + self.sending
            + self.unreachable
            + self.failed
            + self.unknown
            + self.cancelled
        )


async def delivery_counts(
    session: AsyncSession, broadcast_id: int, *, now: datetime
) -> DeliveryCounts:
    """Count a broadcast's outbox rows by outcome.

    A pending row with no error whose first attempt was put after its creation, and lies
    ahead, waits for quiet hours; one with an error waits for a retry and counts as still
    sending. A failed row whose error starts "unreachable" failed because the partner blocked
    the bot or left. (A row queued for at once is never "waiting", even when ``now`` was read
    a moment before it was made: that once ended a broadcast with everything "waiting".)
    """
    status = OutboxMessage.status
    error = func.coalesce(OutboxMessage.last_error, "")
    outcome = case(
        (
            and_(
                status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at > now,
                OutboxMessage.next_attempt_at > OutboxMessage.created_at,
                OutboxMessage.last_error.is_(None),
            ),
            "waiting",
        ),
        (status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]), "sending"),
        (status == OutboxStatus.SENT, "delivered"),
        (and_(status == OutboxStatus.FAILED, error.like("unreachable%")), "unreachable"),
        (status == OutboxStatus.FAILED, "failed"),
        (status == OutboxStatus.UNKNOWN, "unknown"),
        else_="cancelled",
    ).label("outcome")
    rows = await session.execute(
        select(outcome, func.count())
        .where(OutboxMessage.broadcast_id == broadcast_id)
        .group_by(outcome)
    )
    return DeliveryCounts(**{str(name): int(n) for name, n in rows.all()})


async def recent_broadcasts(session: AsyncSession, limit: int = 5) -> list[Broadcast]:
    """The latest broadcasts, newest first."""
    rows = await session.execute(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit))
    return list(rows.scalars())


async def unfinished_broadcasts(session: AsyncSession) -> list[Broadcast]:
    """Broadcasts whose final report has not been made yet."""
    rows = await session.execute(
        select(Broadcast).where(Broadcast.finished_at.is_(None)).order_by(Broadcast.id)
    )
    return list(rows.scalars())


async def progress_message_id(session: AsyncSession, key: str) -> int | None:
    """Telegram's id of the sent outbox message with ``key`` (None until it is sent)."""
    row = await session.execute(
        select(OutboxMessage.tg_message_id).where(OutboxMessage.idempotency_key == key)
    )
    return row.scalar_one_or_none()
