"""Reflective check-ins: open one, ask one question at a time, keep every answer, close it.

Every function takes a session and never commits (the caller owns the unit of work), and none
needs a Telegram update, so the scheduler can open and expire check-ins the same way
``/checkin`` does. Messages go through the outbox with keys derived from the check-in id, so
running the same step twice never sends twice.

How a check-in moves:

* :func:`open_checkin` creates it (idempotent on ``occurrence_key``) and queues the intro
  together with the first question.
* ``current_question`` is the question waiting for an answer. A button answer
  (:func:`record_choice`) or a text / voice answer (:func:`record_text`,
  :func:`record_voice`) to it is stored at once and the next question is queued
  (:func:`next_question` applies ``ask_if`` branching). After the last one the check-in is
  completed and the end message counts the partner's reflections.
* While it is open, a different button on an earlier question changes that answer: the old row
  gets ``superseded_at`` and a new row is added. Branching is decided when moving forward; a
  change only matters to the flow when it makes the question being asked now unnecessary.
* A free-text question is waited for through ``PartnerProfile.awaiting_input`` =
  ``"checkin:<id>:<question>"``, so the handler's filter can route the next text without a
  database query.
* Once completed, expired or cancelled, nothing changes it any more. :func:`expire_due` closes
  open check-ins past ``closes_at`` (partial answers are kept); a check-in found past its time
  on any other path is expired there and then.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup

from bot.partners.safeguarding import screen_answer_value, screen_text
from bot.partners.views import checkins as views
from bot.partners.views.checkins import CALLBACK_PREFIX, CONFIDENCE_QUESTION, SKIP, keyboard
from bot.protocol import CheckinDef, Question, StudyProtocol
from bot.transport.callbacks import fields, number
from bot.transport.outbox import add_reply, enqueue
from bot.transport.view import View
from prompts import Prompts
from storage.crypto import TextCipher
from storage.models import (
    Answer,
    Checkin,
    CheckinStatus,
    PartnerProfile,
    Person,
    PersonStatus,
    Role,
    TelegramIdentity,
)
from storage.queries.people import identity_of

AWAITING_PREFIX = "checkin:"


class Outcome(enum.StrEnum):
    """What an incoming answer did."""

    RECORDED = "recorded"  # an answer to the question being asked
    CHANGED = "changed"  # a different answer to an earlier question
    UNCHANGED = "unchanged"  # the same answer again (a double tap), or Skip on an answer
    CLOSED = "closed"  # the check-in is completed, expired or cancelled
    INVALID = "invalid"  # not theirs, unknown question, out of range, not asked yet


@dataclass
class AnswerResult:
    """The outcome of an answer, and what the handler needs to show it."""

    outcome: Outcome
    checkin: Checkin | None = None
    answer: Answer | None = None
    question: Question | None = None
    #: The answered question's keyboard with the current choice marked, for editing in place.
    markup: InlineKeyboardMarkup | None = None
    completed: bool = False
    alerts: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Contribution:
    """What a partner has given so far, for the end message."""

    reflections: int
    confidence_first: int | None = None
    confidence_latest: int | None = None


# -- pure helpers ----------------------------------------------------------------------------


def manual_checkin_key(protocol: StudyProtocol) -> str:
    """Which check-in ``/checkin`` starts: a "manual" one, else the weekly one, else the first."""
    for schedule in ("manual", "weekly"):
        for checkin in protocol.checkins:
            if checkin.schedule == schedule:
                return checkin.key
    return protocol.checkins[0].key


@dataclass(frozen=True)
class ParsedCallback:
    """Check-in callback data, not yet checked against the database."""

    checkin_id: int
    question: str  # a key, or "#n" (a position in the check-in)
    value: str


def parse_callback(data: str | None) -> ParsedCallback | None:
    """Parse ``ci:<id>:<question>:<value>``; None when it is not well formed."""
    parts = fields(data, CALLBACK_PREFIX)
    if parts is None or len(parts) != 3:
        return None
    checkin_id, question, value = number(parts[0]), parts[1], parts[2]
    if checkin_id is None or not question or not value:
        return None
    return ParsedCallback(checkin_id, question, value)


def _resolve(
    protocol: StudyProtocol, definition: CheckinDef, ref: str, value: str
) -> tuple[Question, str] | None:
    """The question and option key a callback refers to, or None when they do not exist."""
    if ref.startswith("#"):
        index = number(ref[1:])
        if index is None or index >= len(definition.questions):
            return None
        key = definition.questions[index]
    elif ref in definition.questions:
        key = ref
    else:
        return None
    question = protocol.question(key)
    if question.kind == "choice" and value.startswith("#"):
        index = number(value[1:])
        if index is None or index >= len(question.options):
            return None
        value = question.options[index].key
    return question, value


def find_question(protocol: StudyProtocol, key: str | None) -> Question | None:
    """The question ``key`` (stored in the database) if the protocol still has it."""
    return next((q for q in protocol.questions if q.key == key), None)


def _find_checkin(protocol: StudyProtocol, key: str) -> CheckinDef | None:
    return next((c for c in protocol.checkins if c.key == key), None)


def _valid_value(question: Question, value: str) -> bool:
    if value == SKIP:
        return question.optional or question.kind == "text"
    if question.kind == "scale":
        assert question.min is not None and question.max is not None
        given = number(value)
        return given is not None and question.min <= given <= question.max
    if question.kind == "choice":
        return value in {o.key for o in question.options}
    return False


def _answer_value(answer: Answer) -> str:
    """An answer as the callback value that would give it."""
    if answer.skipped:
        return SKIP
    if answer.value_number is not None:
        return str(answer.value_number)
    return answer.value_choice or ""


def applies(question: Question, answers: Mapping[str, Answer]) -> bool:
    """Whether ``question`` is asked, given the current answers (its ``ask_if``)."""
    if question.ask_if is None:
        return True
    earlier = answers.get(question.ask_if.question)
    return question.ask_if.holds(earlier.value_number if earlier is not None else None)


def next_question(
    protocol: StudyProtocol,
    checkin_key: str,
    answers: Mapping[str, Answer],
    *,
    after: str | None = None,
) -> Question | None:
    """The next question to ask after ``after`` (None: from the start), or None when done.

    Questions whose ``ask_if`` does not hold (for example "what would help", asked only when
    confidence is 2 or less) and questions already answered are passed over.
    """
    keys = protocol.checkin(checkin_key).questions
    start = keys.index(after) + 1 if after in keys else 0
    for key in keys[start:]:
        question = protocol.question(key)
        if key not in answers and applies(question, answers):
            return question
    return None


# -- database helpers ------------------------------------------------------------------------


async def current_answers(session: AsyncSession, checkin_id: int) -> dict[str, Answer]:
    """The answers in force (not superseded) of one check-in, by question key."""
    result = await session.execute(
        select(Answer).where(Answer.checkin_id == checkin_id, Answer.in_force).order_by(Answer.id)
    )
    return {a.question_key: a for a in result.scalars()}


def _awaiting(checkin: Checkin, question: Question) -> str:
    return f"{AWAITING_PREFIX}{checkin.id}:{question.key}"


def parse_awaiting(value: str | None) -> tuple[int, str] | None:
    """``(checkin_id, question_key)`` from ``awaiting_input``, or None if it is not ours."""
    if not value or not value.startswith(AWAITING_PREFIX):
        return None
    checkin_id, _, question = value.removeprefix(AWAITING_PREFIX).partition(":")
    parsed = number(checkin_id)
    if parsed is None or not question:
        return None
    return parsed, question


async def _set_awaiting(session: AsyncSession, checkin: Checkin, value: str | None) -> None:
    """Point the partner's next free text at this check-in, or stop (only if it was ours)."""
    profile = await session.get(PartnerProfile, checkin.person_id)
    if profile is None:
        return
    if value is not None:
        profile.awaiting_input = value
        return
    mine = parse_awaiting(profile.awaiting_input)
    if mine is not None and mine[0] == checkin.id:
        profile.awaiting_input = None


