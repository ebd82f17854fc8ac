"""/stats end to end: the study's picture for a period as charts with their numbers in the
captions, small groups shown as "too few to show" (in words and in the charts), the protocol's
min_group_size respected, and the command refused to partners and outsiders."""

from __future__ import annotations

from datetime import timedelta

from bot.charts.lines import COLOURS
from bot.protocol import load_protocol
from prompts import DEFAULT_STUDY_PATH, Prompts
from storage.clock import utcnow
from storage.models import Involvement, Meeting
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import running_companion, settle
from tests.test_journey import png_size
from tests.test_partners_e2e import keep_chart
from tests.tools_support import Given, add_checkin

NORTH = [9101 + i for i in range(6)]
SOUTH = [9201, 9202]
OUTSIDER = 9299
NOT_FOR_YOU = Prompts().label("guards.not_for_you")


async def seed(database) -> None:
    now = utcnow()
    people = []
    for index, user in enumerate(NORTH + SOUTH):
        group = "north" if user in NORTH else "south"
        person = await enrol(database, user, name=f"P{index}", group=group)
        people.append(person)
        for week in range(5):
            at = now - timedelta(days=7 * week + 1)
            await add_checkin(
                database,
                person.id,
                [Given("confidence", 2 + (week + index) % 3, at), Given("valued", 4, at)],
            )
    async with database.transaction() as session:
        meeting = Meeting(
            title="Planning day",
            starts_at=now - timedelta(days=3),
            length_minutes=120,
            timezone="Europe/London",
            place="Town hall",
            groups=[],
        )
        session.add(meeting)
        await session.flush()
        for person in people[:3]:  # three came: too few to show
            session.add(
                Involvement(
                    person_id=person.id,
                    meeting_id=meeting.id,
                    minutes=120,
                    occurred_at=meeting.starts_at,
                )
            )


async def ask_stats(companion, sandbox, period_label: str) -> list[dict]:
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    connector.send_command("stats")
    await settle(companion, sandbox)
    choose = sandbox.sent_to(CONNECTOR_ID)[-1]
    before = len(sandbox.sent_to(CONNECTOR_ID))
    [data] = [
        b["callback_data"]
        for row in choose["reply_markup"]["inline_keyboard"]
        for b in row
        if b["text"] == period_label
    ]
    connector.press(choose, data)
    await sandbox.wait_for_messages(CONNECTOR_ID, before + 7, timeout=30)
    await settle(companion, sandbox, within=20)
    return sandbox.sent_to(CONNECTOR_ID)[before:]


def colour_share(data: bytes, colour: str, *, top: float = 1.0) -> float:
    """The share of a PNG's pixels within a small distance of ``colour`` (``#RRGGBB``), in
    the ``top`` share of the picture's height."""
    import io

    from matplotlib.image import imread

    pixels = imread(io.BytesIO(data), format="png")[:, :, :3]
    pixels = pixels[: int(len(pixels) * top)]
    wanted = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    close = (abs(pixels - wanted) < 0.08).all(axis=2)
    return float(close.mean())


def photo_data(sandbox, photo: dict) -> bytes:
    return sandbox.files.get(photo["photo"][-1]["file_id"]).data


async def test_stats_protect_small_groups_in_words_and_charts(companion, sandbox, database):
    await seed(database)
    sent = await ask_stats(companion, sandbox, "4 weeks")
    photos = [m for m in sent if "photo" in m]
    [summary] = [m for m in sent if "text" in m]
    # Check-ins answered; each scale question overall; and, for each scale question with
    # answers, one line per group (nobody answered "part of the team": no such chart).
    assert len(photos) == 6
    for photo in photos:
        assert len(photo["caption"]) <= 1024
        data = sandbox.files.get(photo["photo"][-1]["file_id"]).data
        assert png_size(data) == (800, 1000)
    checkins, confidence = photos[0], photos[1]
    keep_chart(sandbox.files.get(checkins["photo"][-1]["file_id"]).data, "stats-checkins.png")
    keep_chart(sandbox.files.get(confidence["photo"][-1]["file_id"]).data, "stats-confidence.png")
    assert "Overall: 100% of" in checkins["caption"]
    assert "North West: 3 (2 to 4)." in confidence["caption"]
    assert "South West: too few to show" in confidence["caption"]
    by_group = photos[2]
    assert by_group["caption"].startswith("Confidence in each group: the middle answer each month")
    assert "North West: " in by_group["caption"]
    [south] = [line for line in by_group["caption"].splitlines() if line.startswith("South")]
    assert "too few to show" in south and not any(c.isdigit() for c in south)
    picture = photo_data(sandbox, by_group)
    keep_chart(picture, "stats-confidence-groups.png")
    assert png_size(picture) == (800, 1000)
    assert colour_share(picture, COLOURS[0]) > 0.002, "the north line is drawn"
    # The south line (two people) is not drawn; a note at the foot says why, in its colour.
    assert colour_share(picture, COLOURS[1], top=0.8) == 0
    assert colour_share(picture, COLOURS[1]) > 0.001
    text = summary["text"]
    assert "North West: 6" in text and "South West: too few to show" in text
    assert "Everyone: 8." in text
    assert "Planning day" in text and "too few to show" in text.split("Planning day")[1]
    assert "3 came" not in text


