"""Test data made through the real models: enrolled partners and staff, as the bot would."""

from __future__ import annotations

from datetime import datetime

from bot.calendar.quiet import NO_QUIET_HOURS
from bot.partners.people import new_pseudonym
from storage.clock import utcnow
from storage.db import Database
from storage.models import (
    ConsentDecision,
    PartnerProfile,
    Person,
    PersonStatus,
    Role,
    TelegramIdentity,
)

DEFAULT_CONSENTS = {"take_part": True, "quote_anonymously": True, "credit_by_name": False}


async def enrol(
    db: Database,
    telegram_user_id: int,
    *,
    role: Role = Role.PARTNER,
    name: str = "Sam",
    group: str | None = "north",
    timezone: str = "Europe/London",
    consents: dict[str, bool] | None = None,
    onboarded: bool = True,
    checkin_weekday: int | None = 3,
    checkin_time: str | None = "18:00",
    status: PersonStatus = PersonStatus.ACTIVE,
    enrolled_at: datetime | None = None,
    quiet: tuple[str, str] | None = ("21:00", "08:00"),
) -> Person:
    """Create an enrolled person (a finished onboarding unless ``onboarded=False``).

    ``quiet=None``: no quiet hours, for a test that must not depend on the hour it runs at
    (messages to a partner in their quiet hours wait for them to end)."""
    now = enrolled_at or utcnow()
    async with db.transaction() as session:
        person = Person(pseudonym=new_pseudonym(), role=role, status=status, created_at=now)
        session.add(person)
        await session.flush()
        session.add(
            TelegramIdentity(
                person_id=person.id,
                telegram_user_id=telegram_user_id,
                chat_id=telegram_user_id,
                first_name=name,
                preferred_name=name if onboarded else None,
            )
        )
        if role == Role.PARTNER:
            session.add(
                PartnerProfile(
                    person_id=person.id,
                    group_key=group,
                    timezone=timezone,
                    checkin_weekday=checkin_weekday if onboarded else None,
                    checkin_time=checkin_time if onboarded else None,
                    quiet_start=quiet[0] if quiet else NO_QUIET_HOURS,
                    quiet_end=quiet[1] if quiet else NO_QUIET_HOURS,
                    onboarding_step="done" if onboarded else "welcome",
                    enrolled_at=now,
                    onboarded_at=now if onboarded else None,
                )
            )
            for key, granted in (consents or DEFAULT_CONSENTS).items():
                session.add(
                    ConsentDecision(
                        person_id=person.id, item_key=key, granted=granted, decided_at=now
                    )
                )
    return person