async def _close(
    session: AsyncSession,
    checkin: Checkin,
    status: CheckinStatus,
    now: datetime,
    reason: str | None = None,
) -> None:
    checkin.status = status
    checkin.reason = reason
    if status == CheckinStatus.COMPLETED:
        checkin.completed_at = now
    await _set_awaiting(session, checkin, None)


async def _ensure_open(session: AsyncSession, checkin: Checkin, now: datetime) -> bool:
    """True if the check-in takes answers; one past its time is expired here and now."""
    if checkin.status != CheckinStatus.OPEN:
        return False
    if checkin.closes_at <= now:
        await _close(session, checkin, CheckinStatus.EXPIRED, now, "time")
        return False
    return True


# -- opening ---------------------------------------------------------------------------------


def refusal_reason(
    person: Person, profile: PartnerProfile | None, *, now: datetime, source: str = "manual"
) -> str | None:
    """Why a check-in cannot be opened for ``person`` now (None: it can).

    Only active (or, for ``/checkin``, unreachable-but-writing) onboarded partners get one.
    A pause stops scheduled check-ins but not one the partner asks for with ``/checkin``:
    asking is the clearest sign that they want it.
    """
    if person.role != Role.PARTNER:
        return "not_partner"
    if person.status == PersonStatus.WITHDRAWN:
        return "withdrawn"
    if profile is None or profile.onboarded_at is None:
        return "not_onboarded"
    if source != "manual":
        if person.status != PersonStatus.ACTIVE:
            return "unreachable"
        if profile.paused_until is not None and profile.paused_until > now:
            return "paused"
    return None


