"""/pause and /resume through the sandbox, and is_paused for the scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.calendar.breaks import is_paused
from bot.calendar.words import day_words
from bot.partners.pausing import pause, resume
from bot.protocol import load_protocol
from prompts import DEFAULT_STUDY_PATH, Prompts
from storage.clock import utcnow
from storage.models import PartnerProfile
from tests.factories import enrol
from tests.tools_support import running_companion, settle

PROTOCOL = load_protocol(DEFAULT_STUDY_PATH)
PROMPTS = Prompts()
USER = 8201


async def profile_of(database, person_id: int) -> PartnerProfile:
    async with database.sessions() as session:
        profile = await session.get(PartnerProfile, person_id)
        assert profile is not None
        return profile


async def test_pause_for_two_weeks_then_resume(sandbox, database, database_url, tmp_path):
    sam = await enrol(database, USER, timezone="Europe/London")
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        user = sandbox.user(USER, "Sam")
        user.send_command("pause")
        [choose] = await sandbox.wait_for_messages(USER, 1, timeout=10)
        labels = {
            b["text"]: b["callback_data"]
            for row in choose["reply_markup"]["inline_keyboard"]
            for b in row
        }
        assert labels == {
            "1 week": "pause:7",
            "2 weeks": "pause:14",
            "4 weeks": "pause:28",
            "Cancel": "pause:cancel",
        }
        started = utcnow()
        user.press(choose, "pause:14")
        [_, paused] = await sandbox.wait_for_messages(USER, 2, timeout=10)
        await settle(companion, sandbox)
        profile = await profile_of(database, sam.id)
        assert profile.paused_until is not None
        assert abs(profile.paused_until - (started + timedelta(days=14))) < timedelta(minutes=1)
        assert is_paused(profile, utcnow())
        assert (
            day_words(PROMPTS, profile.paused_until, ZoneInfo("Europe/London")) in paused["text"]
        )
        assert "/resume" in paused["text"]

        # /pause again says when the break ends.
        user.send_command("pause")
        [*_, again] = await sandbox.wait_for_messages(USER, 3, timeout=10)
        assert "You are taking a break until" in again["text"]

        user.send_command("resume")
        [*_, resumed] = await sandbox.wait_for_messages(USER, 4, timeout=10)
        assert "Welcome back" in resumed["text"] and "Thursday" in resumed["text"]
        await settle(companion, sandbox)
        assert (await profile_of(database, sam.id)).paused_until is None

        user.send_command("resume")
        [*_, not_paused] = await sandbox.wait_for_messages(USER, 5, timeout=10)
        assert "not on a break" in not_paused["text"]
        await settle(companion, sandbox)


async def test_forged_pause_buttons_change_nothing(sandbox, database, database_url, tmp_path):
    sam = await enrol(database, USER)
    forged = ["pause:3", "pause:abc", "pause:-7", "pause:99999999", "pause:", "pause:7:7"]
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        user = sandbox.user(USER, "Sam")
        user.send_command("pause")
        [choose] = await sandbox.wait_for_messages(USER, 1, timeout=10)
        presses = [user.press(choose, data) for data in forged]
        cancel = user.press(choose, "pause:cancel")
        await settle(companion, sandbox)
    for data, update in zip(forged, presses, strict=True):
        assert "out of date" in sandbox.callback_answers[update["callback_query"]["id"]]["text"], (
            data
        )
    assert (
        "nothing has changed" in sandbox.callback_answers[cancel["callback_query"]["id"]]["text"]
    )
    assert len(sandbox.sent_to(USER)) == 1
    assert (await profile_of(database, sam.id)).paused_until is None


def test_is_paused_and_the_pause_rules() -> None:
    now = datetime(2025, 3, 5, 10, tzinfo=UTC)
    profile = PartnerProfile(paused_until=None)
    assert not is_paused(profile, now)
    assert not is_paused(None, now)
    until = pause(profile, PROTOCOL, 7, now=now)
    assert until == now + timedelta(days=7)
    assert is_paused(profile, now + timedelta(days=6, hours=23))
    assert not is_paused(profile, until), "the break is over at paused_until"
    with pytest.raises(ValueError, match="not offered"):
        pause(profile, PROTOCOL, 3, now=now)
    with pytest.raises(ValueError, match="aware"):
        is_paused(profile, datetime(2025, 3, 5))  # noqa: DTZ001
    assert resume(profile, now=now) is True
    assert profile.paused_until is None
    assert resume(profile, now=now) is False
