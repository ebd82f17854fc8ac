"""Onboarding a new partner, one small step at a time, resumable at any point.

The steps, in order (``PartnerProfile.onboarding_step`` holds the current one)::

    welcome -> consent:<item>... -> name -> group (unless the invite fixed it) -> slot -> done

``declined`` is where someone who said no to the required consent item rests: nothing else
is asked or stored, and ``/start`` begins again at ``welcome``. A partner is onboarded when
``profile.onboarded_at`` is set (:func:`is_onboarded`); other features should wait for that.

This module knows nothing about Telegram updates: it validates a choice against the protocol
and the partner's current step, stores it, says which step comes next, and plans the partner's
check-ins once they are set up. :mod:`bot.partners.views.onboarding` words each step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.partners.preferences import set_checkin_slot, set_group
from bot.protocol import CheckinSlot, ConsentItem, StudyProtocol
from bot.schedule.planner import schedule_changed
from bot.text import clean_name
from storage.clock import utcnow
from storage.models import ConsentDecision, PartnerProfile, Person, TelegramIdentity

WELCOME = "welcome"
CONSENT_PREFIX = "consent:"
NAME = "name"
GROUP = "group"
SLOT = "slot"
DONE = "done"
DECLINED = "declined"

CALLBACK_PREFIX = "ob:"
AWAITING_NAME = "onboarding:name"
WELCOME_OK = "ok"
YES = "yes"
NO = "no"
USE_TELEGRAM_NAME = "tg"
SLOT_LATER = "later"
NAME_MAX = 40
_STEP_COLUMN = 32  # PartnerProfile.onboarding_step is String(32)
_RANKS = {WELCOME: 0, NAME: 1000, GROUP: 1001, SLOT: 1002, DONE: 1003}


class ChoiceOutcome(enum.StrEnum):
    """What became of a button press during onboarding."""

    ACCEPTED = "accepted"  # stored; ``step`` is where the partner is now
    DONE_ALREADY = "done_already"  # a button from a step already finished
    NOT_NOW = "not_now"  # a step the partner has not reached (or a forged one)
    INVALID = "invalid"  # a value the protocol does not have


@dataclass(frozen=True)
class ChoiceResult:
    """The outcome of :func:`apply_choice` and the partner's step afterwards."""

    outcome: ChoiceOutcome
    step: str
    previous_step: str


def is_onboarded(profile: PartnerProfile | None) -> bool:
    """Whether a partner has finished onboarding (staff have no profile: False)."""
    return profile is not None and profile.onboarded_at is not None


def consent_items(protocol: StudyProtocol) -> list[ConsentItem]:
    """Consent items in the order they are asked: the required one first."""
    return sorted(protocol.consent, key=lambda item: not item.required)


def consent_step(item: ConsentItem) -> str:
    """The step name for one consent item (fits the 32-character column)."""
    return f"{CONSENT_PREFIX}{item.key}"[:_STEP_COLUMN]


def consent_item_for(protocol: StudyProtocol, step: str) -> ConsentItem | None:
    """The consent item asked at ``step``, if ``step`` is a consent step."""
    if not step.startswith(CONSENT_PREFIX):
        return None
    return next((i for i in consent_items(protocol) if consent_step(i) == step), None)


def first_consent_step(protocol: StudyProtocol) -> str:
    """The first consent step (the required item)."""
    return consent_step(consent_items(protocol)[0])


def step_rank(protocol: StudyProtocol, step: str) -> int | None:
    """Where ``step`` sits in the order of steps (None for an unknown step name)."""
    if step in _RANKS:
        return _RANKS[step]
    items = consent_items(protocol)
    for index, item in enumerate(items):
        if consent_step(item) == step:
            return 1 + index
    return None


def callback_data(step: str, value: str) -> str:
    """The callback data of an onboarding button, e.g. ``ob:consent:take_part:yes``."""
    return f"{CALLBACK_PREFIX}{step}:{value}"


def parse_callback(data: str) -> tuple[str, str] | None:
    """``(step, value)`` from onboarding callback data, or None if it is not shaped like one."""
    if not data.startswith(CALLBACK_PREFIX):
        return None
    step, sep, value = data[len(CALLBACK_PREFIX) :].rpartition(":")
    if not sep or not step or not value:
        return None
    return step, value


def _after(protocol: StudyProtocol, profile: PartnerProfile, step: str) -> str:
    """The step that follows ``step`` for this partner."""
    if step == WELCOME:
        return first_consent_step(protocol)
    if step.startswith(CONSENT_PREFIX):
        steps = [consent_step(i) for i in consent_items(protocol)]
        position = steps.index(step) if step in steps else len(steps) - 1
        return steps[position + 1] if position + 1 < len(steps) else NAME
    if step == NAME:
        return GROUP if protocol.group(profile.group_key) is None else SLOT
    if step == GROUP:
        return SLOT
    return DONE


