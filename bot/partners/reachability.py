"""Whether the bot can reach someone: a 403 or a block marks them unreachable, and staff hear."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.partners.views.general import unreachable
from bot.transport.outbox import enqueue
from bot.transport.sender import OnUnreachable
from prompts import Prompts
from storage.clock import utcnow
from storage.models import (
    AuditEvent,
    OutboxMessage,
    OutboxStatus,
    Person,
    PersonStatus,
    StaffNotice,
)
from storage.queries.people import chat_ids_of, connector_chat_ids, lock_person

log = logging.getLogger(__name__)


async def mark_unreachable(
    session: AsyncSession,
    prompts: Prompts,
    person: Person,
    *,
    reason: str,
    staff_chats: Callable[[AsyncSession], Awaitable[list[int]]] = connector_chat_ids,
    now: datetime | None = None,
) -> bool:
    """Mark ``person`` unreachable, hold their queued messages and tell the connectors once.

    Used both when Telegram answers 403 to a send and when a ``my_chat_member`` update says
    they blocked the bot. Returns False when they were already unreachable or withdrawn.
    """
    # A 403 and a block for the same person at once: the second waits and finds it done.
    await lock_person(session, person)
    if person.status != PersonStatus.ACTIVE:
        return False
    now = now or utcnow()
    person.status = PersonStatus.UNREACHABLE
    person.status_changed_at = now
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.person_id == person.id,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.FAILED, last_error="unreachable")
    )
    session.add(StaffNotice(person_id=person.id, kind="unreachable", raised_at=now))  # /alerts
    session.add(
        AuditEvent(
            action="person.unreachable",
            detail={"person": person.pseudonym, "reason": reason},
            at=now,
        )
    )
    text = unreachable(prompts, pseudonym=person.pseudonym).text
    own_chats = await chat_ids_of(session, person.id)
    for chat_id in await staff_chats(session):
        if chat_id in own_chats:
            continue  # a connector who blocked the bot cannot be told about themselves
        await enqueue(
            session,
            key=f"unreachable:{person.id}:{now:%Y-%m-%d}:{chat_id}",
            chat_id=chat_id,
            text=text,
            kind="staff_notice",
        )
    log.info("person %s is unreachable (%s)", person.pseudonym, reason)
    return True


async def mark_reachable(session: AsyncSession, person: Person) -> bool:
    """Someone who had blocked the bot opened it again: they can be reached once more."""
    await lock_person(session, person)  # an unblock just after a 403 must see the 403
    if person.status != PersonStatus.UNREACHABLE:
        return False
    now = utcnow()
    person.status = PersonStatus.ACTIVE
    person.status_changed_at = now
    session.add(AuditEvent(action="person.reachable", detail={"person": person.pseudonym}, at=now))
    return True


def unreachable_handler(
    prompts: Prompts,
    *,
    staff_chats: Callable[[AsyncSession], Awaitable[list[int]]] = connector_chat_ids,
) -> OnUnreachable:
    """What the sender calls on a 403: :func:`mark_unreachable` for the person it names."""

    async def handle(session: AsyncSession, person_id: int, reason: str, now: datetime) -> None:
        person = await session.get(Person, person_id)
        if person is not None:
            await mark_unreachable(
                session, prompts, person, reason=reason, staff_chats=staff_chats, now=now
            )

    return handle
