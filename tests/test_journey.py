"""/journey: the chart (a real PNG for a phone screen), its caption in words, and the summary."""

from __future__ import annotations

import struct
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.partners.journey import (
    ChartText,
    Journey,
    ScaleLine,
    chart_text,
    load_journey,
    render_chart,
    shorten,
)
from bot.protocol import load_protocol
from prompts import DEFAULT_STUDY_PATH, Prompts
from storage.models import Role
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.tools_support import CIPHER, Given, add_checkin, day, running_companion, settle

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PROTOCOL = load_protocol(DEFAULT_STUDY_PATH)
PROMPTS = Prompts()
LONDON = ZoneInfo("Europe/London")


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def add_history(database, person_id: int) -> None:
    await add_checkin(
        database,
        person_id,
        [
            Given("confidence", 2, day(3, 3)),
            Given("valued", 3, day(3, 3)),
            Given("reflection", "I spoke up for the first time", day(3, 3)),
        ],
    )
    await add_checkin(
        database,
        person_id,
        [
            Given("confidence", 1, day(4, 10), superseded=True),  # changed to 3 below
            Given("confidence", 3, day(4, 10, 13)),
            Given("valued", 3, day(4, 10)),
            Given("part_of_team", None, day(4, 10), skipped=True),
        ],
    )
    await add_checkin(
        database,
        person_id,
        [
            Given("confidence", 4, day(6, 12)),
            Given("valued", 3, day(6, 12)),
            Given("proud", "Speaking at the big meeting and being heard by the team", day(6, 12)),
        ],
        key="monthly",
    )


# -- the service -----------------------------------------------------------------------------


async def test_journey_uses_current_answers_of_this_person_only(database):
    sam = await enrol(database, 7001, name="Sam")
    other = await enrol(database, 7002, name="Kim")
    await add_history(database, sam.id)
    await add_checkin(
        database,
        other.id,
        [Given("confidence", 5, day(5, 1)), Given("proud", "Kim's own words", day(5, 1))],
    )
    async with database.sessions() as session:
        journey = await load_journey(session, sam.id, PROTOCOL, PROMPTS, CIPHER)
    confidence = next(line for line in journey.lines if line.question_key == "confidence")
    assert [value for _, value in confidence.points] == [2, 3, 4], "superseded 1 is left out"
    assert [line.label for line in journey.lines] == ["Confidence", "Feeling valued"]
    assert journey.checkins == 3
    assert journey.shared == 2
    assert [q.text for q in journey.quotes] == [
        "Speaking at the big meeting and being heard by the team"
    ]
    assert all("Kim" not in q.text for q in journey.quotes)


async def test_a_person_without_answers_has_an_empty_journey(database):
    sam = await enrol(database, 7003)
    async with database.sessions() as session:
        journey = await load_journey(session, sam.id, PROTOCOL, PROMPTS, CIPHER)
    assert journey.empty and journey.lines == [] and journey.first_at is None


def test_shorten_cuts_long_quotes_at_a_word() -> None:
    text = "word " * 100
    short = shorten(text, 50)
    assert len(short) <= 50 and short.endswith("…") and "  " not in short
    assert shorten("  a\nb  ") == "a b"


def test_the_chart_is_a_phone_sized_png(tmp_path: Path) -> None:
    journey = Journey(
        lines=[
            ScaleLine("confidence", "Confidence", 1, 5, ((day(3, 3), 2), (day(6, 12), 4))),
            ScaleLine("valued", "Feeling valued", 1, 5, ((day(3, 3), 3),)),
        ],
        checkins=2,
        shared=0,
        first_at=day(3, 3),
    )
    path = render_chart(
        journey, tmp_path / "charts" / "p.png", zone=LONDON, text=chart_text(PROMPTS, journey)
    )
    data = path.read_bytes()
    assert png_size(data) == (800, 1000)
    assert 10_000 < len(data) < 400_000, "small enough for a slow phone connection"


def test_a_single_answer_on_one_day_still_draws(tmp_path: Path) -> None:
    journey = Journey(
        lines=[ScaleLine("confidence", "Confidence", 1, 5, ((day(3, 3), 2),))],
        checkins=1,
        shared=0,
        first_at=day(3, 3),
    )
    path = render_chart(
        journey, tmp_path / "one.png", zone=LONDON, text=chart_text(PROMPTS, journey)
    )
    assert png_size(path.read_bytes()) == (800, 1000)


def test_no_chart_without_scale_answers(tmp_path: Path) -> None:
    journey = Journey(lines=[], checkins=1, shared=1, first_at=day(3, 3))
    with pytest.raises(ValueError, match="nothing to chart"):
        render_chart(
            journey, tmp_path / "none.png", zone=LONDON, text=ChartText("T", "Y", {"1": "Jan"})
        )
    assert not (tmp_path / "none.png").exists()


# -- end to end -----------------------------------------------------------------------------


async def test_journey_sends_a_chart_with_alt_text_and_a_summary(
    sandbox, database, database_url, tmp_path
):
    sam = await enrol(database, 7010, name="Sam")
    await add_history(database, sam.id)
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        sandbox.user(7010, "Sam").send_command("journey")
        photo, summary = await sandbox.wait_for_messages(7010, 2, timeout=20)
        await settle(companion, sandbox)
    assert "photo" in photo, photo
    stored = sandbox.files.get(photo["photo"][-1]["file_id"])
    assert png_size(stored.data) == (800, 1000)
    caption = photo["caption"]
    assert "Confidence: it went from 2 to 4, from 3 March to 12 June." in caption
    assert "Feeling valued: it stayed at 3" in caption
    assert "1 is low and 5 is high" in caption
    assert len(caption) <= 1024
    text = summary["text"]
    assert "3 check-ins since 3 March" in text
    assert "Speaking at the big meeting" in text
    assert "in your own words 2 times" in text
    assert (tmp_path / "charts" / f"{sam.pseudonym}.png").exists()


async def test_journey_without_answers_is_a_kind_message_and_no_chart(
    sandbox, database, database_url, tmp_path
):
    await enrol(database, 7011)
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        sandbox.user(7011).send_command("journey")
        [reply] = await sandbox.wait_for_messages(7011, 1)
        await settle(companion, sandbox)
    assert "nothing to show yet" in reply["text"]
    assert len(sandbox.sent_to(7011)) == 1
    assert not (tmp_path / "charts").exists()


async def test_staff_get_not_for_you(sandbox, database, database_url, tmp_path):
    await enrol(database, CONNECTOR_ID, role=Role.CONNECTOR, name="Jo")
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        user = sandbox.user(CONNECTOR_ID, "Jo")
        for command in ("journey", "mydata", "settings", "pause", "resume", "withdraw"):
            user.send_command(command)
        await sandbox.wait_for_messages(CONNECTOR_ID, 6)
        await settle(companion, sandbox)
    texts = [m["text"] for m in sandbox.sent_to(CONNECTOR_ID)]
    assert len(texts) == 6
    assert all("only for the study team" in t for t in texts)