def enter_step(profile: PartnerProfile, step: str, *, now: datetime | None = None) -> None:
    """Move the partner to ``step``: waits for typed input only at the name step."""
    profile.onboarding_step = step
    profile.awaiting_input = AWAITING_NAME if step == NAME else None
    if step == DONE and profile.onboarded_at is None:
        profile.onboarded_at = now or utcnow()


def restart(profile: PartnerProfile) -> str:
    """Begin again at the welcome (after declining, they sent /start)."""
    enter_step(profile, WELCOME)
    return WELCOME


def current_step(protocol: StudyProtocol, profile: PartnerProfile) -> str:
    """The partner's step; one this version does not know (an older protocol's) restarts."""
    step = profile.onboarding_step
    if step == DECLINED or step_rank(protocol, step) is not None:
        return step
    return restart(profile)


def slot_of(protocol: StudyProtocol, profile: PartnerProfile) -> CheckinSlot | None:
    """The protocol slot matching the partner's check-in day and time, if any."""
    return next(
        (
            s
            for s in protocol.checkin_slots
            if s.weekday == profile.checkin_weekday and s.time == profile.checkin_time
        ),
        None,
    )


def set_name(
    profile: PartnerProfile,
    identity: TelegramIdentity,
    protocol: StudyProtocol,
    text: str | None,
) -> str | None:
    """Store a typed name as the partner's preferred name; returns the next step or None.

    None means the name was not usable (nothing is stored and they stay at the name step).
    Only valid while the partner is at the name step.
    """
    if profile.onboarding_step != NAME:
        return None
    name = clean_name(text, NAME_MAX)
    if name is None:
        return None
    identity.preferred_name = name
    step = _after(protocol, profile, NAME)
    enter_step(profile, step)
    return step


async def apply_choice(
    session: AsyncSession,
    protocol: StudyProtocol,
    *,
    person: Person,
    profile: PartnerProfile,
    identity: TelegramIdentity | None,
    step: str,
    value: str,
    horizon_days: int,
    now: datetime | None = None,
) -> ChoiceResult:
    """Apply a button press ``(step, value)`` from the partner's onboarding; store what it says.

    Finishing (the slot step) plans their check-ins ``horizon_days`` ahead at once.

    Only a press for the partner's current step changes anything, and only with a value the
    protocol knows. The one exception: someone who declined may still press "yes" on the
    required consent item, which is them changing their mind.
    """
    at = now or utcnow()
    current = profile.onboarding_step
    rank = step_rank(protocol, step)
    if rank is None:
        return ChoiceResult(ChoiceOutcome.INVALID, current, current)
    required = consent_items(protocol)[0]
    if current == DECLINED:
        if step == consent_step(required) and value == YES:
            current = step
        else:
            return ChoiceResult(ChoiceOutcome.DONE_ALREADY, DECLINED, DECLINED)
    if step != current:
        current_rank = step_rank(protocol, current)
        if current_rank is not None and rank < current_rank:
            return ChoiceResult(ChoiceOutcome.DONE_ALREADY, current, current)
        return ChoiceResult(ChoiceOutcome.NOT_NOW, current, current)

    previous = profile.onboarding_step
    if step == WELCOME:
        if value != WELCOME_OK:
            return ChoiceResult(ChoiceOutcome.INVALID, previous, previous)
        next_step = _after(protocol, profile, WELCOME)
    elif (item := consent_item_for(protocol, step)) is not None:
        if value not in (YES, NO):
            return ChoiceResult(ChoiceOutcome.INVALID, previous, previous)
        granted = value == YES
        session.add(
            ConsentDecision(person_id=person.id, item_key=item.key, granted=granted, decided_at=at)
        )
        next_step = DECLINED if item.required and not granted else _after(protocol, profile, step)
    elif step == NAME:
        name = clean_name(identity.first_name if identity is not None else None, NAME_MAX)
        if value != USE_TELEGRAM_NAME or identity is None or name is None:
            return ChoiceResult(ChoiceOutcome.INVALID, previous, previous)
        identity.preferred_name = name
        next_step = _after(protocol, profile, NAME)
    elif step == GROUP:
        if set_group(profile, protocol, value) is None:
            return ChoiceResult(ChoiceOutcome.INVALID, previous, previous)
        next_step = _after(protocol, profile, GROUP)
    elif step == SLOT:
        if value == SLOT_LATER:
            profile.checkin_weekday = None
            profile.checkin_time = None
        elif set_checkin_slot(profile, protocol, value) is None:
            return ChoiceResult(ChoiceOutcome.INVALID, previous, previous)
        next_step = DONE
    else:  # DONE has no buttons
        return ChoiceResult(ChoiceOutcome.DONE_ALREADY, previous, previous)
    enter_step(profile, next_step, now=at)
    if next_step == DONE:  # set up: their check-ins can be planned now
        await schedule_changed(session, protocol, person.id, horizon_days=horizon_days)
    return ChoiceResult(ChoiceOutcome.ACCEPTED, next_step, previous)
