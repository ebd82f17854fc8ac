"""Invite codes: creating them, redeeming them, and slowing down people who guess.

A code is ``secrets.token_urlsafe(18)`` (144 random bits, only ``A-Za-z0-9_-``, 24 characters:
it fits Telegram's ``/start`` deep-link payload). The database keeps only its SHA-256 hex
digest, so a copy of the database cannot be used to join. A code works once and expires.

Redeeming a code (``/start CODE`` from someone not yet enrolled) creates the person, their
Telegram identity, a partner profile for partners, marks the invite used and writes a
``role.granted`` audit line, all in the caller's transaction. Failed attempts are counted in
memory only (:class:`RedemptionThrottle`): nothing about an outsider is written anywhere.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.partners.people import new_pseudonym
from bot.protocol import StudyProtocol
from bot.text import telegram_name
from storage.clock import utcnow
from storage.models import (
    AuditEvent,
    Invite,
    PartnerProfile,
    Person,
    PersonStatus,
    Role,
    RoleSource,
    TelegramIdentity,
)

CODE_BYTES = 18  # 144 random bits
DEFAULT_EXPIRES_DAYS = 14
MAX_EXPIRES_DAYS = 30
MAX_COUNT = 500
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FIRST_STEP = (
    "welcome"  # the onboarding step a new partner starts at (bot.partners.onboarding.WELCOME)
)


class InviteError(ValueError):
    """An invite cannot be created as asked (the message is for logs; callers show a prompt)."""


class RedeemOutcome(enum.StrEnum):
    """What happened to a code someone sent."""

    ENROLLED = "enrolled"
    UNKNOWN = "unknown"  # mistyped, forged, or never existed
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True)
class NewInvite:
    """An invite just created; ``code`` exists only here, never in the database."""

    id: int
    code: str
    role: Role
    group_key: str | None
    expires_at: datetime


@dataclass(frozen=True)
class Redemption:
    """The result of :func:`redeem`; ``person`` (and ``profile`` for partners) when enrolled."""

    outcome: RedeemOutcome
    person: Person | None = None
    profile: PartnerProfile | None = None
    identity: TelegramIdentity | None = None


def generate_code() -> str:
    """A new invite code with 144 random bits, safe for a ``t.me/<bot>?start=`` link."""
    return secrets.token_urlsafe(CODE_BYTES)


def hash_code(code: str) -> str:
    """The SHA-256 hex digest under which a code is stored."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def looks_like_code(text: str) -> bool:
    """Whether ``text`` has the shape of a deep-link payload (not whether it is valid)."""
    return CODE_PATTERN.fullmatch(text) is not None


def deep_link(bot_username: str, code: str) -> str:
    """The link that opens the bot with ``/start CODE``."""
    return f"https://t.me/{bot_username}?start={code}"


async def create_invites(
    session: AsyncSession,
    protocol: StudyProtocol,
    *,
    role: Role,
    group_key: str | None = None,
    count: int = 1,
    expires_days: int = DEFAULT_EXPIRES_DAYS,
    actor_person_id: int | None = None,
    now: datetime | None = None,
) -> list[NewInvite]:
    """Create ``count`` invites and an ``invite.created`` audit line (never the codes).

    Raises :class:`InviteError` for an unknown group, a count outside 1..500 or an expiry
    outside 1..30 days. The caller commits.
    """
    if group_key is not None and protocol.group(group_key) is None:
        raise InviteError(f"unknown group {group_key!r}")
    if not 1 <= count <= MAX_COUNT:
        raise InviteError(f"count must be between 1 and {MAX_COUNT}")
    if not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise InviteError(f"expiry must be between 1 and {MAX_EXPIRES_DAYS} days")
    created = now or utcnow()
    expires_at = created + timedelta(days=expires_days)
    made: list[tuple[Invite, str]] = []
    for _ in range(count):
        code = generate_code()
        invite = Invite(
            code_hash=hash_code(code),
            role=role,
            group_key=group_key,
            created_at=created,
            expires_at=expires_at,
        )
        session.add(invite)
        made.append((invite, code))
    session.add(
        AuditEvent(
            at=created,
            actor_person_id=actor_person_id,
            action="invite.created",
            detail={
                "role": str(role),
                "group": group_key,
                "count": count,
                "expires_days": expires_days,
            },
        )
    )
    await session.flush()
    return [
        NewInvite(
            id=invite.id,
            code=code,
            role=role,
            group_key=group_key,
            expires_at=expires_at,
        )
        for invite, code in made
    ]


