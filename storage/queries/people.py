"""Who someone is: an enrolled person by their Telegram id, their identity and name, chats."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PartnerProfile, Person, PersonStatus, Role, TelegramIdentity


async def person_for_telegram_user(session: AsyncSession, telegram_user_id: int) -> Person | None:
    """The enrolled person behind a Telegram user id, or None for an outsider."""
    result = await session.execute(
        select(Person)
        .join(TelegramIdentity, TelegramIdentity.person_id == Person.id)
        .where(TelegramIdentity.telegram_user_id == telegram_user_id)
    )
    return result.scalar_one_or_none()


async def identity_of(session: AsyncSession, person_id: int) -> TelegramIdentity | None:
    """The Telegram identity of a person (None once it was deleted on withdrawal)."""
    result = await session.execute(
        select(TelegramIdentity).where(TelegramIdentity.person_id == person_id)
    )
    return result.scalar_one_or_none()


async def name_of(session: AsyncSession, person_id: int) -> str:
    """The name we call a person (see ``TelegramIdentity.called``); "" without an identity."""
    identity = await identity_of(session, person_id)
    return identity.called if identity is not None else ""


async def chat_ids_of(session: AsyncSession, person_id: int) -> set[int]:
    """The private chats a person writes to the bot from."""
    result = await session.execute(
        select(TelegramIdentity.chat_id).where(TelegramIdentity.person_id == person_id)
    )
    return set(result.scalars())


async def connector_chat_ids(session: AsyncSession) -> list[int]:
    """Private chats of every active connector."""
    result = await session.execute(
        select(TelegramIdentity.chat_id)
        .join(Person, Person.id == TelegramIdentity.person_id)
        .where(Person.role == Role.CONNECTOR, Person.status == PersonStatus.ACTIVE)
    )
    # Allow-listed connectors are enrolled on first contact, so the query covers them too;
    # one who never opened the bot has no chat the bot could write to.
    return sorted(set(result.scalars().all()))


async def person_by_id(session: AsyncSession, person_id: int) -> Person | None:
    """The person with this id, or None (a forged or stale button may name anyone)."""
    return await session.get(Person, person_id)


async def profile_of(session: AsyncSession, person_id: int) -> PartnerProfile | None:
    """A partner's profile (None for staff, and for ids that are not partners)."""
    return await session.get(PartnerProfile, person_id)


async def lock_person(session: AsyncSession, person: Person | int) -> None:
    """Lock a person's row until the transaction ends (PostgreSQL; SQLite has one writer).

    The house's locking order: a transaction that changes a person and their other rows
    (queued messages, check-ins) takes the person's row first, so two of them wait for each
    other instead of deadlocking. Given a loaded ``Person``, any change to it is written
    first and its status read again under the lock: what another transaction committed
    meanwhile (a 403, a withdrawal) is seen before anything is decided on it.
    """
    if isinstance(person, Person):
        await session.flush()
        await session.refresh(person, ["status"], with_for_update=True)
        return
    await session.execute(select(Person.id).where(Person.id == person).with_for_update())
