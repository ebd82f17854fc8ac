"""Scheduled check-ins and their nudges when they fall due: the partners room's occurrence kinds.

The due runner (:mod:`bot.schedule.runner`) has already checked what every occurrence shares
(withdrawal, lateness, reachability, a break, quiet hours); these rules add what only a
check-in knows, through the registry in :mod:`bot.schedule.kinds`:

* :class:`ScheduledCheckins` (``checkin``): before each batch it closes the check-ins whose time
  ran out and learns who has one open. When two scheduled check-ins fall due at once, the
  rarer one goes; one that would cut into a check-in the partner is part-way through waits;
  an opened check-in plans its one gentle nudge. The meetings room opens a meeting's
  follow-up reflection through it too.
* :class:`CheckinNudges` (``checkin_nudge``): the nudge goes only while its check-in is open
  and unanswered, and asks the current question again under a short reminder.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.zones import zone_of
from bot.partners import checkins
from bot.partners.views import checkins as checkin_views
from bot.protocol import StudyProtocol
from bot.schedule.kinds import DueBatch, DuePerson, OccurrenceKindRules, Outcome
from prompts import Prompts
from storage.models import (
    Checkin,
    CheckinStatus,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
)

SAME_TIME = timedelta(minutes=1)  # two scheduled check-ins this close count as one moment
# Which scheduled check-in goes when two fall due at once: the rarer one.
RARER_FIRST = ("monthly", "weekly")
BUSY_RETRY = timedelta(minutes=15)  # how often a check-in waiting for another one looks again


class ScheduledCheckins(OccurrenceKindRules):
    """Opens a scheduled check-in (kind ``checkin``) when it falls due."""

    def __init__(self, protocol: StudyProtocol, prompts: Prompts) -> None:
        self.protocol = protocol
        self.prompts = prompts
        # Check-in key -> its place when two fall due at once (see _outranked).
        self._rank = {
            c.key: RARER_FIRST.index(c.schedule)
            for c in protocol.checkins
            if c.schedule in RARER_FIRST
        }
        self._with_open: set[int] = set()  # partners of this batch with a check-in open
        self._careful = True

    async def close_expired(self, session: AsyncSession, *, now: datetime) -> int:
        """Close every open check-in past its window; how many."""
        return len(await checkins.expire_due(session, now))

    async def prepare(self, session: AsyncSession, batch: DueBatch) -> None:
        """Learn, in one query, which partners of the batch have a check-in open."""
        self._careful = batch.careful
        found_open = await session.execute(
            select(Checkin.person_id).where(
                Checkin.person_id.in_(list(batch.people)), Checkin.status == CheckinStatus.OPEN
            )
        )
        self._with_open = set(found_open.scalars())

    async def skip_reason(
        self, session: AsyncSession, occurrence: Occurrence, batch: DueBatch
    ) -> str | None:
        """``same_time`` when a rarer scheduled check-in falls due with this one."""
        return "same_time" if self._outranked(occurrence, batch.occurrences) else None

    def _outranked(self, occurrence: Occurrence, batch: Sequence[Occurrence]) -> bool:
        """Another scheduled check-in for them falls due at the same moment and goes instead.

        A monthly reflection on the 1st can fall on the weekly check-in's day and time; two
        prompts at once would only close the first unanswered. The rarer one goes.
        """

        def order(item: Occurrence) -> tuple[int, int]:
            return self._rank.get(item.checkin_key or "", len(RARER_FIRST)), item.id

        return any(
            other.id != occurrence.id
            and other.kind == OccurrenceKind.CHECKIN
            and other.person_id == occurrence.person_id
            and abs(other.due_at - occurrence.due_at) < SAME_TIME
            and order(other) < order(occurrence)
            for other in batch
        )

    async def fire(
        self, session: AsyncSession, occurrence: Occurrence, who: DuePerson, *, now: datetime
    ) -> Outcome:
        """Open the occurrence's check-in and plan its nudge; or wait, or say why not."""
        key = occurrence.checkin_key
        if key is None or not any(c.key == key for c in self.protocol.checkins):
            return OccurrenceStatus.SKIPPED, "not_in_protocol"
        maybe_open = who.person.id in self._with_open
        going = (
            await checkins.current_open(session, who.person.id, now=now) if maybe_open else None
        )
        if (
            going is not None
            and going.occurrence_key != occurrence.key
            and (going.asked_for or await checkins.has_answers(session, going.id))
        ):
            # They are part-way through another check-in, or asked for one themselves (their
            # first answer may be on its way): this one waits rather than cut in and close
            # it under them. An untouched scheduled one is simply replaced (open_checkin
            # closes it as missed).
            later = min(now + BUSY_RETRY, occurrence.window_ends_at)
            if later >= occurrence.window_ends_at:
                return OccurrenceStatus.MISSED, "busy"
            occurrence.due_at = later
            return OccurrenceStatus.PLANNED, "busy"
        opened = await checkins.open_checkin(
            session,
            self.protocol,
            self.prompts,
            who.person,
            key,
            occurrence_key=occurrence.key,
            now=now,
            source="scheduled",
            due_at=occurrence.due_at,
            identity=who.identity,
            trusted=not self._careful,
            none_open=not maybe_open,
        )
        self._with_open.add(who.person.id)
        if opened is None:
            reason = checkins.refusal_reason(who.person, who.profile, now=now, source="scheduled")
            return OccurrenceStatus.MISSED, reason or "refused"
        occurrence.checkin_id = opened.id
        self._plan_nudge(session, opened, now=now)
        return OccurrenceStatus.DONE, None

    def _plan_nudge(self, session: AsyncSession, checkin: Checkin, *, now: datetime) -> None:
        definition = self.protocol.checkin(checkin.checkin_key)
        if definition.reminder_after_hours is None:
            return
        due = (checkin.opened_at or now) + timedelta(hours=definition.reminder_after_hours)
        if due >= checkin.closes_at:
            return
        session.add(
            Occurrence(
                key=f"nudge:{checkin.occurrence_key}",
                kind=OccurrenceKind.CHECKIN_NUDGE,
                person_id=checkin.person_id,
                checkin_key=checkin.checkin_key,
                checkin_id=checkin.id,
                due_at=due,
                window_ends_at=checkin.closes_at,
                status=OccurrenceStatus.PLANNED,
                planned_at=now,
            )
        )


