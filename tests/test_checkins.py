"""The check-in service without Telegram: as the scheduler will call it, with any session."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.partners import checkins
from bot.partners.checkins import Outcome
from bot.partners.views import checkins as checkin_views
from bot.protocol import StudyProtocol, load_protocol
from prompts import DEFAULT_STUDY_PATH, Prompts
from storage.clock import utcnow
from storage.crypto import TextCipher
from storage.models import (
    Answer,
    Checkin,
    CheckinStatus,
    OutboxMessage,
    PartnerProfile,
    PersonStatus,
    Role,
)
from tests.factories import enrol

PARTNER = 8001


@pytest.fixture(scope="module")
def protocol() -> StudyProtocol:
    return load_protocol(DEFAULT_STUDY_PATH)


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    return Prompts()


def fake_answer(key: str, number: int | None = None) -> Answer:
    return Answer(question_key=key, value_number=number, skipped=False)


def test_next_question_branches_on_confidence(protocol):
    keys = lambda answers, after=None: getattr(  # noqa: E731
        checkins.next_question(protocol, "weekly", answers, after=after), "key", None
    )
    assert keys({}) == "confidence"
    assert keys({"confidence": fake_answer("confidence", 2)}, "confidence") == "confidence_help"
    assert keys({"confidence": fake_answer("confidence", 1)}, "confidence") == "confidence_help"
    assert keys({"confidence": fake_answer("confidence", 4)}, "confidence") == "valued"
    assert keys({"confidence": fake_answer("confidence", 2)}, "reflection") is None
    assert keys({}, "confidence") == "valued", "no confidence answer: no follow-up"


def test_every_button_fits_in_64_bytes_even_with_a_huge_id(protocol, prompts):
    big = Checkin(id=10**12 - 1, checkin_key="weekly")
    for definition in protocol.checkins:
        for key in definition.questions:
            question = protocol.question(key)
            markup = checkin_views.keyboard(prompts, big, definition, question)
            if markup is None:
                continue
            for row in markup.inline_keyboard:
                assert len(row) <= checkin_views.SCALE_ROW
                for button in row:
                    data = str(button.callback_data)
                    assert len(data.encode()) <= 64
                    assert checkins.parse_callback(data) is not None


def test_long_keys_fall_back_to_positions(protocol, prompts):
    long_q = "q" * 32
    custom = protocol.model_copy(deep=True)
    question = custom.question("relationships").model_copy(
        update={
            "key": long_q,
            "options": [
                o.model_copy(update={"key": "o" * 31 + str(i)})
                for i, o in enumerate(custom.question("relationships").options)
            ],
        }
    )
    definition = custom.checkin("after_meeting").model_copy(
        update={"questions": ["meeting_felt", long_q]}
    )
    custom = custom.model_copy(
        update={"questions": [*custom.questions, question], "checkins": [definition]}
    )
    checkin = Checkin(id=123456789012, checkin_key="after_meeting")
    data = checkin_views.callback_data(checkin, definition, question, question.options[2].key)
    assert data == "ci:123456789012:#1:#2"
    parsed = checkins.parse_callback(data)
    assert parsed is not None
    resolved = checkins._resolve(custom, definition, parsed.question, parsed.value)
    assert resolved == (question, question.options[2].key)


async def test_open_is_idempotent_and_queues_intro_with_first_question(
    database, protocol, prompts
):
    person = await enrol(database, PARTNER, name="Sam")
    now = utcnow()
    # The scheduler's way: its own session, no Telegram update.
    for _ in range(2):
        async with database.transaction() as session:
            checkin = await checkins.open_checkin(
                session,
                protocol,
                prompts,
                person,
                "monthly",
                occurrence_key="weekly:8001:2026-06-04",
                now=now,
                source="scheduled",
            )
            assert checkin is not None
    async with database.sessions() as session:
        [stored] = (await session.execute(select(Checkin))).scalars().all()
        assert stored.status == CheckinStatus.OPEN and stored.current_question == "what_changed"
        assert stored.closes_at == now + timedelta(hours=168)
        [message] = (await session.execute(select(OutboxMessage))).scalars().all()
        assert message.idempotency_key == f"ci:{stored.id}:ask:what_changed"
        assert "monthly check-in" in message.payload["text"]
        assert "voice note" in message.payload["text"]
        profile = await session.get(PartnerProfile, person.id)
        assert profile is not None
        assert profile.awaiting_input == f"checkin:{stored.id}:what_changed"


async def test_refusals_pause_and_withdrawal(database, protocol, prompts):
    now = utcnow()
    paused = await enrol(database, PARTNER)
    withdrawn = await enrol(database, PARTNER + 1, status=PersonStatus.WITHDRAWN)
    waiting = await enrol(database, PARTNER + 2, onboarded=False)
    staff = await enrol(database, PARTNER + 3, role=Role.CONNECTOR)
    async with database.transaction() as session:
        profile = await session.get(PartnerProfile, paused.id)
        assert profile is not None
        profile.paused_until = now + timedelta(days=7)
    async with database.transaction() as session:
        for person, source, expected in [
            (paused, "scheduled", None),  # a pause stops scheduled check-ins...
            (withdrawn, "manual", None),
            (waiting, "manual", None),
            (staff, "manual", None),
        ]:
            got = await checkins.open_checkin(
                session,
                protocol,
                prompts,
                person,
                "weekly",
                occurrence_key=f"{source}:{person.id}",
                now=now,
                source=source,
            )
            assert got is expected
        # ...but not one the partner asks for.
        manual = await checkins.open_checkin(
            session, protocol, prompts, paused, "weekly", occurrence_key="manual:x", now=now
        )
        assert manual is not None
    profile = PartnerProfile(onboarded_at=now)
    assert checkins.refusal_reason(withdrawn, profile, now=now) == "withdrawn"
    assert checkins.refusal_reason(staff, profile, now=now) == "not_partner"


async def test_a_new_checkin_replaces_an_open_one_and_expiry_keeps_answers(
    database, protocol, prompts
):
    person = await enrol(database, PARTNER)
    now = utcnow()
    async with database.transaction() as session:
        first = await checkins.open_checkin(
            session, protocol, prompts, person, "weekly", occurrence_key="a", now=now
        )
        assert first is not None
        got = await checkins.record_choice(
            session, protocol, prompts, person, f"ci:{first.id}:confidence:3", now=now
        )
        assert got.outcome == Outcome.RECORDED
        second = await checkins.open_checkin(
            session, protocol, prompts, person, "after_meeting", occurrence_key="b", now=now
        )
        assert second is not None
        assert first.status == CheckinStatus.EXPIRED and first.reason == "replaced"
        assert await checkins.current_open(session, person.id, now=now) is second
    async with database.transaction() as session:
        assert await checkins.expire_due(session, now + timedelta(hours=47)) == []
        expired = await checkins.expire_due(session, now + timedelta(hours=48))
        assert [c.occurrence_key for c in expired] == ["b"]
        answers = (await session.execute(select(Answer))).scalars().all()
        assert [(a.question_key, a.value_number) for a in answers] == [("confidence", 3)]
        closed = await checkins.record_choice(
            session, protocol, prompts, person, f"ci:{second.id}:meeting_felt:heard", now=now
        )
        assert closed.outcome == Outcome.CLOSED


async def test_changing_confidence_moves_past_a_follow_up_no_longer_needed(
    database, protocol, prompts
):
    person = await enrol(database, PARTNER)
    now = utcnow()
    async with database.transaction() as session:
        checkin = await checkins.open_checkin(
            session, protocol, prompts, person, "weekly", occurrence_key="a", now=now
        )
        assert checkin is not None
        press = lambda value: checkins.record_choice(  # noqa: E731
            session, protocol, prompts, person, f"ci:{checkin.id}:confidence:{value}", now=now
        )
        assert (await press(1)).outcome == Outcome.RECORDED
        assert checkin.current_question == "confidence_help"
        assert (await press(1)).outcome == Outcome.UNCHANGED
        changed = await press(4)
        assert changed.outcome == Outcome.CHANGED
        assert checkin.current_question == "valued"
        profile = await session.get(PartnerProfile, person.id)
        assert profile is not None and profile.awaiting_input is None
        # The follow-up's Skip is no longer valid.
        skip = await checkins.record_choice(
            session, protocol, prompts, person, f"ci:{checkin.id}:confidence_help:-", now=now
        )
        assert skip.outcome == Outcome.INVALID


async def test_text_answers_are_encrypted_and_checked(database, protocol, prompts):
    person = await enrol(database, PARTNER)
    cipher = TextCipher("k1")
    now = utcnow()
    async with database.transaction() as session:
        checkin = await checkins.open_checkin(
            session, protocol, prompts, person, "monthly", occurrence_key="m", now=now
        )
        assert checkin is not None
        wrong = await checkins.record_text(
            session,
            protocol,
            prompts,
            cipher,
            person,
            checkin_id=checkin.id,
            question_key="proud",
            text="not yet",
            chat_id=PARTNER,
            now=now,
        )
        assert wrong.outcome == Outcome.INVALID
        got = await checkins.record_text(
            session,
            protocol,
            prompts,
            cipher,
            person,
            checkin_id=checkin.id,
            question_key="what_changed",
            text="I spoke at the meeting",
            chat_id=PARTNER,
            now=now,
        )
        assert got.outcome == Outcome.RECORDED and got.answer is not None
        assert got.answer.text_encrypted
        assert cipher.decrypt(got.answer.value_text or "", True) == "I spoke at the meeting"
        assert checkin.current_question == "proud"
        done = await checkins.record_voice(
            session,
            protocol,
            prompts,
            cipher,
            person,
            checkin_id=checkin.id,
            question_key="proud",
            file_id="F1",
            duration=12,
            caption=None,
            chat_id=PARTNER,
            now=now,
        )
        assert done.completed and checkin.status == CheckinStatus.COMPLETED
        summary = await checkins.contribution(session, person.id)
        assert summary == checkins.Contribution(1)
    plain = TextCipher(None)
    assert plain.encrypt("x") == ("x", False)


def test_manual_checkin_is_the_weekly_one_by_default(protocol):
    assert checkins.manual_checkin_key(protocol) == "weekly"
