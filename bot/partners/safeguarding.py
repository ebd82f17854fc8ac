"""Safeguarding: spot risk in what a partner writes, answer them at once, and tell the team.

* :func:`match` checks free text against the protocol's phrases (whole words, any case,
  tolerant of curly apostrophes, hyphens and extra spaces); :func:`match_threshold` checks a
  scale answer against the protocol's answer thresholds.
* :func:`screen_text` is what every feature calls with a partner's free text (check-in
  answers, voice-note captions, messages outside a check-in). On a match it queues, in the
  caller's transaction, the crisis reply to the partner and an alert to every active connector
  with an "I'm on it" button, and writes the :class:`SafeguardingAlert` and an
  ``alert.raised`` audit line. The caller's own work (storing the answer) carries on as usual.
* :func:`screen_answer_value` does the same for a threshold, but gently: the connectors are
  asked to check in, and the partner gets no crisis message (a low "confidence" is not a
  crisis, and sending helplines for it would alarm people).
* :func:`acknowledge` records the first connector who picks an alert up; later presses learn
  who did.

Nothing here needs a Telegram update, so a scheduler or another feature can call it too.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.zones import zone_of
from bot.partners.views import safeguarding as views
from bot.partners.views.safeguarding import ACK_PREFIX
from bot.protocol import StudyProtocol, Threshold
from bot.transport.callbacks import number
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.models import (
    Answer,
    AuditEvent,
    PartnerProfile,
    Person,
    SafeguardingAlert,
)
from storage.queries.people import connector_chat_ids, identity_of, name_of

RULE_LENGTH = 64  # SafeguardingAlert.rule

_APOSTROPHES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"}
)
_DASHES = str.maketrans(
    {"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-"}
)


def normalise(text: str) -> str:
    """Text folded for matching: NFKC, straight apostrophes and dashes, one space, casefolded."""
    folded = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).translate(_DASHES)
    return " ".join(folded.split()).casefold()


def _phrase_pattern(phrase: str) -> str:
    """A regex for one phrase: words apart by spaces or hyphens, apostrophes optional."""
    words = re.split(r"[\s\-]+", normalise(phrase).strip(" -"))
    parts = [re.escape(word).replace("'", "'?") for word in words if word]
    # Whole words only: "suicide" matches "suicide." but not "suicidesquad" (run-together
    # words are rare in real distress and matching inside words gives false alarms).
    return r"(?<!\w)" + r"[\s\-]+".join(parts) + r"(?!\w)"


@lru_cache(maxsize=8)
def _compiled(phrases: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((p, re.compile(_phrase_pattern(p))) for p in phrases if normalise(p))


def match(protocol: StudyProtocol, text: str | None) -> str | None:
    """The protocol phrase that ``text`` contains (whole words, any case), or None."""
    if not text:
        return None
    folded = normalise(text)
    for phrase, pattern in _compiled(tuple(protocol.safeguarding.phrases)):
        if pattern.search(folded):
            return phrase
    return None


def match_threshold(
    protocol: StudyProtocol, question_key: str, value: int | None
) -> Threshold | None:
    """The answer threshold that a scale answer ``value`` to ``question_key`` meets, or None."""
    if value is None:
        return None
    for threshold in protocol.safeguarding.thresholds:
        if threshold.question == question_key and value <= threshold.at_most:
            return threshold
    return None


def phrase_rule(phrase: str) -> str:
    """How a phrase match is stored in ``SafeguardingAlert.rule``."""
    return f"phrase:{phrase}"[:RULE_LENGTH]


def threshold_rule(threshold: Threshold) -> str:
    """How a threshold match is stored in ``SafeguardingAlert.rule``."""
    return f"threshold:{threshold.question}<={threshold.at_most}"[:RULE_LENGTH]


def parse_ack_callback(data: str | None) -> int | None:
    """The alert id in "I'm on it" callback data, or None when it is not well formed."""
    if not data or not data.startswith(ACK_PREFIX):
        return None
    return number(data.removeprefix(ACK_PREFIX))


async def _zone(session: AsyncSession, person_id: int) -> ZoneInfo:
    return zone_of(await session.get(PartnerProfile, person_id))


async def raise_alert(
    session: AsyncSession,
    prompts: Prompts,
    person: Person,
    *,
    rule: str,
    source: str,
    now: datetime,
    answer_id: int | None = None,
    crisis_sent: bool = True,
) -> SafeguardingAlert:
    """Write an alert and its audit line, and queue it to every active connector.

    ``source`` is "answer" or "message". The alert names the partner (staff may see identity),
    the rule and the time. It deliberately carries no excerpt of what they wrote: alerts show
    up in lock-screen previews and can be forwarded, the rule already says why it fired, and
    the connector's job is to contact the person, not to read their words second-hand.
    """
    alert = SafeguardingAlert(
        person_id=person.id,
        rule=rule[:RULE_LENGTH],
        source=source,
        answer_id=answer_id,
        raised_at=now,
    )
    session.add(alert)
    await session.flush()
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=None,
            action="alert.raised",
            detail={
                "alert_id": alert.id,
                "person_id": person.id,
                "rule": alert.rule,
                "source": source,
            },
        )
    )
    view = views.alert(
        prompts,
        alert_id=alert.id,
        name=await name_of(session, person.id),
        pseudonym=person.pseudonym,
        rule=alert.rule,
        source=source,
        raised_at=now,
        zone=await _zone(session, person.id),
        crisis_sent=crisis_sent,
    )
    for chat_id in await connector_chat_ids(session):
        await enqueue(
            session,
            key=f"sg:alert:{alert.id}:{chat_id}",
            chat_id=chat_id,
            text=view.text,
            reply_markup=view.markup,
            kind="alert",
            quotes=True,  # what matched, and who wrote it
        )
    return alert


async def screen_text(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    person: Person,
    text: str | None,
    *,
    chat_id: int,
    source: str,
    now: datetime,
    answer_id: int | None = None,
) -> SafeguardingAlert | None:
    """Check a partner's free text; on a match, reply with crisis resources and alert the team.

    Everything is queued in the caller's transaction, so the reply goes out with (and only
    with) the rest of the update's effects. Returns the alert, or None when nothing matched.
    """
    phrase = match(protocol, text)
    if phrase is None:
        return None
    alert = await raise_alert(
        session,
        prompts,
        person,
        rule=phrase_rule(phrase),
        source=source,
        now=now,
        answer_id=answer_id,
    )
    await enqueue(
        session,
        key=f"sg:crisis:{alert.id}",
        chat_id=chat_id,
        text=views.crisis(prompts, protocol, name=await name_of(session, person.id)).text,
        person_id=person.id,
        kind="safeguarding",
        conversation_step=True,  # in place of the next question: never lost in a crash
    )
    return alert


async def screen_answer_value(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    person: Person,
    answer: Answer,
    *,
    now: datetime,
) -> SafeguardingAlert | None:
    """Check a scale answer against the thresholds; alert the team gently (once per question).

    A changed answer in the same check-in does not raise a second alert for the same rule.
    """
    threshold = match_threshold(protocol, answer.question_key, answer.value_number)
    if threshold is None:
        return None
    rule = threshold_rule(threshold)
    earlier = await session.execute(
        select(SafeguardingAlert.id)
        .join(Answer, Answer.id == SafeguardingAlert.answer_id)
        .where(
            Answer.checkin_id == answer.checkin_id,
            Answer.question_key == answer.question_key,
            SafeguardingAlert.rule == rule,
        )
        .limit(1)
    )
    if earlier.scalar_one_or_none() is not None:
        return None
    return await raise_alert(
        session,
        prompts,
        person,
        rule=rule,
        source="answer",
        now=now,
        answer_id=answer.id,
        crisis_sent=False,
    )


class AckStatus(enum.StrEnum):
    """What pressing "I'm on it" did."""

    ACKNOWLEDGED = "acknowledged"  # this press picked the alert up
    ALREADY_MINE = "already_mine"  # the same connector pressed again
    TAKEN = "taken"  # someone else had already picked it up
    UNKNOWN = "unknown"  # no such alert (forged or deleted)


@dataclass(frozen=True)
class AckResult:
    """The outcome of :func:`acknowledge`, with what the connector should be told."""

    status: AckStatus
    alert: SafeguardingAlert | None = None
    by_name: str = ""
    at: str = ""


async def acknowledge(
    session: AsyncSession, prompts: Prompts, alert_id: int, connector: Person, *, now: datetime
) -> AckResult:
    """Record ``connector`` as picking the alert up, if nobody has yet (the first press wins).

    The conditional UPDATE makes the first press win even if two are processed at once. The
    other connectors are told who picked it up, so the partner is not contacted twice.
    """
    alert = await session.get(SafeguardingAlert, alert_id)
    if alert is None:
        return AckResult(AckStatus.UNKNOWN)
    result = await session.execute(
        update(SafeguardingAlert)
        .where(SafeguardingAlert.id == alert_id, SafeguardingAlert.acknowledged_at.is_(None))
        .values(acknowledged_by_person_id=connector.id, acknowledged_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(alert)
    zone = await _zone(session, alert.person_id)
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        by = alert.acknowledged_by_person_id
        at = views.staff_time(alert.acknowledged_at or now, zone)
        if by == connector.id:
            return AckResult(AckStatus.ALREADY_MINE, alert, await name_of(session, by), at)
        name = await name_of(session, by) if by is not None else ""
        return AckResult(AckStatus.TAKEN, alert, name, at)
    session.add(
        AuditEvent(
            at=now,
            actor_person_id=connector.id,
            action="alert.acknowledged",
            detail={"alert_id": alert.id, "person_id": alert.person_id, "rule": alert.rule},
        )
    )
    by_name = await name_of(session, connector.id)
    partner = await session.get(Person, alert.person_id)
    own = await identity_of(session, connector.id)
    text = views.picked_up(
        prompts,
        by=by_name,
        name=await name_of(session, alert.person_id),
        pseudonym=partner.pseudonym if partner is not None else "",
    ).text
    for chat_id in await connector_chat_ids(session):
        if own is not None and chat_id == own.chat_id:
            continue
        await enqueue(
            session,
            key=f"sg:picked:{alert.id}:{chat_id}",
            chat_id=chat_id,
            text=text,
            kind="alert",
        )
    return AckResult(AckStatus.ACKNOWLEDGED, alert, by_name, views.staff_time(now, zone))