class CheckinNudges(OccurrenceKindRules):
    """The one gentle reminder of an unanswered check-in (kind ``checkin_nudge``)."""

    def __init__(self, protocol: StudyProtocol, prompts: Prompts) -> None:
        self.protocol = protocol
        self.prompts = prompts

    async def skip_reason(
        self, session: AsyncSession, occurrence: Occurrence, batch: DueBatch
    ) -> str | None:
        """``closed`` when the check-in is no longer open, ``answered`` once they began it."""
        checkin = (
            await session.get(Checkin, occurrence.checkin_id)
            if occurrence.checkin_id is not None
            else None
        )
        if (
            checkin is None
            or checkin.status != CheckinStatus.OPEN
            or checkin.closes_at <= batch.now
        ):
            return "closed"
        if await checkins.has_answers(session, checkin.id):
            return "answered"
        return None

    async def fire(
        self, session: AsyncSession, occurrence: Occurrence, who: DuePerson, *, now: datetime
    ) -> Outcome:
        """Ask the check-in's current question again, under a reminder of when it closes."""
        checkin = await session.get(Checkin, occurrence.checkin_id)
        if checkin is None or who.identity is None:
            return OccurrenceStatus.SKIPPED, "closed"
        intro = checkin_views.nudge(
            self.prompts,
            name=who.identity.called,
            closes_at=checkin.closes_at,
            zone=zone_of(who.profile),
        )
        sent = await checkins.resend_current(
            session,
            self.protocol,
            self.prompts,
            checkin,
            key=f"occ:{occurrence.id}",
            intro=intro,
            step=False,
        )
        return (OccurrenceStatus.DONE, None) if sent else (OccurrenceStatus.SKIPPED, "closed")
