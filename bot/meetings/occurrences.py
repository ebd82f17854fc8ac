"""Meeting reminders and follow-up reflections when they fall due: the meetings room's kinds.

The due runner (:mod:`bot.schedule.runner`) has already checked what every occurrence shares,
including that the meeting still stands at the version the occurrence was planned for; these
rules add what only a meeting knows, through the registry in :mod:`bot.schedule.kinds`:

* :class:`MeetingReminders` (``meeting_reminder``): only the latest of several reminders due
  at once goes, none soon after the partner was told about the meeting, and the reminder names
  their answer so far.
* :class:`MeetingFollowups` (``meeting_followup``): the reflection after a meeting goes to
  those who said they would come or were marked as there; it is opened as any scheduled
  check-in is (:class:`bot.partners.checkin_occurrences.ScheduledCheckins`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import meetings
from bot.calendar.zones import zone_named
from bot.partners.checkin_occurrences import ScheduledCheckins
from bot.schedule.kinds import DueBatch, DuePerson, OccurrenceKindRules, Outcome
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.models import (
    Involvement,
    Meeting,
    MeetingAnswer,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    OutboxMessage,
)


def _offset_hours(key: str) -> int | None:
    """The offset of a ``mt:<id>:v<version>:remind:<hours>h:<person>`` reminder key."""
    parts = key.split(":")
    if len(parts) > 4 and parts[3] == "remind" and parts[4].endswith("h"):
        try:
            return int(parts[4][:-1])
        except ValueError:
            return None
    return None


class MeetingReminders(OccurrenceKindRules):
    """Reminds a partner of a meeting (kind ``meeting_reminder``), with its answer buttons."""

    def __init__(self, prompts: Prompts) -> None:
        self.prompts = prompts
        self._meetings: Mapping[int, Meeting] = {}  # this batch's meetings, by id

    async def prepare(self, session: AsyncSession, batch: DueBatch) -> None:
        """Keep the batch's meetings (the runner has loaded them) for the reminders' words."""
        self._meetings = batch.meetings

    async def skip_reason(
        self, session: AsyncSession, occurrence: Occurrence, batch: DueBatch
    ) -> str | None:
        """``superseded`` by a later reminder due too, or ``recently_told`` of the meeting."""
        if self._superseded(occurrence, batch.occurrences):
            return "superseded"
        if await self._recently_told(session, occurrence, batch.now):
            return "recently_told"
        return None

    @staticmethod
    def _superseded(occurrence: Occurrence, batch: Sequence[Occurrence]) -> bool:
        """A later reminder for the same meeting and person is also due: send only that one."""
        return any(
            other.id != occurrence.id
            and other.kind == OccurrenceKind.MEETING_REMINDER
            and other.meeting_id == occurrence.meeting_id
            and other.person_id == occurrence.person_id
            and other.status == OccurrenceStatus.PLANNED
            and other.due_at > occurrence.due_at
            for other in batch
        )

    async def _recently_told(
        self, session: AsyncSession, occurrence: Occurrence, now: datetime
    ) -> bool:
        """They heard about this meeting a short while ago (a reminder, a change notice).

        After a change, the new time's reminders are planned afresh; one falling soon after
        the change notice (or an earlier reminder) would only repeat it. "A short while" is a
        quarter of the reminder's offset: 12 hours for a two-day reminder, 30 minutes for a
        two-hour one.
        """
        offset = _offset_hours(occurrence.key)
        if offset is None or occurrence.meeting_id is None:
            return False
        since = now - timedelta(hours=offset / 4)
        reminded = await session.execute(
            select(Occurrence.id)
            .where(
                Occurrence.meeting_id == occurrence.meeting_id,
                Occurrence.person_id == occurrence.person_id,
                Occurrence.kind == OccurrenceKind.MEETING_REMINDER,
                Occurrence.status == OccurrenceStatus.DONE,
                Occurrence.id != occurrence.id,
                Occurrence.done_at >= since,
            )
            .limit(1)
        )
        if reminded.first() is not None:
            return True
        noticed = await session.execute(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.person_id == occurrence.person_id,
                OutboxMessage.idempotency_key.like(f"mt:{occurrence.meeting_id}:%:changed:%"),
                OutboxMessage.created_at >= since,
            )
            .limit(1)
        )
        return noticed.first() is not None

    async def fire(
        self, session: AsyncSession, occurrence: Occurrence, who: DuePerson, *, now: datetime
    ) -> Outcome:
        """Queue the reminder, in the partner's zone, naming their answer so far."""
        meeting = self._meetings.get(occurrence.meeting_id or -1)
        if meeting is None:  # a reminder row without its meeting: nothing to say
            return OccurrenceStatus.SKIPPED, "unknown_kind"
        assert who.identity is not None  # checked by the runner
        hours_before = max(0, round((meeting.starts_at - now).total_seconds() / 3600))
        text, markup = meetings.reminder_message(
            self.prompts,
            meeting,
            name=who.identity.called,
            zone=zone_named(who.profile.timezone if who.profile else None),
            answer=await meetings.answer_of(session, meeting.id, who.person.id),
            hours_before=hours_before,
        )
        await enqueue(
            session,
            key=f"occ:{occurrence.id}",
            chat_id=who.identity.chat_id,
            text=text,
            reply_markup=markup,
            person_id=who.person.id,
            kind="meeting_reminder",
        )
        return OccurrenceStatus.DONE, None


class MeetingFollowups(OccurrenceKindRules):
    """The reflection after a meeting (kind ``meeting_followup``), for those who came."""

    def __init__(self, checkins: ScheduledCheckins) -> None:
        self.checkins = checkins  # the batch's scheduled check-ins: one open at a time

    async def skip_reason(
        self, session: AsyncSession, occurrence: Occurrence, batch: DueBatch
    ) -> str | None:
        """``not_coming`` unless they said they would come or were marked as there."""
        return None if await self._coming(session, occurrence) else "not_coming"

    async def _coming(self, session: AsyncSession, occurrence: Occurrence) -> bool:
        """They said they would come, or a connector marked them as there."""
        meeting_id = occurrence.meeting_id
        if meeting_id is not None:
            said = await meetings.answer_of(session, meeting_id, occurrence.person_id)
            if said == MeetingAnswer.YES:
                return True
        marked = await session.execute(
            select(Involvement.attended).where(
                Involvement.meeting_id == occurrence.meeting_id,
                Involvement.person_id == occurrence.person_id,
            )
        )
        return bool(marked.scalar_one_or_none())

    async def fire(
        self, session: AsyncSession, occurrence: Occurrence, who: DuePerson, *, now: datetime
    ) -> Outcome:
        """Open the follow-up reflection as a scheduled check-in."""
        return await self.checkins.fire(session, occurrence, who, now=now)
