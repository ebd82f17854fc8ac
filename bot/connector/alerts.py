"""What the connectors must look at: open safeguarding alerts and "not reachable" notices.

:func:`open_items` lists both, newest first; an item stays until a connector resolves it
with a short note (:func:`resolve`). Picking one up ("I'm on it") uses
:func:`bot.partners.safeguarding.acknowledge` for an alert and :func:`pick_up_notice` for a
notice. Every change is in the audit log (the note itself stays on the row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEvent, Person, SafeguardingAlert, StaffNotice
from storage.queries.people import name_of

ALERT, NOTICE = "s", "n"
NOTE_LIMIT = 500
LISTED = 10


@dataclass(frozen=True)
class Item:
    """One open alert (``kind`` "s") or notice ("n") as the connector sees it."""

    kind: str
    id: int
    name: str
    pseudonym: str
    rule: str
    raised_at: datetime
    picked_up_by: str | None


async def _name_of(session: AsyncSession, person_id: int | None) -> str | None:
    person = await session.get(Person, person_id) if person_id is not None else None
    return await name_of(session, person.id) if person is not None else None


async def open_items(session: AsyncSession, limit: int = LISTED) -> list[Item]:
    """Unresolved alerts and notices, newest first."""
    items: list[Item] = []
    alerts = await session.execute(
        select(SafeguardingAlert, Person)
        .join(Person, Person.id == SafeguardingAlert.person_id)
        .where(SafeguardingAlert.resolved_at.is_(None))
        .order_by(SafeguardingAlert.raised_at.desc())
        .limit(limit)
    )
    for alert, person in alerts.all():
        items.append(
            Item(
                ALERT,
                alert.id,
                await name_of(session, person.id),
                person.pseudonym,
                alert.rule,
                alert.raised_at,
                await _name_of(session, alert.acknowledged_by_person_id),
            )
        )
    notices = await session.execute(
        select(StaffNotice, Person)
        .join(Person, Person.id == StaffNotice.person_id)
        .where(StaffNotice.resolved_at.is_(None))
        .order_by(StaffNotice.raised_at.desc())
        .limit(limit)
    )
    for notice, person in notices.all():
        items.append(
            Item(
                NOTICE,
                notice.id,
                await name_of(session, person.id),
                person.pseudonym,
                notice.kind,
                notice.raised_at,
                await _name_of(session, notice.acknowledged_by_person_id),
            )
        )
    items.sort(key=lambda item: item.raised_at, reverse=True)
    return items[:limit]


async def pick_up_notice(
    session: AsyncSession, notice_id: int, connector: Person, *, now: datetime
) -> bool:
    """Record ``connector`` as picking a notice up (the first press wins); False if unknown."""
    notice = await session.get(StaffNotice, notice_id)
    if notice is None:
        return False
    result = await session.execute(
        update(StaffNotice)
        .where(StaffNotice.id == notice_id, StaffNotice.acknowledged_at.is_(None))
        .values(acknowledged_by_person_id=connector.id, acknowledged_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0):
        session.add(
            AuditEvent(
                at=now,
                actor_person_id=connector.id,
                action="notice.acknowledged",
                detail={"notice_id": notice_id, "person_id": notice.person_id},
            )
        )
    return True


async def resolve(
    session: AsyncSession, kind: str, item_id: int, connector: Person, note: str, *, now: datetime
) -> bool:
    """Resolve an open alert or notice with ``note``; False if it is unknown or resolved."""
    row: SafeguardingAlert | StaffNotice | None = await session.get(
        SafeguardingAlert if kind == ALERT else StaffNotice, item_id
    )
    if row is None or row.resolved_at is not None:
        return False
    row.resolved_at = now
    row.resolved_by_person_id = connector.id
    row.resolution_note = note
    if row.acknowledged_at is None:
        row.acknowledged_at, row.acknowledged_by_person_id = now, connector.id
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=connector.id,
            action="alert.resolved" if kind == ALERT else "notice.resolved",
            detail={"id": item_id, "person_id": row.person_id},
        )
    )
    return True
