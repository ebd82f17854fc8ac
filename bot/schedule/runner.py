"""The due runner: what happens to a planned occurrence when its time comes.

Pause, quiet hours, withdrawal and a blocked bot are checked here, when the occurrence falls
due, not only when it was planned. Each occurrence ends in one of four ways, and the reason is
kept on the row:

* **done**: its messages are in the outbox (a check-in opened, a reminder queued);
* **deferred** (still planned, later ``due_at``): it fell in the partner's quiet hours, or
  the partner is part-way through another check-in, and there is time left in its window;
* **missed**: its lateness window ended first (downtime), or the partner is paused or
  unreachable, or quiet hours last past the window;
* **skipped** / **cancelled**: nothing to do any more (answered already, not coming to the
  meeting, meeting changed or cancelled, partner withdrew).

After downtime the backlog is handled the same way: what is still inside its window goes out
(the outbox sender spreads it under the rate limit), and the rest is recorded as missed.

The checks above are the same for every kind of occurrence and live here; what one kind alone
knows (whether a nudge is still needed, the words of a meeting reminder) its room tells the
runner through the registry in :mod:`bot.schedule.kinds`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.breaks import is_paused
from bot.calendar.quiet import quiet_ends, quiet_hours
from bot.calendar.zones import zone_of
from bot.protocol import StudyProtocol
from bot.schedule.kinds import DueBatch, DuePerson, OccurrenceKinds, Outcome
from storage.models import (
    Checkin,
    CheckinStatus,
    Meeting,
    Occurrence,
    OccurrenceStatus,
    PartnerProfile,
    Person,
    PersonStatus,
    TelegramIdentity,
)

log = logging.getLogger(__name__)

BATCH = 50  # occurrences per transaction: short, so the sender is never held up for long


@dataclass
class DueResult:
    """What one pass of the due runner did, by outcome."""

    done: int = 0
    deferred: int = 0
    missed: int = 0
    skipped: int = 0
    cancelled: int = 0
    closed_checkins: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: DueResult) -> None:
        """Add another pass's counts to these."""
        for name in ("done", "deferred", "missed", "skipped", "cancelled", "closed_checkins"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    @property
    def handled(self) -> int:
        """How many occurrences left the planned state (deferrals not counted)."""
        return self.done + self.missed + self.skipped + self.cancelled


def _version_of(key: str) -> int | None:
    """The meeting version a ``mt:<id>:v<version>:...`` key was planned for."""
    parts = key.split(":")
    if len(parts) > 2 and parts[0] == "mt" and parts[2].startswith("v"):
        try:
            return int(parts[2][1:])
        except ValueError:
            return None
    return None


class DueRunner:
    """Handles every occurrence that has fallen due, in batches, each in its own savepoint.

    What differs by kind (whether it is still needed, what it sends) is asked of the rules
    registered for that kind in ``kinds`` (see :mod:`bot.schedule.kinds`).
    """

    def __init__(self, protocol: StudyProtocol, kinds: OccurrenceKinds) -> None:
        self.protocol = protocol
        self.kinds = kinds

    async def run(
        self, session: AsyncSession, *, now: datetime, limit: int = BATCH, careful: bool = True
    ) -> DueResult:
        """One batch: close finished check-ins, then handle up to ``limit`` due occurrences.

        ``careful`` puts each occurrence in its own savepoint, so that one that fails is
        recorded as missed and the rest go on. Without it (the fast path, a few round trips
        fewer per occurrence) any failure fails the whole batch, and the caller must run it
        again carefully; nothing is half-done either way.
        """
        result = DueResult()
        for rules in self.kinds.each():
            result.closed_checkins += await rules.close_expired(session, now=now)
        rows = await session.execute(
            select(Occurrence)
            .where(Occurrence.status == OccurrenceStatus.PLANNED, Occurrence.due_at <= now)
            .order_by(Occurrence.due_at, Occurrence.id)
            .limit(limit)
        )
        due = list(rows.scalars())
        if not due:
            return result
        people = await self._people(session, {o.person_id for o in due})
        meeting_ids = {o.meeting_id for o in due if o.meeting_id is not None}
        found = await session.execute(select(Meeting).where(Meeting.id.in_(meeting_ids)))
        batch = DueBatch(
            occurrences=due,
            people=people,
            meetings={m.id: m for m in found.scalars()},
            now=now,
            careful=careful,
        )
        for rules in self.kinds.each():
            await rules.prepare(session, batch)
        for occurrence in due:
            who = people.get(occurrence.person_id)
            if not careful:
                outcome, reason = await self._handle(session, occurrence, who, batch)
                self._settle(occurrence, outcome, reason, now, result)
                continue
            occurrence_id = occurrence.id
            try:
                async with session.begin_nested():
                    outcome, reason = await self._handle(session, occurrence, who, batch)
            except Exception:
                # One broken occurrence must not hold back the others; it is recorded and
                # never retried in a loop. The rollback expired it: read it again first.
                log.exception("occurrence %s failed", occurrence_id)
                await session.refresh(occurrence)
                outcome, reason = OccurrenceStatus.MISSED, "error"
            self._settle(occurrence, outcome, reason, now, result)
        return result

    async def _people(self, session: AsyncSession, ids: set[int]) -> dict[int, DuePerson]:
        # FOR UPDATE (PostgreSQL; SQLite has one writer at a time anyway): a withdrawal
        # committed while this batch runs would otherwise be missed, and its partner given a
        # check-in after all. Withdrawal changes the person row first, so whichever comes
        # second waits for the other and sees what it did.
        rows = await session.execute(
            select(Person, PartnerProfile, TelegramIdentity)
            .outerjoin(PartnerProfile, PartnerProfile.person_id == Person.id)
            .outerjoin(TelegramIdentity, TelegramIdentity.person_id == Person.id)
            .where(Person.id.in_(ids))
            .order_by(Person.id)  # one locking order for every batch
            .with_for_update(of=Person)
        )
        return {p.id: DuePerson(p, profile, identity) for p, profile, identity in rows}

    def _settle(
        self,
        occurrence: Occurrence,
        outcome: str,
        reason: str | None,
        now: datetime,
        result: DueResult,
    ) -> None:
        if outcome == OccurrenceStatus.PLANNED:
            result.deferred += 1
            occurrence.reason = reason
            return
        occurrence.status = outcome
        occurrence.reason = reason
        occurrence.done_at = now
        counter = {
            OccurrenceStatus.DONE: "done",
            OccurrenceStatus.MISSED: "missed",
            OccurrenceStatus.SKIPPED: "skipped",
            OccurrenceStatus.CANCELLED: "cancelled",
        }[OccurrenceStatus(outcome)]
        setattr(result, counter, getattr(result, counter) + 1)
        if reason is not None and outcome != OccurrenceStatus.DONE:
            result.reasons[reason] = result.reasons.get(reason, 0) + 1

    async def _handle(
        self,
        session: AsyncSession,
        occurrence: Occurrence,
        who: DuePerson | None,
        batch: DueBatch,
    ) -> Outcome:
        """Decide and do; returns the new status and the reason."""
        now = batch.now
        if who is None or who.person.status == PersonStatus.WITHDRAWN:
            return OccurrenceStatus.CANCELLED, "withdrawn"
        if occurrence.meeting_id is not None:
            meeting = batch.meetings.get(occurrence.meeting_id)
            if meeting is None or meeting.cancelled_at is not None:
                return OccurrenceStatus.CANCELLED, "meeting_cancelled"
            if _version_of(occurrence.key) not in (None, meeting.version):
                return OccurrenceStatus.SKIPPED, "meeting_changed"
        if now >= occurrence.window_ends_at:
            return OccurrenceStatus.MISSED, "late"
        if who.person.status == PersonStatus.UNREACHABLE:
            return OccurrenceStatus.MISSED, "unreachable"
        if who.identity is None or who.profile is None:
            return OccurrenceStatus.MISSED, "not_enrolled"
        if is_paused(who.profile, now):
            return OccurrenceStatus.MISSED, "paused"
        rules = self.kinds.rules_for(occurrence.kind)
        skip = await rules.skip_reason(session, occurrence, batch) if rules else None
        if skip is not None:
            return OccurrenceStatus.SKIPPED, skip
        window = quiet_hours(who.profile, self.protocol)
        zone = zone_of(who.profile)
        if window is not None and window.contains(now.astimezone(zone).time()):
            until = quiet_ends(window, now, zone)
            if until < occurrence.window_ends_at:
                occurrence.due_at = until
                return OccurrenceStatus.PLANNED, "quiet_hours"
            return OccurrenceStatus.MISSED, "quiet_hours"
        if rules is None:
            return OccurrenceStatus.SKIPPED, "unknown_kind"
        return await rules.fire(session, occurrence, who, now=now)


async def next_due(session: AsyncSession, *, after: datetime | None = None) -> datetime | None:
    """When the earliest planned occurrence, or open check-in's closing, falls due.

    ``after``: only what falls due later than that.
    """
    planned = select(Occurrence.due_at).where(Occurrence.status == OccurrenceStatus.PLANNED)
    closes = select(Checkin.closes_at).where(Checkin.status == CheckinStatus.OPEN)
    if after is not None:
        planned = planned.where(Occurrence.due_at > after)
        closes = closes.where(Checkin.closes_at > after)
    first = await session.execute(planned.order_by(Occurrence.due_at).limit(1))
    closing = await session.execute(closes.order_by(Checkin.closes_at).limit(1))
    times = [t for t in (first.scalar_one_or_none(), closing.scalar_one_or_none()) if t]
    return min(times) if times else None
