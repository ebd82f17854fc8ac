"""Consent decisions in force: the latest decision per item is the one that counts."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ConsentDecision


async def consents_in_force(
    session: AsyncSession, person_ids: Iterable[int]
) -> dict[int, dict[str, bool]]:
    """For each person, ``{item key: granted}`` as it stands now (latest decision wins)."""
    rows = await session.execute(
        select(ConsentDecision.person_id, ConsentDecision.item_key, ConsentDecision.granted)
        .where(ConsentDecision.person_id.in_(list(person_ids)))
        .order_by(ConsentDecision.decided_at, ConsentDecision.id)
    )
    found: dict[int, dict[str, bool]] = {}
    for person_id, item, granted in rows:
        found.setdefault(person_id, {})[item] = bool(granted)
    return found
