"""One leader on PostgreSQL: two `companion run` replicas share one database and one sandbox.

Only the holder of the advisory lock polls and sends, so every message is answered exactly
once; when the leader is killed the standby takes over and answers the next ones, once each.
A leader that loses its lock connection stands down before anyone takes over. In webhook mode
a standby stores what Telegram delivers to it and the leader answers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from bot.runtime import Companion, WebhookOptions
from bot.schedule.leader import APPLICATION_NAME, Leadership
from storage.db import Database, is_sqlite
from storage.models import InboxStatus, InboxUpdate
from tests.conftest import TEST_DATABASE_URL, free_port, make_settings

PG_URL = TEST_DATABASE_URL if TEST_DATABASE_URL and not is_sqlite(TEST_DATABASE_URL) else None
RETRY = 1.0
FIRST_ID = 710_000
USERS = 6
HELP = "Here is what you can do"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PG_URL is None,
        reason="needs PostgreSQL: set TEST_DATABASE_URL=postgresql+asyncpg://...",
    ),
]


async def start_replica(
    sandbox: Any, database_url: str, port: int, log_path: Path
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.base_url,
        "DATABASE_URL": database_url,
        "COMPANION_CONNECTOR_IDS": ",".join(str(FIRST_ID + i) for i in range(2 * USERS)),
        "COMPANION_CHAT_RATE": "50",
        "COMPANION_LEADER_RETRY": str(RETRY),
        "COMPANION_LOG_LEVEL": "INFO",
    }
    log = open(log_path, "ab")  # noqa: SIM115 - the child keeps its own copy
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--health-port",
            str(port),
            env=env,
            stdout=log,
            stderr=log,
            cwd=os.getcwd(),
        )
    finally:
        log.close()


async def health(client: httpx.AsyncClient, port: int) -> dict[str, Any] | None:
    try:
        return dict((await client.get(f"http://127.0.0.1:{port}/healthz", timeout=2)).json())
    except httpx.HTTPError:
        return None


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Wait until ``check()`` holds; return how long that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        if loop.time() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)
    return loop.time() - started


def helps(sandbox: Any, user_id: int) -> int:
    return sum(m.get("text", "").startswith(HELP) for m in sandbox.sent_to(user_id))


async def all_done(database: Database, expected: int) -> bool:
    async with database.sessions() as session:
        done = await session.scalar(
            select(func.count())
            .select_from(InboxUpdate)
            .where(InboxUpdate.status == InboxStatus.DONE)
        )
    return done == expected


async def test_one_replica_leads_and_the_other_takes_over_when_it_is_killed(
    sandbox, database: Database, tmp_path: Path
) -> None:
    assert PG_URL is not None
    log_path = tmp_path / "replicas.log"
    ports = [free_port(), free_port()]
    processes = [await start_replica(sandbox, PG_URL, port, log_path) for port in ports]
    try:
        async with httpx.AsyncClient() as client:

            async def both_up() -> bool:
                answers = [await health(client, port) for port in ports]
                return all(a is not None for a in answers)

            await eventually(both_up, 30, "both replicas to answer /healthz")
            states = [await health(client, port) for port in ports]
            leaders = [i for i, state in enumerate(states) if state and state["leader"]]
            assert len(leaders) == 1, f"exactly one leader: {states}"
            assert all(state and state["status"] == "ok" for state in states), states
            leader, standby = leaders[0], 1 - leaders[0]

            first = range(FIRST_ID, FIRST_ID + USERS)
            for user_id in first:
                sandbox.user(user_id, f"User{user_id}").send_command("help")

            async def first_answered() -> bool:
                return all(helps(sandbox, u) >= 1 for u in first)

            await eventually(first_answered, 20, "the leader to answer everyone")
            await eventually(lambda: all_done(database, USERS), 10, "the inbox to settle")
            await asyncio.sleep(2 * RETRY)  # a second sender would have sent by now
            assert [helps(sandbox, u) for u in first] == [1] * USERS
            assert sandbox.count_status(409) == 0, "only one replica ever polled"

            processes[leader].send_signal(signal.SIGKILL)
            await processes[leader].wait()

            async def standby_leads() -> bool:
                state = await health(client, ports[standby])
                return bool(state and state["leader"])

            took = await eventually(standby_leads, 15, "the standby to take over")
            # One retry period to win the lock, then the takeover grace (two checks).
            assert took < RETRY + 2 * max(RETRY / 2, 1.0) + 3, f"took over after {took:.1f} s"

            second = range(FIRST_ID + USERS, FIRST_ID + 2 * USERS)
            for user_id in [*first, *second]:
                sandbox.user(user_id, f"User{user_id}").send_command("help")

            async def second_answered() -> bool:
                return all(helps(sandbox, u) >= 1 for u in second) and all(
                    helps(sandbox, u) >= 2 for u in first
                )

            await eventually(second_answered, 20, "the new leader to answer everyone")
            await eventually(lambda: all_done(database, 3 * USERS), 10, "the inbox to settle")
            await asyncio.sleep(RETRY)
            assert [helps(sandbox, u) for u in first] == [2] * USERS
            assert [helps(sandbox, u) for u in second] == [1] * USERS
            state = await health(client, ports[standby])
            assert state is not None and state["status"] == "ok"
    except BaseException:
        print(log_path.read_text(errors="replace")[-4000:])
        raise
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            await asyncio.wait_for(process.wait(), 20)
    assert processes[standby].returncode == 0, "a SIGTERM stops the new leader cleanly"


async def test_a_leader_that_loses_its_lock_connection_stands_down(database: Database) -> None:
    assert PG_URL is not None
    events: list[str] = []

    def recorder(name: str, event: str) -> Callable[[], Awaitable[None]]:
        async def record() -> None:
            events.append(f"{name} {event}")

        return record

    first = Leadership(PG_URL, retry_seconds=RETRY)
    second = Leadership(PG_URL, retry_seconds=RETRY)
    try:
        assert await first.try_lead()
        assert not await second.try_lead()
        first.watch(recorder("first", "elected"), recorder("first", "deposed"))
        second.watch(recorder("second", "elected"), recorder("second", "deposed"))
        await asyncio.sleep(2 * RETRY)
        assert first.is_leader and not second.is_leader and events == []

        async with database.transaction() as session:
            pid = await session.scalar(
                text(
                    "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND a.application_name = :name AND a.datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            )
            assert pid is not None
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        async def someone_leads_again() -> bool:
            return any(event.endswith("elected") for event in events)

        await eventually(someone_leads_again, 10 * RETRY, "a new leader")
        assert events[0] == "first deposed", "the old leader stood down before anyone took over"
        assert first.is_leader != second.is_leader, "exactly one leads"
    finally:
        await first.release()
        await second.release()


async def test_a_standby_takes_webhooks_into_the_inbox_and_the_leader_answers(
    sandbox, database: Database, tmp_path: Path
) -> None:
    assert PG_URL is not None
    replicas: list[Companion] = []
    ports = [free_port(), free_port()]
    try:
        for port in ports:
            replica = Companion(
                make_settings(  # type: ignore[arg-type]
                    sandbox,
                    PG_URL,
                    companion_data_dir=tmp_path / "data",
                    companion_leader_retry=RETRY,
                    companion_connector_ids=[FIRST_ID],
                )
            )
            replicas.append(replica)
            await replica.start(
                webhook=WebhookOptions(
                    url=f"http://127.0.0.1:{port}",
                    listen_host="127.0.0.1",
                    listen_port=port,
                    secret_token="webhook-secret-for-tests",
                )
            )
        leader, standby = replicas
        assert leader.leadership.is_leader and not standby.leadership.is_leader
        assert sandbox.webhook["url"] == f"http://127.0.0.1:{ports[1]}/telegram"
        async with httpx.AsyncClient() as client:
            state = await client.get(f"http://127.0.0.1:{ports[1]}/healthz")
        assert state.status_code == 200 and state.json()["leader"] is False

        sandbox.user(FIRST_ID, "Jo").send_command("help")
        [reply] = await sandbox.wait_for_messages(FIRST_ID, 1, timeout=15)
        assert reply["text"].startswith(HELP)
        await asyncio.sleep(RETRY)
        assert helps(sandbox, FIRST_ID) == 1
        assert standby.worker.processed == 0 and leader.worker.processed == 1
    finally:
        for replica in reversed(replicas):
            await replica.stop()
