"""The registry of occurrence kinds: what the due runner asks the room that owns each kind.

The due runner (:mod:`bot.schedule.runner`) does what every occurrence shares: it loads and
locks the partners, checks withdrawal, a cancelled or changed meeting, lateness, reachability,
enrolment, a break and quiet hours, and settles the row. What only one kind knows (whether a
check-in is needed at all, the words of a meeting reminder) lives in that kind's room, behind
:class:`OccurrenceKindRules`: the partners room for check-ins and their nudges, the meetings
room for reminders and follow-up reflections. The composition root fills an
:class:`OccurrenceKinds` with them and hands it to the scheduler, so this room never imports
the rooms above it.

For each batch the runner calls, on every distinct rules object once, :meth:`close_expired`
(before it even looks for due rows) and :meth:`prepare` (once the batch is loaded); then for
each occurrence of the kind :meth:`skip_reason` (before quiet hours) and, if it still goes,
:meth:`fire`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Meeting,
    Occurrence,
    OccurrenceKind,
    PartnerProfile,
    Person,
    TelegramIdentity,
)

#: What became of an occurrence: its new status (an ``OccurrenceStatus``) and the reason.
Outcome = tuple[str, str | None]


@dataclass
class DuePerson:
    """The partner an occurrence is for, as the runner loaded (and locked) them."""

    person: Person
    profile: PartnerProfile | None
    identity: TelegramIdentity | None


@dataclass
class DueBatch:
    """The occurrences one transaction of the runner handles, and what it loaded for them."""

    occurrences: Sequence[Occurrence]
    people: Mapping[int, DuePerson]  # by person id
    meetings: Mapping[int, Meeting]  # by meeting id, those the occurrences belong to
    now: datetime
    #: Each occurrence in its own savepoint. Without it (the fast path) a failure fails the
    #: whole batch, which is then run again carefully: rules may skip their own safety nets.
    careful: bool


class OccurrenceKindRules(ABC):
    """What the due runner asks the room that owns one kind of occurrence.

    The runner handles one batch at a time, and calls :meth:`prepare` before asking about any
    occurrence of it, so an implementation may keep what it learnt there until the next
    batch. Only :meth:`fire` has to be written; the rest do nothing by default.
    """

    async def close_expired(self, session: AsyncSession, *, now: datetime) -> int:
        """Before each batch, even an empty one: close what ran out of time; how many closed.

        The runner counts the total as the pass's ``closed_checkins``.
        """
        return 0

    async def prepare(self, session: AsyncSession, batch: DueBatch) -> None:  # noqa: B027
        """Once the batch is loaded: read at once what the checks below need for all of it."""

    async def skip_reason(
        self, session: AsyncSession, occurrence: Occurrence, batch: DueBatch
    ) -> str | None:
        """Why this occurrence need not go at all (asked before quiet hours); None if it should.

        The occurrence is then recorded as skipped with that reason.
        """
        return None

    @abstractmethod
    async def fire(
        self, session: AsyncSession, occurrence: Occurrence, who: DuePerson, *, now: datetime
    ) -> Outcome:
        """Write the occurrence's messages (in the outbox, in this transaction); the outcome.

        Every check the runner shares has passed: ``who`` is enrolled, reachable, not paused
        and outside their quiet hours.
        """


class OccurrenceKinds:
    """Which rules handle each kind of occurrence; filled by the composition root."""

    def __init__(self, rules: Mapping[OccurrenceKind, OccurrenceKindRules]) -> None:
        self._rules = {str(kind): each for kind, each in rules.items()}
        self._distinct: list[OccurrenceKindRules] = []
        for each in self._rules.values():
            if not any(each is seen for seen in self._distinct):
                self._distinct.append(each)

    def rules_for(self, kind: str) -> OccurrenceKindRules | None:
        """The rules for ``kind`` (an occurrence row's ``kind``); None if nobody registered it."""
        return self._rules.get(kind)

    def each(self) -> list[OccurrenceKindRules]:
        """Every distinct rules object once (one may serve several kinds), in order."""
        return list(self._distinct)