_OPEN_CHECKINS = (
    select(Checkin)
    .where(Checkin.person_id == bindparam("person_id"), Checkin.status == CheckinStatus.OPEN)
    .order_by(Checkin.id.desc())
)
"""Built once: building it anew for every message a partner typed cost more than running it."""


#: ``session.info`` key: partners given a check-in in this session's transaction.
_OPENED_HERE = "companion.checkins_opened"


async def current_open(
    session: AsyncSession, person_id: int, *, now: datetime, none_at_start: bool = False
) -> Checkin | None:
    """The partner's open check-in, if any (one past its time is expired on the way).

    ``none_at_start``: the caller saw that the partner had none open when this transaction
    began (the inbox batch asks for everyone at once). Then only one opened since, in this
    transaction, could be open, and without one there is nothing to ask the database. (On
    PostgreSQL one the scheduler opens in those few milliseconds is not seen: as if the
    message had come a moment sooner. On SQLite no other writer can commit meanwhile.)
    """
    if none_at_start and person_id not in session.info.get(_OPENED_HERE, ()):
        return None
    result = await session.execute(_OPEN_CHECKINS, {"person_id": person_id})
    found: Checkin | None = None
    for checkin in result.scalars():
        if await _ensure_open(session, checkin, now) and found is None:
            found = checkin
    return found


