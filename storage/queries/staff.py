"""Which partners a connector looks after: the groups named on the invite they joined with.

A connector invited with ``--group G`` (one or more invites) looks after those groups; one
invited without a group, or on the allow-list, looks after everyone.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Invite, PartnerProfile, Role


async def connector_groups(session: AsyncSession, person_id: int) -> frozenset[str] | None:
    """The group keys a connector looks after, or None for every group."""
    rows = await session.execute(
        select(Invite.group_key).where(
            Invite.used_by_person_id == person_id, Invite.role == Role.CONNECTOR
        )
    )
    groups = list(rows.scalars())
    if not groups or any(g is None for g in groups):
        return None
    return frozenset(g for g in groups if g is not None)


async def looks_after(session: AsyncSession, connector_id: int, partner_id: int) -> bool:
    """Whether ``partner_id`` is a partner in one of the connector's groups."""
    profile = await session.get(PartnerProfile, partner_id)
    if profile is None:
        return False
    groups = await connector_groups(session, connector_id)
    return groups is None or profile.group_key in groups
