"""A partner's legacy: what they took part in (meetings, activities, hours) and what changed
because of them, for ``/journey`` and, as a one-page PDF to keep, for ``/journey full``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.words import date_words, day_words, hours_words
from bot.involvement.buttons import kind_words
from prompts import Prompts
from storage.models import ImpactEvent, Involvement, InvolvementStatus, Meeting
from storage.queries.impact import changes_for
from storage.queries.involvement import Given, entries_of, given_by
from storage.queries.roster import meetings_attended

MEETINGS = 10
ACTIVITIES = 10


@dataclass(frozen=True)
class Legacy:
    """What a partner gave and what it changed."""

    meetings: list[Meeting]
    activities: list[Involvement]
    given: Given
    changes: list[ImpactEvent]

    @property
    def empty(self) -> bool:
        """True when there is nothing to list yet."""
        return not (self.meetings or self.activities or self.changes)


async def load_legacy(session: AsyncSession, person_id: int) -> Legacy:
    """Read a partner's meetings, logged activities, approved hours and impact events."""
    activities = [
        e
        for e in await entries_of(session, person_id, limit=ACTIVITIES + MEETINGS)
        if e.meeting_id is None and e.status == InvolvementStatus.APPROVED
    ][:ACTIVITIES]
    return Legacy(
        meetings=await meetings_attended(session, person_id, MEETINGS),
        activities=activities,
        given=(await given_by(session, [person_id])).get(person_id, Given()),
        changes=await changes_for(session, person_id),
    )


def legacy_values(prompts: Prompts, legacy: Legacy, zone: ZoneInfo) -> dict[str, Any]:
    """The legacy in words, for the templates."""
    return {
        "meetings": [
            {"title": m.title, "day": day_words(prompts, m.starts_at, zone)}
            for m in legacy.meetings
        ],
        "activities": [
            {
                "kind": kind_words(prompts, e.kind),
                "day": day_words(prompts, e.occurred_at, zone),
                "hours": hours_words(prompts, e.minutes),
            }
            for e in legacy.activities
        ],
        "hours": hours_words(prompts, legacy.given.minutes),
        "changes": [
            {"text": c.text, "date": date_words(prompts, c.created_at, zone)}
            for c in legacy.changes
        ],
    }
