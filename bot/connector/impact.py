""" "You said, we did": telling partners what changed because of their input.

A connector picks the partners (a group or everyone, those who came to a meeting, or those
whose words mention a word), writes what changed, sees a preview and sends it. Each partner
gets it in their own chat (after their quiet hours), and it is kept as an ``ImpactEvent``
with one ``ImpactRecipient`` per partner, linked to the contribution it answers (the meeting,
or the answer that mentioned the word). The steps are a ``StaffDraft`` of kind "yousaid".
Only partners taking part (set up, reachable, not withdrawn) in the connector's groups are
picked. Nothing here commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.quiet import is_quiet, quiet_ends, quiet_hours
from bot.calendar.zones import zone_of
from bot.protocol import StudyProtocol
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.crypto import TextCipher
from storage.models import (
    Answer,
    AuditEvent,
    ImpactEvent,
    ImpactRecipient,
    Involvement,
    PartnerProfile,
    Person,
    PersonStatus,
    Role,
    StaffDraft,
    TelegramIdentity,
)
from storage.queries import drafts

DRAFT_KIND = "yousaid"
TEXT_LIMIT = 1500
WORD_LIMIT = 40
EVERYONE = "*"


@dataclass(frozen=True)
class Pick:
    """A partner to tell, and the contribution the message answers."""

    person_id: int
    meeting_id: int | None = None
    answer_id: int | None = None


async def start_draft(session: AsyncSession, person_id: int, *, now: datetime) -> StaffDraft:
    """Begin a "you said" draft (replacing any other draft of this connector)."""
    return await drafts.start(session, person_id, DRAFT_KIND, "pick", {}, now=now)


async def get_draft(session: AsyncSession, person_id: int, *, now: datetime) -> StaffDraft | None:
    """The connector's unfinished "you said" message, if any (forgotten after a day)."""
    return await drafts.get(session, person_id, DRAFT_KIND, now=now)


def save(draft: StaffDraft, step: str, *, now: datetime, **values: Any) -> None:
    """Move the draft to ``step`` with ``values`` added."""
    drafts.save(draft, step, now=now, **values)


async def _taking_part(
    session: AsyncSession, groups: frozenset[str] | None
) -> dict[int, PartnerProfile]:
    query = (
        select(PartnerProfile)
        .join(Person, Person.id == PartnerProfile.person_id)
        .where(
            Person.role == Role.PARTNER,
            Person.status == PersonStatus.ACTIVE,
            PartnerProfile.onboarded_at.is_not(None),
        )
    )
    if groups is not None:
        query = query.where(PartnerProfile.group_key.in_(sorted(groups)))
    return {p.person_id: p for p in (await session.execute(query)).scalars()}


async def pick(
    session: AsyncSession,
    cipher: TextCipher,
    selection: dict[str, Any],
    scope: frozenset[str] | None,
) -> list[Pick]:
    """The partners ``selection`` names ({"by": group|meeting|word, "value": ...}), in scope."""
    people = await _taking_part(session, scope)
    by, value = selection.get("by"), selection.get("value")
    if by == "group":
        return [
            Pick(pid)
            for pid, profile in sorted(people.items())
            if value in (EVERYONE, profile.group_key)
        ]
    if by == "meeting" and isinstance(value, int):
        came = await session.execute(
            select(Involvement.person_id).where(
                Involvement.meeting_id == value, Involvement.attended.is_(True)
            )
        )
        return [
            Pick(pid, meeting_id=value) for pid in sorted(set(came.scalars())) if pid in people
        ]
    if by == "word":
        pattern = re.compile(rf"\b{re.escape(str(value))}\b", re.IGNORECASE)
        answers = await session.execute(
            select(Answer)
            .where(
                Answer.person_id.in_(list(people)),
                Answer.superseded_at.is_(None),
                Answer.value_text.is_not(None),
            )
            .order_by(Answer.answered_at.desc())
        )
        found: dict[int, Pick] = {}
        for answer in answers.scalars():
            if answer.person_id in found:
                continue
            try:
                text = cipher.decrypt(answer.value_text or "", answer.text_encrypted)
            except ValueError:
                continue
            if pattern.search(text):
                found[answer.person_id] = Pick(answer.person_id, answer_id=answer.id)
        return [found[pid] for pid in sorted(found)]
    return []


async def send(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    picks: list[Pick],
    *,
    text: str,
    selection: dict[str, Any],
    by_person_id: int,
    now: datetime,
) -> ImpactEvent:
    """Keep the impact event and queue the message to each picked partner's chat."""
    event = ImpactEvent(
        text=text, selection=selection, created_by_person_id=by_person_id, created_at=now
    )
    session.add(event)
    await session.flush()
    ids = [p.person_id for p in picks]
    rows = await session.execute(
        select(TelegramIdentity.person_id, TelegramIdentity.chat_id).where(
            TelegramIdentity.person_id.in_(ids)
        )
    )
    chats = {person_id: chat_id for person_id, chat_id in rows}
    profiles = {
        p.person_id: p
        for p in (
            await session.execute(select(PartnerProfile).where(PartnerProfile.person_id.in_(ids)))
        ).scalars()
    }
    message = prompts.render("yousaid/message", text=text)
    for chosen in picks:
        session.add(
            ImpactRecipient(
                event_id=event.id,
                person_id=chosen.person_id,
                meeting_id=chosen.meeting_id,
                answer_id=chosen.answer_id,
            )
        )
        chat_id, profile = chats.get(chosen.person_id), profiles.get(chosen.person_id)
        if chat_id is None or profile is None:
            continue
        window = quiet_hours(profile, protocol)
        not_before = (
            quiet_ends(window, now, zone_of(profile))
            if window is not None and is_quiet(profile, protocol, now)
            else None
        )
        await enqueue(
            session,
            key=f"yousaid:{event.id}:{chosen.person_id}",
            chat_id=chat_id,
            text=message,
            person_id=chosen.person_id,
            kind="yousaid",
            not_before=not_before,
        )
    session.add(
        AuditEvent(
            actor_person_id=by_person_id,
            action="yousaid.sent",
            detail={"event_id": event.id, "selection": selection, "recipients": len(picks)},
            at=now,
        )
    )
    return event