async def open_checkin(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    person: Person,
    checkin_key: str,
    *,
    occurrence_key: str,
    now: datetime,
    source: str = "manual",
    due_at: datetime | None = None,
    identity: TelegramIdentity | None = None,
    trusted: bool = False,
    none_open: bool = False,
) -> Checkin | None:
    """Open a check-in and queue its intro with the first question; None if refused.

    Idempotent on ``occurrence_key``: if that occurrence exists it is returned as it is and
    nothing is queued again. ``trusted`` (the scheduler, which owns the occurrence row and
    retries a failed batch carefully) skips that check and its savepoints: a duplicate then
    fails the caller's transaction loudly instead. ``identity`` saves a lookup when known,
    and ``none_open`` (the caller has just seen that the partner has no open check-in) saves
    another.

    A partner has at most one open check-in: an older open one is closed (reason "replaced":
    expired with its answers kept, or missed if nothing was answered). Refusals are as
    :func:`refusal_reason`.
    """
    if not trusted:
        existing = await session.execute(
            select(Checkin).where(Checkin.occurrence_key == occurrence_key)
        )
        found = existing.scalar_one_or_none()
        if found is not None:
            return found
    profile = await session.get(PartnerProfile, person.id)
    if refusal_reason(person, profile, now=now, source=source) is not None:
        return None
    definition = protocol.checkin(checkin_key)
    older = None if none_open else await current_open(session, person.id, now=now)
    if older is not None:
        untouched = not await has_answers(session, older.id)
        status = CheckinStatus.MISSED if untouched else CheckinStatus.EXPIRED
        await _close(session, older, status, now, "replaced")
    first = next_question(protocol, definition.key, {})
    session.info.setdefault(_OPENED_HERE, set()).add(person.id)
    checkin = Checkin(
        occurrence_key=occurrence_key,
        person_id=person.id,
        checkin_key=definition.key,
        status=CheckinStatus.OPEN,
        due_at=due_at or now,
        opened_at=now,
        closes_at=now + timedelta(hours=definition.open_hours),
        current_question=first.key if first is not None else None,
    )
    if trusted:
        session.add(checkin)
        await session.flush()
    else:
        try:
            async with session.begin_nested():
                session.add(checkin)
        except IntegrityError:  # opened at the same moment elsewhere
            again = await session.execute(
                select(Checkin).where(Checkin.occurrence_key == occurrence_key)
            )
            return again.scalar_one_or_none()
    identity = identity or await identity_of(session, person.id)
    if identity is None or first is None:
        return checkin
    intro = views.intro(prompts, protocol, definition, name=identity.called)
    await _ask(
        session,
        protocol,
        prompts,
        checkin,
        question=first,
        identity=identity,
        intro=intro,
        fresh=trusted,
        step=source != "scheduled",
    )
    return checkin


async def _ask(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    checkin: Checkin,
    *,
    question: Question,
    identity: TelegramIdentity,
    intro: View | None = None,
    again_key: str | None = None,
    fresh: bool = False,
    step: bool = True,
) -> None:
    """Make ``question`` the current one and queue it (``again_key``: a repeat for /checkin).

    ``fresh``: the check-in was just created in this transaction, so its outbox key cannot
    exist yet and the row is added without a duplicate check. ``step``: the partner is
    waiting on it (see ``OutboxMessage.conversation_step``); False for what the scheduler
    sends on its own (a scheduled check-in's opening, a nudge), which is never sent twice.
    """
    definition = protocol.checkin(checkin.checkin_key)
    checkin.current_question = question.key
    await _set_awaiting(
        session, checkin, _awaiting(checkin, question) if question.kind == "text" else None
    )
    key = again_key or f"ci:{checkin.id}:ask:{question.key}"
    view = views.question(
        prompts,
        checkin,
        definition,
        question,
        name=identity.called,
        above=intro,
        again=again_key is not None,
    )
    if fresh:
        await add_reply(
            session,
            key=key,
            chat_id=identity.chat_id,
            text=view.text,
            reply_markup=view.markup,
            person_id=checkin.person_id,
            kind="checkin",
            conversation_step=step,
        )
        return
    await session.flush()
    await enqueue(
        session,
        key=key,
        chat_id=identity.chat_id,
        text=view.text,
        reply_markup=view.markup,
        person_id=checkin.person_id,
        kind="checkin",
        conversation_step=step,
    )


async def resend_current(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    checkin: Checkin,
    *,
    key: str,
    intro: View | str | None = None,
    step: bool = True,
) -> bool:
    """Queue the question being asked again (``key``: a unique outbox key); False if none.

    ``intro`` (:func:`bot.partners.views.checkins.nudge`, or rendered HTML) goes above it.
    ``step=False`` for a nudge the scheduler sends on its own (see :func:`_ask`).
    """
    if checkin.current_question is None:
        return False
    identity = await identity_of(session, checkin.person_id)
    if identity is None:
        return False
    question = find_question(protocol, checkin.current_question)
    if question is None:
        return False
    await _ask(
        session,
        protocol,
        prompts,
        checkin,
        question=question,
        identity=identity,
        intro=View(intro) if isinstance(intro, str) else intro,
        again_key=key,
        step=step,
    )
    return True


