"""Looking people up: who someone is, what role they hold, and where staff can be reached."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import Settings
from bot.text import telegram_name
from storage.clock import utcnow
from storage.models import (
    AuditEvent,
    Person,
    PersonStatus,
    Role,
    RoleSource,
    TelegramIdentity,
)

if TYPE_CHECKING:  # an annotation only: the CLI's commands look people up without Telegram
    from telegram import User


def new_pseudonym() -> str:
    """A random pseudonym such as ``P-7K2Q9XWD``; it says nothing about the person."""
    alphabet = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
    return "P-" + "".join(secrets.choice(alphabet) for _ in range(8))


def allow_listed_role(settings: Settings, telegram_user_id: int) -> Role | None:
    """The staff role an allow-list gives this numeric id, if any (never by username)."""
    if telegram_user_id in settings.companion_connector_ids:
        return Role.CONNECTOR
    if telegram_user_id in settings.companion_researcher_ids:
        return Role.RESEARCHER
    return None


async def enrol_allow_listed(
    session: AsyncSession, settings: Settings, user: User, chat_id: int
) -> Person | None:
    """Create the person for an allow-listed staff member on first contact, with an audit line."""
    role = allow_listed_role(settings, user.id)
    if role is None:
        return None
    person = Person(
        pseudonym=new_pseudonym(),
        role=role,
        role_source=RoleSource.ALLOW_LIST,
        role_since=utcnow(),
        status=PersonStatus.ACTIVE,
    )
    session.add(person)
    await session.flush()
    session.add(
        TelegramIdentity(
            person_id=person.id,
            telegram_user_id=user.id,
            chat_id=chat_id,
            first_name=telegram_name(user.first_name),
            username=telegram_name(user.username),
        )
    )
    session.add(
        AuditEvent(
            actor_person_id=person.id,
            action="role.granted",
            detail={"role": str(role), "source": "allow-list"},
            at=utcnow(),
        )
    )
    return person
