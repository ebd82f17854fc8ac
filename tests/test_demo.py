"""``companion demo`` without a browser: the made-up study it seeds, its clock and people
routes, the page's words coming from prompts/, and a clean stop on Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.tools.demo import CONNECTOR_ID, HISTORY_WEEKS, Demo, demo_running
from prompts import Prompts
from storage.clock import CLOCK
from storage.models import (
    Answer,
    Checkin,
    CheckinStatus,
    Invite,
    Meeting,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
    PartnerProfile,
    Person,
    Role,
    TelegramIdentity,
)
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "bot" / "sandbox" / "static"


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    async with demo_running(port=0, folder=tmp_path) as running:
        yield running


async def get(demo: Demo, path: str) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(demo.sandbox.url + path) as response,
    ):
        return response.status, await response.json()


async def post(demo: Demo, path: str, body: object = None) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(demo.sandbox.url + path, json=body) as response,
    ):
        return response.status, await response.json()


async def test_the_demo_seeds_a_small_study(demo: Demo) -> None:
    db = demo.bot.db
    async with db.sessions() as session:
        people = (await session.execute(select(Person.role, Person.id))).all()
        partners = [pid for role, pid in people if role == Role.PARTNER]
        assert sorted(role for role, _ in people) == sorted(
            [Role.CONNECTOR, Role.PARTNER, Role.PARTNER, Role.PARTNER]
        )
        connector_tg = (
            await session.execute(
                select(TelegramIdentity.telegram_user_id)
                .join(Person, Person.id == TelegramIdentity.person_id)
                .where(Person.role == Role.CONNECTOR)
            )
        ).scalar_one()
        assert connector_tg == CONNECTOR_ID

        profiles = (await session.execute(select(PartnerProfile))).scalars().all()
        assert len({p.group_key for p in profiles}) == 3  # three different groups
        assert all(p.onboarded_at is not None and p.onboarding_step == "done" for p in profiles)
        assert all(p.checkin_weekday is not None and p.checkin_time for p in profiles)

        for person_id in partners:
            checkins = (
                (await session.execute(select(Checkin).where(Checkin.person_id == person_id)))
                .scalars()
                .all()
            )
            assert len(checkins) == HISTORY_WEEKS
            assert all(c.status == CheckinStatus.COMPLETED for c in checkins)
            now = CLOCK.now()
            assert all(c.completed_at is not None and c.completed_at < now for c in checkins)
            confidence = (
                (
                    await session.execute(
                        select(Answer.value_number)
                        .where(Answer.person_id == person_id, Answer.question_key == "confidence")
                        .order_by(Answer.answered_at)
                    )
                )
                .scalars()
                .all()
            )
            assert len(confidence) == HISTORY_WEEKS and len(set(confidence)) > 1  # a chart
        texts = (
            (await session.execute(select(Answer).where(Answer.value_text.is_not(None))))
            .scalars()
            .all()
        )
        assert texts and all(a.text_encrypted for a in texts)  # encrypted at rest, as for real

        meeting = (await session.execute(select(Meeting))).scalar_one()
        ahead = meeting.starts_at - CLOCK.now()
        assert timedelta(days=2) < ahead < timedelta(days=4)
        unused = await session.execute(
            select(func.count()).select_from(Invite).where(Invite.used_at.is_(None))
        )
        assert unused.scalar_one() == 1

    status, page = await get(demo, "/demo/page.json")
    assert status == 200
    assert isinstance(page, dict)
    kinds = [p["kind"] for p in page["personas"]]
    assert kinds == ["connector", "partner", "partner", "partner", "newcomer"]
    newcomer = page["personas"][-1]
    assert newcomer["invite_link"].endswith(f"?start={newcomer['invite_code']}")
    assert page["strings"]["title"] == Prompts().label("demo.page.title")
    for persona in page["personas"]:
        assert persona["user_id"] in demo.sandbox.chats  # each has a sandbox chat to read


async def test_a_new_person_from_the_invite_link_is_enrolled(demo: Demo) -> None:
    newcomer = next(p for p in demo.personas if p.kind == "newcomer")
    user = demo.sandbox.user(newcomer.user_id)
    user.send_command("start", newcomer.invite_code)
    welcome, _safety = await demo.sandbox.wait_for_messages(newcomer.user_id, 2, timeout=10)
    assert newcomer.name in welcome["text"]

    status, added = await post(demo, "/demo/personas")
    assert status == 200 and isinstance(added, dict)
    assert added["kind"] == "newcomer" and added["invite_code"] != newcomer.invite_code
    assert added["user_id"] in demo.sandbox.chats
    status, people = await get(demo, "/demo/personas")
    assert isinstance(people, list) and len(people) == 6
    row = next(p for p in people if p["user_id"] == newcomer.user_id)
    assert row["bot_messages"] >= 2 and row["version"] > 0


async def test_the_clock_moves_forward_and_the_sandbox_dates_follow(demo: Demo) -> None:
    status, clock = await get(demo, "/demo/clock")
    assert status == 200 and isinstance(clock, dict)
    assert clock["offset_seconds"] == 0

    before = CLOCK.now()
    status, moved = await post(demo, "/demo/clock", {"step": "hour"})
    assert status == 200 and isinstance(moved, dict) and moved["moved"] is True
    assert timedelta(minutes=59) < CLOCK.now() - before < timedelta(minutes=61)

    # a message sent now carries the demo's date, as Telegram would date it
    update = demo.sandbox.user(2001).send_text("hello")
    assert abs(update["message"]["date"] - CLOCK.now().timestamp()) < 5

    status, moved = await post(demo, "/demo/clock", {"step": "day"})
    assert status == 200
    assert timedelta(hours=24, minutes=59) < CLOCK.now() - before < timedelta(hours=25, minutes=1)

    status, error = await post(demo, "/demo/clock", {"step": "year"})
    assert status == 400 and isinstance(error, dict) and "step" in error["error"]


async def test_next_goes_to_the_earliest_planned_item(demo: Demo) -> None:
    db = demo.bot.db
    now = CLOCK.now()
    async with db.transaction() as session:
        earliest = (
            await session.execute(
                select(func.min(Occurrence.due_at)).where(
                    Occurrence.status == OccurrenceStatus.PLANNED, Occurrence.due_at > now
                )
            )
        ).scalar_one()
        person_id = (
            (await session.execute(select(Person.id).where(Person.role == Role.PARTNER)))
            .scalars()
            .first()
        )
        assert person_id is not None
        due = min(earliest, now + timedelta(hours=5)) if earliest else now + timedelta(hours=5)
        due -= timedelta(minutes=1)
        session.add(
            Occurrence(
                key=f"test-demo-next:{person_id}",
                kind=OccurrenceKind.CHECKIN_NUDGE,
                person_id=person_id,
                due_at=due,
                window_ends_at=due + timedelta(hours=2),
            )
        )
    status, clock = await get(demo, "/demo/clock")
    assert isinstance(clock, dict) and clock["next"] is not None
    assert clock["next"]["due_at"] == due.isoformat()
    assert clock["next"]["name"] in clock["next"]["what"]

    status, moved = await post(demo, "/demo/clock", {"step": "next"})
    assert status == 200 and isinstance(moved, dict) and moved["moved"] is True
    assert due <= CLOCK.now() < due + timedelta(minutes=1)
    assert moved["next"] is None or moved["next"]["due_at"] > due.isoformat()


def test_the_page_has_every_word_from_prompts() -> None:
    """No English in the page's files: every key they use is in labels/demo.yaml."""
    strings = Prompts().labels("demo.page")
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    script = (STATIC / "demo.js").read_text(encoding="utf-8")
    used = set(re.findall(r'data-t(?:-placeholder|-label)?="([a-z_]+)"', html))
    used |= set(re.findall(r'\bt\(\s*"([a-z_]+)"', script))
    assert len(used) > 30
    assert sorted(used - set(strings)) == []
    body = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    texts = [t.strip() for t in re.findall(r">([^<>]+)<", body) if t.strip()]
    assert texts == ["Involvement Companion", "Involvement Companion"]  # title and h1 fallback


