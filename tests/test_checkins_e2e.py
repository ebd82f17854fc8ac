"""Check-ins end to end through the sandbox: buttons, text, voice, Skip, changes, stale buttons."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.partners.checkins import expire_due
from bot.partners.voice_files import read_voice
from storage.clock import utcnow
from storage.crypto import TextCipher
from storage.models import Answer, Checkin, CheckinStatus, PartnerProfile, Person
from tests.factories import enrol
from tests.support import SECRET, buttons, data_for, raw_message, settle

PARTNER = 7001
OTHER = 7002


def callback_text(sandbox, pressed: dict) -> str | None:
    """What the bot answered to a press (the toast), None if it answered without text."""
    answer = sandbox.callback_answers[pressed["callback_query"]["id"]]
    return answer.get("text")


async def press(companion, sandbox, user_id: int, message: dict, label: str) -> str | None:
    pressed = sandbox.user(user_id).press(message, data_for(message, label))
    await settle(companion, sandbox)
    return callback_text(sandbox, pressed)


async def answers(database, **where) -> list[Answer]:
    async with database.sessions() as session:
        query = select(Answer).order_by(Answer.id)
        for name, value in where.items():
            query = query.where(getattr(Answer, name) == value)
        return list((await session.execute(query)).scalars())


async def checkins(database) -> list[Checkin]:
    async with database.sessions() as session:
        return list((await session.execute(select(Checkin).order_by(Checkin.id))).scalars())


async def last(sandbox, user_id: int) -> dict:
    return sandbox.sent_to(user_id)[-1]


async def test_a_full_checkin_with_buttons_text_voice_skip_and_a_change(
    companion, sandbox, database
):
    person = await enrol(database, PARTNER, name="Sam")
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    [first] = sandbox.sent_to(PARTNER)
    assert "Hi Sam" in first["text"] and "no right or wrong answers" in first["text"]
    assert "How confident" in first["text"]
    assert "1 = Not at all confident" in first["text"] and "5 = Very confident" in first["text"]
    [scale_row] = first["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in scale_row] == ["1", "2", "3", "4", "5"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in scale_row)

    # Confidence 2: the "what would help" follow-up appears, with Skip.
    assert await press(companion, sandbox, PARTNER, first, "2") is None
    marked = sandbox.sent_to(PARTNER)[0]
    assert [t for t, _ in buttons(marked)] == ["1", "\u2713 2", "3", "4", "5"]
    helpq = await last(sandbox, PARTNER)
    assert "What would help" in helpq["text"] and "voice note" in helpq["text"]
    assert [t for t, _ in buttons(helpq)] == ["Skip"]

    sam.send_text("More time to read the papers.")
    await settle(companion, sandbox)
    valued = await last(sandbox, PARTNER)
    assert "views count" in valued["text"]
    await press(companion, sandbox, PARTNER, valued, "4")
    team = await last(sandbox, PARTNER)
    assert "part of the team" in team["text"]
    await press(companion, sandbox, PARTNER, team, "5")
    reflection = await last(sandbox, PARTNER)
    assert "anything else" in reflection["text"]

    # Change an earlier answer: a new row, the old one superseded, the tick moves.
    assert await press(companion, sandbox, PARTNER, valued, "3") == "Changed. Thank you!"
    valued_now = next(
        m for m in sandbox.sent_to(PARTNER) if m["message_id"] == valued["message_id"]
    )
    assert [t for t, _ in buttons(valued_now)] == ["1", "2", "\u2713 3", "4", "5"]
    # A double tap of the same value changes nothing.
    assert await press(companion, sandbox, PARTNER, valued, "3") == "Got it, thank you."

    sam.send_voice(duration=7)
    await settle(companion, sandbox)
    end = await last(sandbox, PARTNER)
    assert "check-in done" in end["text"] and "first reflection" in end["text"]
    assert "confidence" not in end["text"], "no change to notice after one check-in"

    rows = await answers(database)
    summary = [
        (a.question_key, a.value_number, a.skipped, a.superseded_at is not None) for a in rows
    ]
    assert summary == [
        ("confidence", 2, False, False),
        ("confidence_help", None, False, False),
        ("valued", 4, False, True),
        ("part_of_team", 5, False, False),
        ("valued", 3, False, False),
        ("reflection", None, False, False),
    ]
    helped = rows[1]
    assert helped.text_encrypted and helped.value_text != "More time to read the papers."
    assert TextCipher(SECRET).decrypt(helped.value_text, True) == "More time to read the papers."
    voice = rows[-1]
    assert voice.voice_file_id and voice.voice_duration == 7 and voice.value_text is None
    # Encrypted at rest like typed text: only the sealed copy is on disk, and it opens.
    assert voice.voice_path == f"voice/{person.pseudonym}/{voice.id}.ogg.enc"
    saved = companion.settings.companion_data_dir / voice.voice_path
    assert saved.is_file() and saved.stat().st_size > 0
    assert not saved.with_name(f"{voice.id}.ogg").exists()
    sent = sandbox.files.get(voice.voice_file_id).data
    assert sent not in saved.read_bytes()
    assert read_voice(saved, TextCipher(SECRET)) == sent
    assert all(a.source_update_id for a in rows)
    [checkin] = await checkins(database)
    assert checkin.status == CheckinStatus.COMPLETED and checkin.completed_at is not None
    assert checkin.current_question is None
    assert checkin.closes_at - checkin.opened_at == timedelta(hours=48)
    async with database.sessions() as session:
        profile = await session.get(PartnerProfile, person.id)
        assert profile is not None and profile.awaiting_input is None

    # A second check-in: confidence 4 skips the follow-up; Skip the last; the end notices it.
    sam.send_command("checkin")
    await settle(companion, sandbox)
    second = await last(sandbox, PARTNER)
    await press(companion, sandbox, PARTNER, second, "4")
    valued2 = await last(sandbox, PARTNER)
    assert "views count" in valued2["text"], "confidence 4: no follow-up question"
    await press(companion, sandbox, PARTNER, valued2, "4")
    await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), "4")
    await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), "Skip")
    end2 = await last(sandbox, PARTNER)
    assert "2 reflections so far" in end2["text"]
    assert "gone from 2 to 4" in end2["text"]
    second_rows = await answers(database, checkin_id=2)
    assert [(a.question_key, a.skipped) for a in second_rows] == [
        ("confidence", False),
        ("valued", False),
        ("part_of_team", False),
        ("reflection", True),
    ]

    # Its buttons are stale now: polite, and nothing changes.
    before = len(await answers(database))
    assert await press(companion, sandbox, PARTNER, first, "5") == (
        "This check-in has closed. Thank you!"
    )
    assert await press(companion, sandbox, PARTNER, valued2, "1") == (
        "This check-in has closed. Thank you!"
    )
    assert len(await answers(database)) == before


async def test_a_drop_in_confidence_is_noticed_kindly(companion, sandbox, database):
    await enrol(database, PARTNER)
    sam = sandbox.user(PARTNER, "Sam")
    for value in ("4", "3"):
        sam.send_command("checkin")
        await settle(companion, sandbox)
        await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), value)
        for _ in range(2):
            await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), "3")
        await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), "Skip")
    end = (await last(sandbox, PARTNER))["text"]
    assert "was 4 when you started" in end and "Today it is 3" in end
    assert "Ups and downs are normal" in end


async def test_checkin_while_one_is_open_repeats_the_question(companion, sandbox, database):
    await enrol(database, PARTNER)
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), "5")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    again = await last(sandbox, PARTNER)
    assert "Here is where you got to" in again["text"] and "views count" in again["text"]
    assert len(await checkins(database)) == 1
    # Text while a button question waits: a kind pointer, nothing stored.
    sam.send_text("hello there")
    await settle(companion, sandbox)
    assert "tap one of the buttons" in (await last(sandbox, PARTNER))["text"]
    assert len(await answers(database)) == 1


async def test_forged_foreign_and_out_of_range_buttons_store_nothing(companion, sandbox, database):
    await enrol(database, PARTNER)
    await enrol(database, OTHER, name="Alex")
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    [question] = sandbox.sent_to(PARTNER)
    checkin_id = (await checkins(database))[0].id
    alex = sandbox.user(OTHER, "Alex")
    alex.send_command("help")
    await settle(companion, sandbox)
    forged = [
        (alex, f"ci:{checkin_id}:confidence:3"),  # someone else's check-in
        (sam, f"ci:{checkin_id}:confidence:9"),  # out of range
        (sam, f"ci:{checkin_id}:confidence:-"),  # Skip on a question that is not optional
        (sam, f"ci:{checkin_id}:nosuch:1"),  # unknown question
        (sam, f"ci:{checkin_id}:valued:3"),  # not asked yet
        (sam, "ci:999999:confidence:3"),  # no such check-in
        (sam, "ci:abc:confidence:3"),
        (sam, "ci:" + "9" * 70),
    ]
    pressed = [user.press(question if user is sam else 1, data) for user, data in forged]
    await settle(companion, sandbox)
    for update_ in pressed:
        assert callback_text(sandbox, update_) in {
            "Sorry, this button does not work any more.",
            "This button no longer does anything. Thank you!",
        }
    assert await answers(database) == []
    [checkin] = await checkins(database)
    assert checkin.status == CheckinStatus.OPEN and checkin.current_question == "confidence"


async def test_expiry_keeps_partial_answers_and_closes_buttons_and_text(
    companion, sandbox, database
):
    await enrol(database, PARTNER)
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    first = await last(sandbox, PARTNER)
    await press(companion, sandbox, PARTNER, first, "1")
    assert "What would help" in (await last(sandbox, PARTNER))["text"]

    # The scheduler's expiry run, two days later.
    async with database.transaction() as session:
        expired = await expire_due(session, utcnow() + timedelta(hours=49))
    assert [c.id for c in expired] == [1]
    [checkin] = await checkins(database)
    assert checkin.status == CheckinStatus.EXPIRED and checkin.reason == "time"

    assert await press(companion, sandbox, PARTNER, first, "3") == (
        "This check-in has closed. Thank you!"
    )
    sent = len(sandbox.sent_to(PARTNER))
    sam.send_text("Some thoughts, too late")
    await settle(companion, sandbox)
    replies = sandbox.sent_to(PARTNER)[sent:]
    assert len(replies) == 1 and "fallback" not in replies[0]["text"]
    assert [(a.question_key, a.value_number) for a in await answers(database)] == [
        ("confidence", 1)
    ], "the partial answer is kept; nothing after expiry is stored"


async def test_a_reply_after_the_window_closed_is_not_stored(companion, sandbox, database):
    person = await enrol(database, PARTNER)
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), "2")
    # No expiry run yet: the window just passed while the question waited.
    async with database.transaction() as session:
        await session.execute(update(Checkin).values(closes_at=utcnow() - timedelta(minutes=1)))
    sam.send_text("Here is my answer")
    await settle(companion, sandbox)
    reply = (await last(sandbox, PARTNER))["text"]
    assert "check-in has closed" in reply and "/checkin" in reply
    [checkin] = await checkins(database)
    assert checkin.status == CheckinStatus.EXPIRED
    assert len(await answers(database)) == 1
    async with database.sessions() as session:
        profile = await session.get(PartnerProfile, person.id)
        assert profile is not None and profile.awaiting_input is None
    # The next message is ordinary again: it goes to the connector.
    sam.send_text("hello")
    await settle(companion, sandbox)
    assert "Sent to Priya" in (await last(sandbox, PARTNER))["text"]


async def test_a_failed_voice_download_keeps_the_answer(companion, sandbox, database):
    await enrol(database, PARTNER)
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), "1")
    sandbox.faults.fail_next(1, 400, "getFile", description="Bad Request: file is too big")
    sam.send_voice(duration=4)
    await settle(companion, sandbox)
    voice = (await answers(database, question_key="confidence_help"))[0]
    assert voice.voice_file_id and voice.voice_duration == 4 and voice.voice_path is None
    assert "views count" in (await last(sandbox, PARTNER))["text"], "the check-in moved on"


async def test_a_voice_note_is_fetched_after_the_commit_and_not_kept_if_the_answer_went(
    companion, sandbox, database, tmp_path, monkeypatch
):
    """The download happens once the answer is committed; should the answer be gone by then
    (a withdrawal that deletes data), the file is removed again."""
    import bot.partners.voice
    from bot.partners.voice import fetch_voice_answer

    await enrol(database, PARTNER)
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_command("checkin")
    await settle(companion, sandbox)
    await press(companion, sandbox, PARTNER, await last(sandbox, PARTNER), "1")
    seen_committed: list[bool] = []
    download = bot.partners.voice.download_voice

    async def watched(*args, **kwargs):
        # Another connection sees the answer: its transaction had committed.
        seen_committed.append(bool(await answers(database, question_key="confidence_help")))
        return await download(*args, **kwargs)

    monkeypatch.setattr(bot.partners.voice, "download_voice", watched)
    sam.send_voice(duration=3)
    await settle(companion, sandbox)
    assert seen_committed == [True], "fetched once, after the commit"
    [voice] = await answers(database, question_key="confidence_help")
    assert voice.voice_path and (companion.settings.companion_data_dir / voice.voice_path).exists()

    update = sandbox.user(OTHER, "Kim").send_voice(duration=2)
    file_id = update["message"]["voice"]["file_id"]
    await fetch_voice_answer(
        companion.application.bot,
        database,
        file_id=file_id,
        data_dir=tmp_path,
        relative_path="voice/gone.ogg",
        answer_id=999_999,
    )
    assert not (tmp_path / "voice" / "gone.ogg").exists()


async def test_staff_cannot_start_a_checkin(companion, sandbox, database):
    from tests.conftest import CONNECTOR_ID

    connector = sandbox.user(CONNECTOR_ID, "Jo")
    connector.send_command("checkin")
    await settle(companion, sandbox)
    assert "cannot start a check-in" in sandbox.sent_to(CONNECTOR_ID)[-1]["text"]
    assert await checkins(database) == []
    async with database.sessions() as session:
        assert (await session.execute(select(Person))).scalar_one().role == "connector"


async def test_typing_points_at_the_buttons_even_when_the_checkin_opened_in_the_same_batch(
    companion, sandbox, database, monkeypatch
):
    """The batch knows who had a check-in open when it began; one opened by an earlier update
    of the same batch still counts."""
    import bot.transport.inbox
    from bot.transport.inbox import store_updates

    monkeypatch.setattr(bot.transport.inbox, "MAX_BATCH_SECONDS", 60.0)  # one batch
    await enrol(database, PARTNER)
    sam = sandbox.user(PARTNER, "Sam")
    sam.send_text("hello")
    await settle(companion, sandbox)
    assert "Priya" in (await last(sandbox, PARTNER))["text"], "passed on to their connector"

    await store_updates(
        database,
        [
            raw_message(960_000, PARTNER, "Sam", "/checkin"),
            raw_message(960_001, PARTNER, "Sam", "hello"),
        ],
    )
    companion.worker.wake()
    await settle(companion, sandbox)
    texts = [m["text"] for m in sandbox.sent_to(PARTNER)]
    assert "How confident" in texts[-2]
    assert "tap one of the buttons" in texts[-1]
