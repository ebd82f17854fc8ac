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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import meetings
from bot.calendar.breaks import is_paused
from bot.calendar.quiet import quiet_ends, quiet_hours
from bot.calendar.words import day_words, time_words
from bot.calendar.zones import zone_named, zone_of
from bot.partners import checkins
from bot.protocol import StudyProtocol
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.models import (
    Checkin,
    CheckinStatus,
    Involvement,
    Meeting,
    MeetingAnswer,
    MeetingResponse,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    OutboxMessage,
    PartnerProfile,
    Person,
    PersonStatus,
    TelegramIdentity,
)

log = logging.getLogger(__name__)

SAME_TIME = timedelta(minutes=1)  # two scheduled check-ins this close count as one moment
# Which scheduled check-in goes when two fall due at once: the rarer one.
RARER_FIRST = ("monthly", "weekly")
BUSY_RETRY = timedelta(minutes=15)  # how often a check-in waiting for another one looks again
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


@dataclass
class _Person:
    person: Person
    profile: PartnerProfile | None
    identity: TelegramIdentity | None


def _offset_hours(key: str) -> int | None:
    """The offset of a ``mt:<id>:v<version>:remind:<hours>h:<person>`` reminder key."""
    parts = key.split(":")
    if len(parts) > 4 and parts[3] == "remind" and parts[4].endswith("h"):
        try:
            return int(parts[4][:-1])
        except ValueError:
            return None
    return None


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
    """Handles every occurrence that has fallen due, in batches, each in its own savepoint."""

    def __init__(self, protocol: StudyProtocol, prompts: Prompts) -> None:
        self.protocol = protocol
        self.prompts = prompts
        self._careful = True
        # Check-in key -> its place when two fall due at once (see _outranked).
        self._rank = {
            c.key: RARER_FIRST.index(c.schedule)
            for c in protocol.checkins
            if c.schedule in RARER_FIRST
        }
        self._with_open: set[int] = set()  # partners of this batch with a check-in open

    async def run(
        self, session: AsyncSession, *, now: datetime, limit: int = BATCH, careful: bool = True
    ) -> DueResult:
        """One batch: close finished check-ins, then handle up to ``limit`` due occurrences.

        ``careful`` puts each occurrence in its own savepoint, so that one that fails is
        recorded as missed and the rest go on. Without it (the fast path, a few round trips
        fewer per occurrence) any failure fails the whole batch, and the caller must run it
        again carefully; nothing is half-done either way.
        """
        self._careful = careful
        result = DueResult()
        result.closed_checkins = len(await checkins.expire_due(session, now))
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
        found_open = await session.execute(
            select(Checkin.person_id).where(
                Checkin.person_id.in_(people), Checkin.status == CheckinStatus.OPEN
            )
        )
        self._with_open = set(found_open.scalars())
        meeting_ids = {o.meeting_id for o in due if o.meeting_id is not None}
        found = await session.execute(select(Meeting).where(Meeting.id.in_(meeting_ids)))
        meetings_by_id = {m.id: m for m in found.scalars()}
        for occurrence in due:
            who = people.get(occurrence.person_id)
            if not careful:
                outcome, reason = await self._handle(
                    session, occurrence, who, meetings_by_id, due, now=now
                )
                self._settle(occurrence, outcome, reason, now, result)
                continue
            occurrence_id = occurrence.id
            try:
                async with session.begin_nested():
                    outcome, reason = await self._handle(
                        session, occurrence, who, meetings_by_id, due, now=now
                    )
            except Exception:
                # One broken occurrence must not hold back the others; it is recorded and
                # never retried in a loop. The rollback expired it: read it again first.
                log.exception("occurrence %s failed", occurrence_id)
                await session.refresh(occurrence)
                outcome, reason = OccurrenceStatus.MISSED, "error"
            self._settle(occurrence, outcome, reason, now, result)
        return result

    async def _people(self, session: AsyncSession, ids: set[int]) -> dict[int, _Person]:
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
        return {p.id: _Person(p, profile, identity) for p, profile, identity in rows}

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
        who: _Person | None,
        meetings_by_id: dict[int, Meeting],
        batch: Sequence[Occurrence],
        *,
        now: datetime,
    ) -> tuple[str, str | None]:
        """Decide and do; returns the new status and the reason."""
        if who is None or who.person.status == PersonStatus.WITHDRAWN:
            return OccurrenceStatus.CANCELLED, "withdrawn"
        meeting = meetings_by_id.get(occurrence.meeting_id or -1)
        if occurrence.meeting_id is not None:
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
        kind = occurrence.kind
        if kind == OccurrenceKind.CHECKIN_NUDGE:
            skip = await self._nudge_not_needed(session, occurrence, now)
            if skip is not None:
                return OccurrenceStatus.SKIPPED, skip
        if kind == OccurrenceKind.CHECKIN and self._outranked(occurrence, batch):
            return OccurrenceStatus.SKIPPED, "same_time"
        if kind == OccurrenceKind.MEETING_REMINDER and self._superseded(occurrence, batch):
            return OccurrenceStatus.SKIPPED, "superseded"
        if kind == OccurrenceKind.MEETING_REMINDER and await self._recently_told(
            session, occurrence, now
        ):
            return OccurrenceStatus.SKIPPED, "recently_told"
        if kind == OccurrenceKind.MEETING_FOLLOWUP and not await self._coming(session, occurrence):
            return OccurrenceStatus.SKIPPED, "not_coming"
        window = quiet_hours(who.profile, self.protocol)
        zone = zone_of(who.profile)
        if window is not None and window.contains(now.astimezone(zone).time()):
            until = quiet_ends(window, now, zone)
            if until < occurrence.window_ends_at:
                occurrence.due_at = until
                return OccurrenceStatus.PLANNED, "quiet_hours"
            return OccurrenceStatus.MISSED, "quiet_hours"
        if kind in (OccurrenceKind.CHECKIN, OccurrenceKind.MEETING_FOLLOWUP):
            return await self._open_checkin(session, occurrence, who, now=now)
        if kind == OccurrenceKind.CHECKIN_NUDGE:
            return await self._nudge(session, occurrence, who, now=now)
        if kind == OccurrenceKind.MEETING_REMINDER and meeting is not None:
            return await self._remind(session, occurrence, who, meeting, now=now)
        return OccurrenceStatus.SKIPPED, "unknown_kind"

    # -- check-ins ---------------------------------------------------------------------------

    async def _open_checkin(
        self, session: AsyncSession, occurrence: Occurrence, who: _Person, *, now: datetime
    ) -> tuple[str, str | None]:
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
            and await checkins.has_answers(session, going.id)
        ):
            # They are part-way through another check-in: this one waits rather than cut in.
            # An untouched one is simply replaced (open_checkin closes it as missed).
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

    async def _nudge_not_needed(
        self, session: AsyncSession, occurrence: Occurrence, now: datetime
    ) -> str | None:
        checkin = (
            await session.get(Checkin, occurrence.checkin_id)
            if occurrence.checkin_id is not None
            else None
        )
        if checkin is None or checkin.status != CheckinStatus.OPEN or checkin.closes_at <= now:
            return "closed"
        if await checkins.has_answers(session, checkin.id):
            return "answered"
        return None

    async def _nudge(
        self, session: AsyncSession, occurrence: Occurrence, who: _Person, *, now: datetime
    ) -> tuple[str, str | None]:
        checkin = await session.get(Checkin, occurrence.checkin_id)
        if checkin is None or who.identity is None:
            return OccurrenceStatus.SKIPPED, "closed"
        zone = zone_of(who.profile)
        closes = checkin.closes_at.astimezone(zone)
        intro = self.prompts.render(
            "checkins/nudge",
            name=who.identity.called,
            day=day_words(self.prompts, closes, zone),
            time=time_words(self.prompts, closes.time()),
        )
        sent = await checkins.resend_current(
            session,
            self.protocol,
            self.prompts,
            checkin,
            key=f"occ:{occurrence.id}",
            intro=intro,
        )
        return (OccurrenceStatus.DONE, None) if sent else (OccurrenceStatus.SKIPPED, "closed")

    # -- meetings ----------------------------------------------------------------------------

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

    async def _coming(self, session: AsyncSession, occurrence: Occurrence) -> bool:
        """They said they would come, or a connector marked them as there."""
        said = await session.execute(
            select(MeetingResponse.answer).where(
                MeetingResponse.meeting_id == occurrence.meeting_id,
                MeetingResponse.person_id == occurrence.person_id,
            )
        )
        if said.scalar_one_or_none() == MeetingAnswer.YES:
            return True
        marked = await session.execute(
            select(Involvement.attended).where(
                Involvement.meeting_id == occurrence.meeting_id,
                Involvement.person_id == occurrence.person_id,
            )
        )
        return bool(marked.scalar_one_or_none())

    async def _remind(
        self,
        session: AsyncSession,
        occurrence: Occurrence,
        who: _Person,
        meeting: Meeting,
        *,
        now: datetime,
    ) -> tuple[str, str | None]:
        assert who.identity is not None  # checked by _handle
        said = await session.execute(
            select(MeetingResponse.answer).where(
                MeetingResponse.meeting_id == meeting.id,
                MeetingResponse.person_id == who.person.id,
            )
        )
        hours_before = max(0, round((meeting.starts_at - now).total_seconds() / 3600))
        reminder = meetings.reminder_message(
            self.prompts,
            meeting,
            name=who.identity.called,
            zone=zone_named(who.profile.timezone if who.profile else None),
            answer=said.scalar_one_or_none(),
            hours_before=hours_before,
        )
        await enqueue(
            session,
            key=f"occ:{occurrence.id}",
            chat_id=who.identity.chat_id,
            text=reminder.text,
            reply_markup=reminder.markup,
            person_id=who.person.id,
            kind="meeting_reminder",
        )
        return OccurrenceStatus.DONE, None


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
