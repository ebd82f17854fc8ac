"""Staff roles follow where they came from: the allow-lists in the settings, or an invite.

A connector or researcher holds their role from an allow-list (``COMPANION_CONNECTOR_IDS``,
``COMPANION_RESEARCHER_IDS``: enrolled on first contact) or from a staff invite; the person row
says which (``Person.role_source``). The allow-lists are read again at start and on every
update from staff (:func:`follow_allow_list`): an id taken off its list loses the role, an id
moved to the other list changes role, and an id put back on a list has it again. Roles from
invites are never touched by the lists; :func:`revoke` takes them away (``companion staff
revoke``).

Someone whose role is taken away becomes former staff (:data:`FORMER_STAFF`): the person row
stays, because their broadcasts, meetings and the audit log point at it, but the bot treats
them as someone not enrolled (the one neutral reply, no study content; a new invite enrols
them again). Their open draft is forgotten, nothing still waiting to be sent to them goes, an
alert or notice they had picked up ("I'm on it") but not resolved is open again for the other
connectors, and every query for connectors asks for the connector role, so relayed messages,
alerts and notices no longer reach them. Each change is an audit line (``role.revoked``,
``role.granted``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.partners.people import allow_listed_role
from bot.settings import Settings
from bot.transport.outbox import cancel_pending
from storage.models import (
    FORMER_STAFF,
    AuditEvent,
    Person,
    Role,
    RoleSource,
    SafeguardingAlert,
    StaffNotice,
    TelegramIdentity,
)
from storage.queries import drafts
from storage.queries.people import identity_of, lock_person

STAFF_ROLES: frozenset[str] = frozenset({Role.CONNECTOR, Role.RESEARCHER})
#: Who ``settings`` stands for in the audit log when the allow-lists changed a role.
BY_SETTINGS = "settings"


@dataclass(frozen=True)
class RoleChange:
    """One role that was granted, changed or taken away; ``new`` is FORMER_STAFF when taken."""

    person_id: int
    chat_id: int | None
    old: str
    new: str

    @property
    def menu_role(self) -> str | None:
        """The command menu their chat should show now (None: the one for everyone)."""
        return None if self.new == FORMER_STAFF else self.new


def is_former_staff(person: Person | None) -> bool:
    """Whether ``person`` held a staff role that was taken away."""
    return person is not None and person.role == FORMER_STAFF


def listed_role_wanted(settings: Settings, person: Person, telegram_user_id: int) -> str | None:
    """The role the allow-lists say ``person`` should hold, or None when they have no say.

    They have a say over roles they gave (taken away as FORMER_STAFF when the id is off both
    lists) and over former staff whose id is on a list again; never over partners or roles
    that came from an invite.
    """
    if person.role == FORMER_STAFF:
        return allow_listed_role(settings, telegram_user_id)
    if person.role in STAFF_ROLES and person.role_source == RoleSource.ALLOW_LIST:
        listed = allow_listed_role(settings, telegram_user_id)
        return listed if listed is not None else FORMER_STAFF
    return None


async def follow_allow_list(
    session: AsyncSession,
    settings: Settings,
    person: Person,
    telegram_user_id: int,
    *,
    now: datetime,
) -> RoleChange | None:
    """Bring one person's role in line with the allow-lists; the change, if there was one."""
    wanted = listed_role_wanted(settings, person, telegram_user_id)
    if wanted is None or wanted == person.role:
        return None
    if wanted == FORMER_STAFF:
        return await revoke(session, person, by=BY_SETTINGS, now=now)
    return await _grant(session, person, Role(wanted), now=now)


async def follow_allow_lists(
    session: AsyncSession, settings: Settings, *, now: datetime
) -> list[RoleChange]:
    """At start: bring every staff and former staff role in line with the allow-lists."""
    rows = await session.execute(
        select(Person, TelegramIdentity.telegram_user_id)
        .join(TelegramIdentity, TelegramIdentity.person_id == Person.id)
        .where(Person.role.in_([*STAFF_ROLES, FORMER_STAFF]))
        .order_by(Person.id)
    )
    changes = []
    for person, telegram_user_id in rows.all():
        change = await follow_allow_list(session, settings, person, telegram_user_id, now=now)
        if change is not None:
            changes.append(change)
    return changes


async def revoke(
    session: AsyncSession,
    person: Person,
    *,
    by: str,
    now: datetime,
    actor_person_id: int | None = None,
) -> RoleChange:
    """Take a staff role away (see the module docstring); the caller checked it is staff.

    ``by`` is who did it for the audit log: ``settings`` (the allow-lists) or ``cli``.
    """
    old = person.role
    chat_id = await _end_role(session, person, by=by, now=now, actor_person_id=actor_person_id)
    person.role, person.role_since = FORMER_STAFF, now
    await session.flush()
    return RoleChange(person.id, chat_id, old, FORMER_STAFF)