# -- answering -------------------------------------------------------------------------------


async def _advance(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    checkin: Checkin,
    now: datetime,
    *,
    answers: Mapping[str, Answer] | None = None,
    identity: TelegramIdentity | None = None,
) -> bool:
    """Ask the next question, or complete the check-in and queue the end; True if completed.

    ``answers`` (the answers in force) and ``identity`` (the partner's) save their queries
    when the caller has them.
    """
    if answers is None:
        answers = await current_answers(session, checkin.id)
    question = next_question(
        protocol, checkin.checkin_key, answers, after=checkin.current_question
    )
    identity = identity or await identity_of(session, checkin.person_id)
    if question is not None and identity is not None:
        await _ask(session, protocol, prompts, checkin, question=question, identity=identity)
        return False
    checkin.current_question = None
    await _close(session, checkin, CheckinStatus.COMPLETED, now)
    await session.flush()
    if identity is not None:
        summary = await contribution(session, checkin.person_id)
        end = views.end(
            prompts,
            protocol,
            name=identity.called,
            reflections=summary.reflections,
            confidence_first=summary.confidence_first,
            confidence_latest=summary.confidence_latest,
        )
        await enqueue(
            session,
            key=f"ci:{checkin.id}:end",
            chat_id=identity.chat_id,
            text=end.text,
            person_id=checkin.person_id,
            kind="checkin",
            conversation_step=True,
        )
    return True


async def _load(
    session: AsyncSession, person: Person, checkin_id: int, now: datetime
) -> tuple[Checkin | None, Outcome | None]:
    """The partner's check-in, or the outcome that stops here (not theirs, or closed)."""
    checkin = await session.get(Checkin, checkin_id)
    if checkin is None or checkin.person_id != person.id:
        return None, Outcome.INVALID
    if not await _ensure_open(session, checkin, now):
        return checkin, Outcome.CLOSED
    return checkin, None


async def _load_with_answers(
    session: AsyncSession, person: Person, checkin_id: int, now: datetime
) -> tuple[Checkin | None, Outcome | None, dict[str, Answer]]:
    """As :func:`_load`, with the check-in's answers in force, in one query."""
    rows = (
        await session.execute(
            select(Checkin, Answer)
            .outerjoin(Answer, and_(Answer.checkin_id == Checkin.id, Answer.in_force))
            .where(Checkin.id == checkin_id)
            .order_by(Answer.id)
        )
    ).all()
    checkin = rows[0][0] if rows else None
    if checkin is None or checkin.person_id != person.id:
        return None, Outcome.INVALID, {}
    if not await _ensure_open(session, checkin, now):
        return checkin, Outcome.CLOSED, {}
    return checkin, None, {a.question_key: a for _, a in rows if a is not None}