async def test_the_page_and_its_files_are_served(demo: Demo) -> None:
    async with aiohttp.ClientSession() as http:
        for path, kind in (
            ("/", "text/html"),
            ("/static/demo.js", "javascript"),
            ("/static/demo.css", "text/css"),
        ):
            async with http.get(demo.sandbox.url + path) as response:
                assert response.status == 200, path
                assert kind in response.headers["Content-Type"], path


def test_companion_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "demo", "--no-browser", "--port", str(port)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            address = _wait_for_address(process)
            assert address == f"http://127.0.0.1:{port}/"
            import urllib.request

            with urllib.request.urlopen(address + "demo/page.json", timeout=10) as response:
                assert json.load(response)["personas"]
            process.send_signal(sig)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, err
        assert "Traceback" not in err, err
        assert Prompts().text("cli/demo_stopped") in out
        assert not list(tmp_path.glob("data*")), "the demo wrote into the working folder"


def _wait_for_address(process: subprocess.Popen[str], within: float = 60.0) -> str:
    """Read the demo's output (on a thread, so a silent process cannot hang the test) until it
    prints the page's address; the rest of its output stays readable by ``communicate``."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stream = process.stdout

    def read() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)
            if "127.0.0.1" in line:
                return

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + within
    seen = []
    while time.monotonic() < deadline and process.poll() is None:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if found:
            return found.group(0)
    raise AssertionError(f"no address printed; output: {''.join(seen)}")


async def test_pictures_files_and_button_answers_reach_the_page(demo: Demo) -> None:
    """The control routes the page uses for pictures, downloads and the bot's toasts."""
    amira = demo.sandbox.user(2001)
    amira.send_command("journey")
    photo = (await sent_with(demo, 2001, "photo"))["photo"][-1]
    amira.send_command("mydata")
    document = (await sent_with(demo, 2001, "document"))["document"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{demo.sandbox.url}/control/files/{photo['file_id']}") as response:
            assert response.status == 200
            assert (await response.read()).startswith(b"\x89PNG")
        url = f"{demo.sandbox.url}/control/files/{document['file_id']}?download=1"
        async with http.get(url) as response:
            assert response.status == 200
            assert document["file_name"] in response.headers["Content-Disposition"]
            assert (await response.read()).startswith(b"PK")  # a zip
        async with http.get(f"{demo.sandbox.url}/control/files/nope") as response:
            assert response.status == 404

    newcomer = next(p for p in demo.personas if p.kind == "newcomer")
    user = demo.sandbox.user(newcomer.user_id)
    user.send_command("start", newcomer.invite_code)
    _welcome, safety = await demo.sandbox.wait_for_messages(newcomer.user_id, 2, timeout=10)
    [[button]] = safety["reply_markup"]["inline_keyboard"]
    query_id = user.press(safety, button["callback_data"])["callback_query"]["id"]
    await demo.sandbox.wait_for_messages(newcomer.user_id, 3, timeout=10)
    status, answer = await get(demo, f"/control/callbacks/{query_id}")
    assert status == 200 and isinstance(answer, dict) and answer["answered"] is True
    assert answer["text"] == Prompts().label("onboarding.saved")


async def sent_with(demo: Demo, chat_id: int, kind: str, within: float = 20.0) -> dict:
    """The first message the bot sent to ``chat_id`` that has ``kind`` (photo, document)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        found = [m for m in demo.sandbox.sent_to(chat_id) if kind in m]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind} sent to {chat_id}")


async def test_more_partners_give_stats_groups_big_enough_to_show(tmp_path: Path) -> None:
    """``--more-partners 15``: six partners a group, so /stats shows figures (the README's
    screenshot, bench/screenshots.py); the page still plays the same three partners."""
    async with demo_running(port=0, folder=tmp_path, others=15) as demo:
        assert [p.name for p in demo.personas if p.kind == "partner"] == ["Amira", "Ben", "Chloe"]
        async with demo.bot.db.sessions() as session:
            groups = (
                await session.execute(
                    select(PartnerProfile.group_key, func.count()).group_by(
                        PartnerProfile.group_key
                    )
                )
            ).all()
            missed = await session.scalar(
                select(func.count())
                .select_from(Checkin)
                .where(Checkin.status == CheckinStatus.EXPIRED)
            )
        assert sorted(n for _, n in groups) == [6, 6, 6]
        assert missed, "the others miss a check-in now and then, so the share is not flat"
        priya = demo.sandbox.user(CONNECTOR_ID)
        priya.send_command("stats")
        [choose] = await demo.sandbox.wait_for_messages(CONNECTOR_ID, 1, timeout=20)
        [all_data] = [
            b["callback_data"]
            for row in choose["reply_markup"]["inline_keyboard"]
            for b in row
            if b["text"] == Prompts().label("stats.periods.all")
        ]
        priya.press(choose, all_data)
        photo = await sent_with(demo, CONNECTOR_ID, "photo", within=60)
        assert "Overall: " in photo["caption"] and "%" in photo["caption"]
