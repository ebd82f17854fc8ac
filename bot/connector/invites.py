"""Invites as connectors see them in Telegram: the unused ones, and revoking one.

Creating invites is :func:`bot.partners.invites.create_invites`; a revoked invite is simply
made to expire now, so redeeming it says it has expired. Both are in the audit log.
"""

from __future__ import annotations

import io
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEvent, Invite

LISTED = 20
QR_SCALE = 10  # pixels per module: prints sharply on A6 and scans from a phone at arm's length


def qr_png_bytes(link: str) -> bytes:
    """``link`` as a QR code PNG (medium error correction), in memory."""
    buffer = io.BytesIO()
    import segno  # only when an invite is made: `companion run` does not load it

    segno.make(link, error="m", micro=False).save(buffer, kind="png", scale=QR_SCALE, border=4)
    return buffer.getvalue()


async def unused(session: AsyncSession, *, now: datetime, limit: int = LISTED) -> list[Invite]:
    """Invites nobody has used yet and that have not expired, newest first."""
    rows = await session.execute(
        select(Invite)
        .where(Invite.used_at.is_(None), Invite.expires_at > now)
        .order_by(Invite.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def revoke(
    session: AsyncSession, invite_id: int, *, by_person_id: int | None, now: datetime
) -> bool:
    """Make an unused invite unusable; False when it is unknown, used or expired already."""
    invite = await session.get(Invite, invite_id)
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        return False
    invite.expires_at = now
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=by_person_id,
            action="invite.revoked",
            detail={"invite_id": invite_id, "role": invite.role, "group": invite.group_key},
        )
    )
    return True
