"""When handling something fails: an apology to the person and an alert to the connectors."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.connector import views
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.queries.people import connector_chat_ids


async def notify_staff_of_failure(
    session: AsyncSession,
    prompts: Prompts,
    reference: str,
    error: BaseException,
    *,
    chat_id: int | None = None,
    person_id: int | None = None,
) -> None:
    """Queue the connectors' alert (and, when a person was waiting, an apology to them).

    Neither message carries what the person wrote: only a reference and the error's type.
    """
    alert = views.failure_alert(prompts, reference=reference, error=error).text
    for staff_chat in await connector_chat_ids(session):
        await enqueue(
            session,
            key=f"failure:{reference}:{staff_chat}",
            chat_id=staff_chat,
            text=alert,
            kind="staff_alert",
        )
    if chat_id is not None and person_id is not None:
        await enqueue(
            session,
            key=f"failure:{reference}:sorry",
            chat_id=chat_id,
            text=views.sorry(prompts).text,
            person_id=person_id,
            kind="reply",
        )