async def record_choice(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    person: Person,
    data: str | None,
    *,
    now: datetime,
    update_id: int | None = None,
    identity: TelegramIdentity | None = None,
) -> AnswerResult:
    """Store a button press (``ci:`` callback data) from ``person``; every check is made here.

    Forged or foreign ids, unknown questions and out-of-range values are INVALID and store
    nothing; buttons of a closed check-in are CLOSED; pressing the value already chosen is
    UNCHANGED. A new value for an earlier question supersedes the old row (history kept).
    ``identity`` (the partner's, if the caller has it) saves a query.
    """
    parsed = parse_callback(data)
    if parsed is None:
        return AnswerResult(Outcome.INVALID)
    checkin, stop, answers = await _load_with_answers(session, person, parsed.checkin_id, now)
    if stop is not None or checkin is None:
        return AnswerResult(stop or Outcome.INVALID, checkin)
    definition = _find_checkin(protocol, checkin.checkin_key)
    if definition is None:
        return AnswerResult(Outcome.INVALID, checkin)
    resolved = _resolve(protocol, definition, parsed.question, parsed.value)
    if resolved is None or not _valid_value(*resolved):
        return AnswerResult(Outcome.INVALID, checkin)
    question, value = resolved
    earlier = answers.get(question.key)
    is_current = question.key == checkin.current_question and earlier is None
    if not is_current and (earlier is None or not applies(question, answers)):
        return AnswerResult(Outcome.INVALID, checkin, question=question)
    markup_for = keyboard(prompts, checkin, definition, question, chosen=value)
    if earlier is not None and (value in {SKIP, _answer_value(earlier)}):
        chosen = _answer_value(earlier)
        return AnswerResult(
            Outcome.UNCHANGED,
            checkin,
            earlier,
            question,
            keyboard(prompts, checkin, definition, question, chosen=chosen),
        )
    if earlier is not None:
        earlier.superseded_at = now
    answer = Answer(
        checkin_id=checkin.id,
        person_id=person.id,
        question_key=question.key,
        value_number=int(value) if question.kind == "scale" and value != SKIP else None,
        value_choice=value if question.kind == "choice" and value != SKIP else None,
        skipped=value == SKIP,
        answered_at=now,
        source_update_id=update_id,
    )
    session.add(answer)
    await session.flush()
    result = AnswerResult(
        Outcome.CHANGED if earlier is not None else Outcome.RECORDED,
        checkin,
        answer,
        question,
        markup_for,
    )
    alert = await screen_answer_value(session, protocol, prompts, person, answer, now=now)
    if alert is not None:
        result.alerts.append(alert.id)
    in_force = {**answers, question.key: answer}
    if is_current:
        result.completed = await _advance(
            session, protocol, prompts, checkin, now, answers=in_force, identity=identity
        )
    elif checkin.current_question is not None:
        # A change may make the question being asked now unnecessary (confidence 1 -> 4 while
        # "what would help" waits): then move on. Questions already passed are not revisited.
        now_asked = find_question(protocol, checkin.current_question)
        if now_asked is None or not applies(now_asked, in_force):
            result.completed = await _advance(
                session, protocol, prompts, checkin, now, answers=in_force, identity=identity
            )
    return result


async def _record_free(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    person: Person,
    *,
    checkin_id: int,
    question_key: str,
    fields: dict[str, object],
    text: str | None,
    chat_id: int,
    now: datetime,
) -> AnswerResult:
    """Store a free answer (``fields`` of the Answer row) to the question being asked.

    ``text`` (the typed answer or a caption) is screened by safeguarding whatever happens,
    even when nothing can be stored because the check-in has closed: a crisis reply must never
    depend on timing. On a match the crisis reply is queued before the next question.
    """
    checkin, stop = await _load(session, person, checkin_id, now)
    question = find_question(protocol, question_key) if checkin is not None else None
    if (
        stop is None
        and checkin is not None
        and question is not None
        and (checkin.current_question != question_key or question.kind != "text")
    ):
        stop = Outcome.INVALID
    if stop is not None or checkin is None or question is None:
        if checkin is not None and checkin.person_id == person.id:
            await _set_awaiting(session, checkin, None)
        result = AnswerResult(stop or Outcome.INVALID, checkin)
        alert = await screen_text(
            session, protocol, prompts, person, text, chat_id=chat_id, source="message", now=now
        )
        if alert is not None:
            result.alerts.append(alert.id)
        return result
    answer = Answer(
        checkin_id=checkin.id,
        person_id=person.id,
        question_key=question.key,
        answered_at=now,
        **fields,
    )
    session.add(answer)
    await session.flush()
    result = AnswerResult(Outcome.RECORDED, checkin, answer, question)
    alert = await screen_text(
        session,
        protocol,
        prompts,
        person,
        text,
        chat_id=chat_id,
        source="answer",
        now=now,
        answer_id=answer.id,
    )
    if alert is not None:
        result.alerts.append(alert.id)
    result.completed = await _advance(session, protocol, prompts, checkin, now)
    return result


