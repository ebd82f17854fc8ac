"""One partner's card for a connector: how they take part, their journey as a chart, what
they said in their own words (only where they agreed to be quoted, and marked with their
quote and credit choices), meetings, time given, open alerts, and whether the connector can
message them from here (and if not, why)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.words import date_words, day_words, hours_words
from bot.calendar.zones import zone_of
from bot.connector.relay import cannot_write
from bot.connector.roster import line_values
from bot.involvement.review import entry_values
from bot.partners.journey import Journey, load_journey, shorten
from bot.protocol import StudyProtocol
from prompts import Prompts
from storage.crypto import TextCipher
from storage.models import PartnerProfile
from storage.queries.consents import consents_in_force
from storage.queries.involvement import Given, given_by
from storage.queries.roster import (
    free_text_answers,
    meetings_attended,
    open_alerts,
    partner_rows,
    pending_entries,
)

REFLECTIONS = 3
MEETINGS = 5
QUOTE_ITEM = "quote_anonymously"
CREDIT_ITEM = "credit_by_name"


@dataclass(frozen=True)
class Card:
    """Everything a partner's card shows: the words' values and the journey for the chart."""

    values: dict[str, Any]
    journey: Journey


async def partner_card(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    cipher: TextCipher,
    partner_id: int,
    *,
    now: datetime,
) -> Card | None:
    """The card of ``partner_id`` (None if there is no such partner)."""
    rows = await partner_rows(session, None, partner_id)
    if not rows:
        return None
    row = rows[0]
    profile = await session.get(PartnerProfile, partner_id)
    zone = zone_of(profile)
    given = (await given_by(session, [partner_id])).get(partner_id, Given())
    consents = (await consents_in_force(session, [partner_id])).get(partner_id, {})
    quotable = consents.get(QUOTE_ITEM, False)
    reflections = []
    if quotable:  # nothing in their own words unless they agreed to be quoted
        headings = prompts.labels("roster.questions")
        for answer in await free_text_answers(session, partner_id, REFLECTIONS):
            try:
                text = cipher.decrypt(answer.value_text or "", answer.text_encrypted)
            except ValueError:
                continue
            if text.strip():
                reflections.append(
                    {
                        "heading": headings.get(answer.question_key, answer.question_key),
                        "date": date_words(prompts, answer.answered_at, zone),
                        "text": shorten(text),
                    }
                )
    journey = await load_journey(session, partner_id, protocol, prompts, cipher)
    group = protocol.group(row.group_key)
    values = {
        **line_values(prompts, row, given, zone, now),
        "group": group.name if group else prompts.label("roster.no_group"),
        "checkins": journey.checkins,
        "quotable": quotable,
        "credit": consents.get(CREDIT_ITEM, False),
        "reflections": reflections,
        "meeting_list": [
            {"title": m.title, "day": day_words(prompts, m.starts_at, zone)}
            for m in await meetings_attended(session, partner_id, MEETINGS)
        ],
        "expenses": given.expenses_pence,
        "pending": [
            entry_values(prompts, e, zone) for e in await pending_entries(session, partner_id)
        ],
        "alerts": (await open_alerts(session, [partner_id])).get(partner_id, 0),
        "total_hours": hours_words(prompts, given.minutes),
        "cannot_write": cannot_write(prompts, row, zone, now),
    }
    return Card(values=values, journey=journey)
