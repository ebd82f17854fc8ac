"""Invite codes: their shape and storage, redemption outcomes, and the in-memory throttle;
end to end, used / expired / mistyped / forged codes enrol no one and store nothing."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.partners.invites import (
    CODE_PATTERN,
    InviteError,
    RedeemOutcome,
    RedemptionThrottle,
    create_invites,
    deep_link,
    generate_code,
    hash_code,
    redeem,
)
from bot.protocol import load_protocol
from prompts import DEFAULT_STUDY_PATH
from storage.clock import utcnow
from storage.models import (
    AuditEvent,
    InboxUpdate,
    Invite,
    OutboxMessage,
    PartnerProfile,
    Person,
    Role,
    TelegramIdentity,
)
from tests.factories import enrol
from tests.support import count, settle

PROTOCOL = load_protocol(DEFAULT_STUDY_PATH)


async def make_invite(database, role=Role.PARTNER, group="north", **kwargs) -> str:
    async with database.transaction() as session:
        [invite] = await create_invites(session, PROTOCOL, role=role, group_key=group, **kwargs)
    return invite.code


# --- codes and the service -------------------------------------------------------------------


def test_codes_are_long_random_url_safe_and_hashed() -> None:
    codes = {generate_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert CODE_PATTERN.fullmatch(code) and len(code) <= 64
        assert len(code) * 6 >= 128
        assert re.fullmatch(r"[0-9a-f]{64}", hash_code(code))
    code = next(iter(codes))
    assert hash_code(code) == hashlib.sha256(code.encode()).hexdigest()
    assert deep_link("my_bot", code) == f"https://t.me/my_bot?start={code}"


async def test_create_refuses_unknown_group_and_bad_numbers(database) -> None:
    async with database.transaction() as session:
        with pytest.raises(InviteError, match="narnia"):
            await create_invites(session, PROTOCOL, role=Role.PARTNER, group_key="narnia")
        with pytest.raises(InviteError):
            await create_invites(session, PROTOCOL, role=Role.PARTNER, count=0)
        with pytest.raises(InviteError):
            await create_invites(session, PROTOCOL, role=Role.PARTNER, expires_days=31)
    assert await count(database, Invite) == 0
    assert await count(database, AuditEvent) == 0


async def test_redeem_outcomes(database) -> None:
    good = await make_invite(database)
    old = await make_invite(database, now=utcnow() - timedelta(days=2), expires_days=1)
    who = {"chat_id": 1, "first_name": "Sam"}
    async with database.transaction() as session:
        assert (await redeem(session, PROTOCOL, "nope", telegram_user_id=1, **who)).outcome == (
            RedeemOutcome.UNKNOWN
        )
        assert (
            await redeem(session, PROTOCOL, "<b>x</b>", telegram_user_id=1, **who)
        ).outcome == RedeemOutcome.UNKNOWN
        assert (await redeem(session, PROTOCOL, old, telegram_user_id=1, **who)).outcome == (
            RedeemOutcome.EXPIRED
        )
        done = await redeem(session, PROTOCOL, good, telegram_user_id=1, **who)
        assert done.outcome == RedeemOutcome.ENROLLED and done.profile is not None
        assert done.profile.group_key == "north" and done.profile.quiet_start == "21:00"
        again = await redeem(session, PROTOCOL, good, telegram_user_id=2, chat_id=2)
        assert again.outcome == RedeemOutcome.USED
    assert await count(database, Person) == 1


def test_throttle_allows_five_failures_an_hour_then_warns_once() -> None:
    throttle = RedemptionThrottle(limit=5, window=3600)
    for second in range(5):
        assert not throttle.blocked(1, now=second)
        throttle.record_failure(1, now=second)
    assert throttle.blocked(1, now=10)
    assert not throttle.blocked(2, now=10), "per user"
    assert throttle.warn_once(1, now=10)
    assert not throttle.warn_once(1, now=11)
    assert throttle.blocked(1, now=3599)
    assert not throttle.blocked(1, now=3600), "an hour after the first failure it eases"
    throttle.record_failure(1, now=3600)
    assert throttle.blocked(1, now=3600.5)
    assert not throttle.warn_once(1, now=3600.5), "one warning for one run of guesses"
    assert not throttle.blocked(1, now=7300)
    for second in range(5):
        throttle.record_failure(1, now=7300 + second)
    assert throttle.blocked(1, now=7306)
    assert throttle.warn_once(1, now=7306), "after a quiet hour, a new run may warn again"


def test_throttle_memory_is_bounded() -> None:
    throttle = RedemptionThrottle(max_tracked=100)
    for user in range(1000):
        throttle.record_failure(user, now=1.0)
    assert len(throttle._failures) == 100


# --- end to end --------------------------------------------------------------------------------


async def assert_nobody_enrolled(database, companion, sandbox) -> None:
    await settle(companion, sandbox)
    assert await count(database, Person) == 0
    assert await count(database, TelegramIdentity) == 0
    assert await count(database, OutboxMessage) == 0, "nothing about outsiders is stored"


async def test_mistyped_and_forged_codes_get_one_gentle_reply(companion, sandbox, database):
    code = await make_invite(database)
    alex = sandbox.user(6101, "Alex")
    mistyped = code[:-1] + ("A" if code[-1] != "A" else "B")
    for payload in (mistyped, "<script>alert(1)</script>", "x" * 300, "/start"):
        alex.send_command("start", payload)
    messages = await sandbox.wait_for_messages(6101, 4)
    assert all("did not work" in m["text"] for m in messages)
    await assert_nobody_enrolled(database, companion, sandbox)
    async with database.sessions() as session:
        invite = (await session.execute(select(Invite))).scalar_one()
        payloads = (await session.execute(select(InboxUpdate.payload))).scalars().all()
    assert invite.used_at is None
    assert all(p is None for p in payloads)


async def test_expired_code_is_explained(companion, sandbox, database):
    code = await make_invite(database, now=utcnow() - timedelta(days=15), expires_days=14)
    sandbox.user(6102, "Bea").send_command("start", code)
    [reply] = await sandbox.wait_for_messages(6102, 1)
    assert "too old" in reply["text"] and "connector" in reply["text"]
    await assert_nobody_enrolled(database, companion, sandbox)


async def test_used_code_is_explained_and_not_given_twice(companion, sandbox, database):
    code = await make_invite(database)
    sandbox.user(6103, "Cal").send_command("start", code)
    await sandbox.wait_for_messages(6103, 2)
    sandbox.user(6104, "Dee").send_command("start", code)
    [reply] = await sandbox.wait_for_messages(6104, 1)
    assert "used already" in reply["text"]
    await settle(companion, sandbox)
    assert await count(database, Person) == 1
    assert await count(database, TelegramIdentity, TelegramIdentity.telegram_user_id == 6104) == 0
    assert await count(database, OutboxMessage, OutboxMessage.chat_id == 6104) == 0


async def test_the_sixth_failure_in_an_hour_is_throttled_then_silence(
    companion, sandbox, database
):
    good = await make_invite(database)
    eve = sandbox.user(6105, "Eve")
    for attempt in range(5):
        eve.send_command("start", f"guess{attempt}")
    await sandbox.wait_for_messages(6105, 5)
    eve.send_command("start", "guess5")
    messages = await sandbox.wait_for_messages(6105, 6)
    assert messages[-1]["text"] == "Please ask your connector for a new link."
    eve.send_command("start", "guess6")
    eve.send_command("start", good)  # even a good code waits: guessing must not pay
    await settle(companion, sandbox)
    assert len(sandbox.sent_to(6105)) == 6, "then silence"
    assert await count(database, Invite, Invite.used_at.is_(None)) == 1
    await assert_nobody_enrolled(database, companion, sandbox)


async def test_someone_enrolled_is_told_they_are_set_up_and_the_code_is_kept(
    companion, sandbox, database
):
    await enrol(database, 6106, name="Fay")
    code = await make_invite(database)
    sandbox.user(6106, "Fay").send_command("start", code)
    [reply] = await sandbox.wait_for_messages(6106, 1)
    assert "already set up" in reply["text"] and "Fay" in reply["text"]
    await settle(companion, sandbox)
    assert await count(database, Invite, Invite.used_at.is_(None)) == 1
    assert await count(database, Person) == 1


async def test_a_partner_invite_enrols_with_group_and_audit(companion, sandbox, database):
    code = await make_invite(database, group="south")
    sandbox.user(6107, "Gus", username="gus_t", language_code="en").send_command("start", code)
    await sandbox.wait_for_messages(6107, 2)
    await settle(companion, sandbox)
    async with database.sessions() as session:
        person = (await session.execute(select(Person))).scalar_one()
        identity = (await session.execute(select(TelegramIdentity))).scalar_one()
        profile = (await session.execute(select(PartnerProfile))).scalar_one()
        invite = (await session.execute(select(Invite))).scalar_one()
        audit = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "role.granted"))
        ).scalar_one()
    assert person.role == "partner" and person.pseudonym.startswith("P-")
    assert (identity.telegram_user_id, identity.chat_id) == (6107, 6107)
    assert (identity.first_name, identity.username, identity.language_code) == (
        "Gus",
        "gus_t",
        "en",
    )
    assert (profile.group_key, profile.timezone) == ("south", "Europe/London")
    assert profile.onboarding_step == "welcome" and profile.onboarded_at is None
    assert invite.used_by_person_id == person.id and invite.used_at is not None
    assert audit.actor_person_id == person.id
    assert audit.detail == {"role": "partner", "source": "invite", "invite_id": invite.id}