async def redeem(
    session: AsyncSession,
    protocol: StudyProtocol,
    code: str,
    *,
    telegram_user_id: int,
    chat_id: int,
    first_name: str | None = None,
    username: str | None = None,
    language_code: str | None = None,
    now: datetime | None = None,
    former: Person | None = None,
) -> Redemption:
    """Enrol the sender of ``code`` if it is a valid, unused, unexpired invite.

    The caller must have checked that ``telegram_user_id`` is not enrolled yet, or that it is
    ``former`` staff (their role was taken away): they are enrolled again as the same person,
    with the invite's role and a fresh Telegram identity. On success the
    invite is marked used (guarded so that two simultaneous redemptions cannot both win), and
    the person, identity, partner profile and ``role.granted`` audit line are added to
    ``session``. Otherwise nothing is written.
    """
    if not looks_like_code(code):
        return Redemption(RedeemOutcome.UNKNOWN)
    at = now or utcnow()
    invite = (
        await session.execute(select(Invite).where(Invite.code_hash == hash_code(code)))
    ).scalar_one_or_none()
    if invite is None:
        return Redemption(RedeemOutcome.UNKNOWN)
    if invite.used_at is not None:
        return Redemption(RedeemOutcome.USED)
    if invite.expires_at <= at:
        return Redemption(RedeemOutcome.EXPIRED)
    claimed = await session.execute(
        update(Invite)
        .where(Invite.id == invite.id, Invite.used_at.is_(None))
        .values(used_at=at)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 1) != 1:
        return Redemption(RedeemOutcome.USED)
    role = Role(invite.role)
    if former is not None:
        person = former
        person.role, person.role_source, person.role_since = role, RoleSource.INVITE, at
        await _forget_identity(session, former.id)
    else:
        person = Person(
            pseudonym=new_pseudonym(),
            role=role,
            role_source=RoleSource.INVITE,
            role_since=at,
            status=PersonStatus.ACTIVE,
            created_at=at,
        )
        session.add(person)
    await session.flush()
    await session.execute(
        update(Invite)
        .where(Invite.id == invite.id)
        .values(used_by_person_id=person.id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(invite)
    identity = TelegramIdentity(
        person_id=person.id,
        telegram_user_id=telegram_user_id,
        chat_id=chat_id,
        first_name=telegram_name(first_name),
        username=telegram_name(username),
        language_code=language_code[:16] if language_code else None,
        created_at=at,
    )
    session.add(identity)
    profile: PartnerProfile | None = None
    if role == Role.PARTNER:
        group = protocol.group(invite.group_key)
        profile = PartnerProfile(
            person_id=person.id,
            group_key=group.key if group is not None else None,
            quiet_start=protocol.quiet_hours.start,
            quiet_end=protocol.quiet_hours.end,
            onboarding_step=FIRST_STEP,
            enrolled_at=at,
        )
        if group is not None:
            profile.timezone = group.timezone
        session.add(profile)
    session.add(
        AuditEvent(
            at=at,
            actor_person_id=person.id,
            action="role.granted",
            detail={"role": str(role), "source": "invite", "invite_id": invite.id},
        )
    )
    await session.flush()
    return Redemption(RedeemOutcome.ENROLLED, person=person, profile=profile, identity=identity)


async def _forget_identity(session: AsyncSession, person_id: int) -> None:
    """Delete a former staff member's old identity before they are given a new one."""
    await session.execute(
        delete(TelegramIdentity)
        .where(TelegramIdentity.person_id == person_id)
        .execution_options(synchronize_session=False)
    )


class RedemptionThrottle:
    """Counts failed code attempts per Telegram user, in memory only.

    After ``limit`` failures within ``window`` seconds the user is blocked until the oldest
    failure leaves the window; :meth:`warn_once` is true for the first blocked attempt only, so
    they get one short "please ask your connector" and then silence.
    """

    def __init__(self, limit: int = 5, window: float = 3600.0, max_tracked: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_tracked = max_tracked
        self._failures: OrderedDict[int, deque[float]] = OrderedDict()
        self._warned: dict[int, float] = {}

    def _recent(self, user_id: int, now: float) -> deque[float]:
        failures = self._failures.get(user_id)
        if failures is None:
            return deque()
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(user_id, None)
            self._warned.pop(user_id, None)
        return failures

    def blocked(self, user_id: int, now: float | None = None) -> bool:
        """Whether this user has used up their attempts for now."""
        now = time.monotonic() if now is None else now
        return len(self._recent(user_id, now)) >= self.limit

    def record_failure(self, user_id: int, now: float | None = None) -> None:
        """Count one failed attempt."""
        now = time.monotonic() if now is None else now
        failures = self._recent(user_id, now)
        if user_id not in self._failures:
            self._failures[user_id] = failures
        failures.append(now)
        self._failures.move_to_end(user_id)
        while len(self._failures) > self.max_tracked:
            oldest, _ = self._failures.popitem(last=False)
            self._warned.pop(oldest, None)

    def warn_once(self, user_id: int, now: float | None = None) -> bool:
        """True the first time a blocked user is turned away in this window."""
        now = time.monotonic() if now is None else now
        if user_id in self._warned:
            return False
        self._warned[user_id] = now
        return True

    def forget(self, user_id: int) -> None:
        """Drop what is remembered about ``user_id`` (after a successful enrolment)."""
        self._failures.pop(user_id, None)
        self._warned.pop(user_id, None)