async def _grant(
    session: AsyncSession, person: Person, role: Role, *, now: datetime
) -> RoleChange:
    """Give a role from the allow-lists (a move from the other list ends the old role first)."""
    old = person.role
    chat_id = (
        (await _end_role(session, person, by=BY_SETTINGS, now=now)) if old in STAFF_ROLES else None
    )
    person.role, person.role_source, person.role_since = role, RoleSource.ALLOW_LIST, now
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=person.id,
            action="role.granted",
            detail={"role": str(role), "source": str(RoleSource.ALLOW_LIST), "by": BY_SETTINGS},
        )
    )
    await session.flush()
    if chat_id is None:
        identity = await identity_of(session, person.id)
        chat_id = identity.chat_id if identity is not None else None
    return RoleChange(person.id, chat_id, old, role)


async def _end_role(
    session: AsyncSession,
    person: Person,
    *,
    by: str,
    now: datetime,
    actor_person_id: int | None = None,
) -> int | None:
    """What ending a staff role does: their draft is forgotten, nothing still waiting is sent
    to them, an audit line. Returns their chat."""
    await lock_person(session, person)  # before the messages it cancels
    identity = await identity_of(session, person.id)
    chat_id = identity.chat_id if identity is not None else None
    await drafts.drop_any(session, person.id)
    cancelled = await cancel_pending(
        session, person_id=person.id, chat_id=chat_id, reason="role revoked"
    )
    reopened = 0
    for model in (SafeguardingAlert, StaffNotice):  # "I'm on it" from them no longer holds
        result = await session.execute(
            update(model)
            .where(model.acknowledged_by_person_id == person.id, model.resolved_at.is_(None))
            .values(acknowledged_by_person_id=None, acknowledged_at=None)
            .execution_options(synchronize_session=False)
        )
        reopened += int(getattr(result, "rowcount", 0) or 0)
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=actor_person_id,
            action="role.revoked",
            detail={
                "person_id": person.id,
                "role": person.role,
                "source": person.role_source,
                "by": by,
                "cancelled_messages": cancelled,
                "reopened_alerts": reopened,
            },
        )
    )
    return chat_id


@dataclass(frozen=True)
class StaffMember:
    """One line of ``companion staff list``: no Telegram id, the pseudonym names them."""

    pseudonym: str
    name: str
    role: str
    source: str | None
    since: datetime

    def to_json(self) -> dict[str, str | None]:
        """The JSON object ``companion staff list --json`` prints for them."""
        return {
            "pseudonym": self.pseudonym,
            "name": self.name or None,
            "role": self.role,
            "source": self.source,
            "since": self.since.isoformat(),
        }


async def staff_members(session: AsyncSession) -> list[StaffMember]:
    """Everyone holding a staff role, then former staff, each in the order they joined."""
    rows = await session.execute(
        select(Person, TelegramIdentity.called)
        .outerjoin(TelegramIdentity, TelegramIdentity.person_id == Person.id)
        .where(Person.role.in_([*STAFF_ROLES, FORMER_STAFF]))
        .order_by(Person.role == FORMER_STAFF, Person.id)
    )
    return [
        StaffMember(
            pseudonym=person.pseudonym,
            name=name or "",
            role=person.role,
            source=person.role_source,
            since=person.role_since or person.created_at,
        )
        for person, name in rows.all()
    ]


class RevokeError(Exception):
    """A role that ``companion staff revoke`` cannot take; ``reason`` names the sentence."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


async def revocable(session: AsyncSession, settings: Settings, who: str) -> Person:
    """The staff member ``who`` (a pseudonym, or a numeric Telegram id) whose role
    ``companion staff revoke`` may take away (with :func:`revoke`).

    Raises :class:`RevokeError`: ``unknown`` (nobody enrolled is ``who``), ``partner``,
    ``already`` (former staff), or ``allow_listed``: the id is on an allow-list in ``settings``,
    which would give the role back at the next start or update, so it is refused (the id must
    come off the setting, and the bot be restarted: the role is then taken away at start).
    """
    found = await _person_named(session, who)
    if found is None:
        raise RevokeError("unknown", who=who)
    person, telegram_user_id = found
    if person.role == FORMER_STAFF:
        raise RevokeError("already", who=person.pseudonym)
    if person.role not in STAFF_ROLES:
        raise RevokeError("partner", who=person.pseudonym)
    listed = allow_listed_role(settings, telegram_user_id) if telegram_user_id else None
    if listed is not None:
        setting = (
            "COMPANION_CONNECTOR_IDS" if listed == Role.CONNECTOR else "COMPANION_RESEARCHER_IDS"
        )
        raise RevokeError("allow_listed", who=person.pseudonym, setting=setting)
    return person


async def _person_named(session: AsyncSession, who: str) -> tuple[Person, int | None] | None:
    """The person whose pseudonym (any case) or Telegram id is ``who``, with that id."""
    text = who.strip()
    query = select(Person, TelegramIdentity.telegram_user_id).outerjoin(
        TelegramIdentity, TelegramIdentity.person_id == Person.id
    )
    if text.isascii() and text.isdigit():
        query = query.where(TelegramIdentity.telegram_user_id == int(text))
    else:
        query = query.where(Person.pseudonym == text.upper())
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row is not None else None