async def record_text(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    cipher: TextCipher,
    person: Person,
    *,
    checkin_id: int,
    question_key: str,
    text: str,
    chat_id: int,
    now: datetime,
    update_id: int | None = None,
) -> AnswerResult:
    """Store a typed answer to the question being asked (encrypted when a key is set).

    The text is screened by safeguarding whether or not it can be stored.
    """
    stored, encrypted = cipher.encrypt(text)
    return await _record_free(
        session,
        protocol,
        prompts,
        person,
        checkin_id=checkin_id,
        question_key=question_key,
        fields={"value_text": stored, "text_encrypted": encrypted, "source_update_id": update_id},
        text=text,
        chat_id=chat_id,
        now=now,
    )


async def record_voice(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    cipher: TextCipher,
    person: Person,
    *,
    checkin_id: int,
    question_key: str,
    file_id: str,
    duration: int,
    caption: str | None,
    chat_id: int,
    now: datetime,
    update_id: int | None = None,
) -> AnswerResult:
    """Store a voice-note answer (file id and length; the audio is fetched afterwards).

    The row is written before any download, so a failed download never loses the answer.
    A caption is kept as the answer's text and screened by safeguarding.
    """
    stored, encrypted = cipher.encrypt(caption) if caption else (None, False)
    return await _record_free(
        session,
        protocol,
        prompts,
        person,
        checkin_id=checkin_id,
        question_key=question_key,
        fields={
            "value_text": stored,
            "text_encrypted": encrypted,
            "voice_file_id": file_id[:200],
            "voice_duration": duration,
            "source_update_id": update_id,
        },
        text=caption,
        chat_id=chat_id,
        now=now,
    )


def voice_relative_path(person: Person, answer: Answer) -> str:
    """Where a voice answer's audio lives, relative to the data folder (pseudonym, not name)."""
    return f"voice/{person.pseudonym}/{answer.id}.ogg"


# -- closing and counting --------------------------------------------------------------------


async def expire_due(session: AsyncSession, now: datetime) -> list[Checkin]:
    """Close, quietly, every open check-in past ``closes_at``; returns them.

    One with answers is expired (the answers are kept); one nobody answered is recorded as
    missed. Nothing is sent either way.
    """
    result = await session.execute(
        select(Checkin)
        .where(Checkin.status == CheckinStatus.OPEN, Checkin.closes_at <= now)
        .order_by(Checkin.id)
    )
    expired = list(result.scalars())
    if not expired:
        return expired
    answered = set(
        (
            await session.execute(
                select(Answer.checkin_id)
                .where(Answer.checkin_id.in_([c.id for c in expired]))
                .distinct()
            )
        ).scalars()
    )
    for checkin in expired:
        if checkin.id in answered:
            await _close(session, checkin, CheckinStatus.EXPIRED, now, "time")
        else:
            await _close(session, checkin, CheckinStatus.MISSED, now, "unanswered")
    return expired


async def has_answers(session: AsyncSession, checkin_id: int) -> bool:
    """Whether anything at all was answered (or skipped) in this check-in."""
    found = await session.execute(
        select(Answer.id).where(Answer.checkin_id == checkin_id).limit(1)
    )
    return found.first() is not None


async def contribution(session: AsyncSession, person_id: int) -> Contribution:
    """How many check-ins they have shared something in, and their first and latest confidence.

    A reflection is a check-in with at least one answer that was not skipped, whatever its
    status (a half-finished check-in still counts). The confidence pair is given only when it
    comes from two different check-ins.
    """
    count = await session.execute(
        select(func.count(func.distinct(Answer.checkin_id))).where(
            Answer.person_id == person_id,
            Answer.in_force,
            Answer.skipped.is_(False),
        )
    )
    reflections = int(count.scalar_one())
    rows = await session.execute(
        select(Answer.checkin_id, Answer.value_number)
        .where(
            Answer.person_id == person_id,
            Answer.question_key == CONFIDENCE_QUESTION,
            Answer.in_force,
            Answer.value_number.is_not(None),
        )
        .order_by(Answer.checkin_id, Answer.id)
    )
    values: Sequence[tuple[int, int | None]] = [(r[0], r[1]) for r in rows]
    if len({checkin_id for checkin_id, _ in values}) < 2:
        return Contribution(reflections)
    return Contribution(reflections, values[0][1], values[-1][1])