async def test_min_group_size_is_a_protocol_setting(sandbox, database, database_url, tmp_path):
    await seed(database)
    protocol = load_protocol(DEFAULT_STUDY_PATH).model_copy(update={"min_group_size": 2})
    async with running_companion(sandbox, database_url, tmp_path, protocol=protocol) as bot:
        sent = await ask_stats(bot, sandbox, "All")
    [summary] = [m for m in sent if "text" in m]
    assert "South West: 2" in summary["text"] and "3 came" in summary["text"]
    by_group = next(m for m in sent if "photo" in m and "in each group" in m["caption"])
    picture = photo_data(sandbox, by_group)
    keep_chart(picture, "stats-confidence-groups-min2.png")
    assert colour_share(picture, COLOURS[0]) > 0.002
    assert colour_share(picture, COLOURS[1], top=0.8) > 0.002, "both lines are drawn"
    assert "too few to show" not in by_group["caption"]


async def test_stats_are_refused_to_partners_and_outsiders(companion, sandbox, database):
    await enrol(database, NORTH[0], name="Sam")
    sam, stranger = sandbox.user(NORTH[0], "Sam"), sandbox.user(OUTSIDER, "Stranger")
    sam.send_command("stats")
    presses = [sam.press(1, "st:all"), stranger.press(1, "st:all")]
    await settle(companion, sandbox)
    assert [m["text"] for m in sandbox.sent_to(NORTH[0])] == [
        Prompts().render("guards/not_for_you")
    ]
    answers = [sandbox.callback_answers[p["callback_query"]["id"]].get("text") for p in presses]
    assert answers == [NOT_FOR_YOU, None]
    assert all("photo" not in m for m in sandbox.sent_to(OUTSIDER))


async def test_the_figures_read_the_answers_once(database) -> None:
    """One pass over the answers (bench/stats.py measures what it saves): the answers' counts
    per value and the people behind them, which the small-group rule needs, come from one
    query (on PostgreSQL counted per person first, on SQLite in one aggregate)."""
    from sqlalchemy import event

    from bot.connector.stats import study_stats

    await seed(database)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engines = {database.engine.sync_engine, database.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        async with database.sessions() as session:
            stats = await study_stats(
                session, load_protocol(DEFAULT_STUDY_PATH), "all", now=utcnow()
            )
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)
    from_answers = [s for s in statements if " answer " in s.replace("\n", " ") + " "]
    assert len(from_answers) == 1, from_answers
    [confidence] = [s for s in stats.scales if s.key == "confidence"]
    assert any(spread.median is not None for _, spread in confidence.months)


async def test_both_ways_of_counting_the_scales_agree(database) -> None:
    """PostgreSQL counts each person's answers first and SQLite counts in one aggregate
    (each the faster on its database); on the same answers they give the same cells."""
    from bot.connector.stats import _month_starts
    from storage.queries import stats as q

    await seed(database)
    now = utcnow()
    starts = _month_starts(
        now - timedelta(days=70), now, load_protocol(DEFAULT_STUDY_PATH).groups[0].zone
    )
    keys = ["confidence", "valued", "part_of_team"]
    async with database.sessions() as session:
        one_pass = await q._scale_cells_one_pass(session, keys, range(1, 6), starts)
        per_person = await q._scale_cells_per_person(session, keys, range(1, 6), starts)
    order = lambda cells: sorted(cells, key=lambda c: (c.period, str(c.group), c.question))  # noqa: E731
    assert order(one_pass) == order(per_person)
    assert {c.people for c in one_pass} == {6, 2}, "north's six and south's two, each month"
