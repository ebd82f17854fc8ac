"""What end-to-end tests share: the bot running against the sandbox, waiting for it to
settle, and reading the buttons of a message."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.protocol import OfficeHours, StudyProtocol
from storage.clock import utcnow
from storage.models import (
    InboxStatus,
    InboxUpdate,
    Occurrence,
    OccurrenceKind,
    OccurrenceStatus,
)
from tests.conftest import make_settings

SECRET = "test-secret-key-for-free-text-and-pseudonyms"
ALWAYS_OPEN = OfficeHours(days=[0, 1, 2, 3, 4, 5, 6], start="00:00", end="23:59")


def always_open_protocol(hours: OfficeHours = ALWAYS_OPEN) -> StudyProtocol:
    """The default protocol with office hours all day, every day (or ``hours``).

    For end-to-end tests on today's wall clock: a partner's message must reach the connector
    the same way at 3 pm on a Tuesday and at 6 pm on a Friday (test_relay_e2e covers the
    out-of-hours note on a day the office is closed).
    """
    from bot.protocol import load_protocol
    from bot.settings import DEFAULT_STUDY_PATH

    return load_protocol(DEFAULT_STUDY_PATH).model_copy(update={"office_hours": hours})


@contextlib.asynccontextmanager
async def running_companion(
    sandbox: Any,
    database_url: str,
    data_dir: Path,
    protocol: StudyProtocol | None = None,
    **overrides: object,
) -> AsyncIterator[Any]:
    """The whole bot long-polling the sandbox, with a data folder and encryption on.

    The sandbox does not enforce flood limits in these tests, so the per-chat pace is lifted
    to keep them quick; the limits themselves are tested in test_outbox and test_flood.
    """
    from bot.runtime import Companion

    values: dict[str, object] = {
        "companion_data_dir": data_dir,
        "companion_secret_key": SECRET,
        "companion_chat_rate": 50.0,
        **overrides,
    }
    bot = Companion(make_settings(sandbox, database_url, **values), protocol=protocol)  # type: ignore[arg-type]
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def settle(companion: Any, sandbox: Any, *, within: float = 8.0) -> None:
    """Wait until every stored update is processed and every queued message is sent."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if sandbox.pending_updates == 0:
            async with companion.db.sessions() as session:
                pending = (
                    await session.execute(
                        select(func.count())
                        .select_from(InboxUpdate)
                        .where(InboxUpdate.status == InboxStatus.PENDING)
                    )
                ).scalar_one()
            if pending == 0:
                break
        await asyncio.sleep(0.05)
    await companion.worker.calls_done(timeout=within)
    await companion.sender.drain(timeout=within)


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(text, callback data) of every inline button under a message, row by row."""
    markup = message.get("reply_markup") or {}
    return [
        (b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row
    ]


def data_for(message: dict[str, Any], text: str) -> str:
    """The callback data of the first button whose label contains ``text`` (ticks ignored)."""
    for label, data in buttons(message):
        if label.removeprefix("\u2713 ") == text:
            return data
    for label, data in buttons(message):
        if text in label:
            return data
    raise AssertionError(f"no button {text!r} in {buttons(message)}")


async def count(database: Any, model: Any, *where: Any) -> int:
    """How many rows of ``model`` match ``where``."""
    async with database.sessions() as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)
        return int((await session.execute(query)).scalar_one())


async def start_companion_process(
    sandbox: Any, database_url: str, log_path: Path, **env: str
) -> asyncio.subprocess.Process:
    """``companion run`` as its own process against the sandbox (output appended to a log).

    ``env`` adds settings, e.g. ``COMPANION_GLOBAL_RATE="30"``. Its files (``/mydata`` zips,
    delivery receipts) go to ``data/`` beside the log unless ``env`` says otherwise.
    """
    import os
    import sys

    variables = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.base_url,
        "DATABASE_URL": database_url,
        "COMPANION_LOG_LEVEL": "INFO",
        "COMPANION_DATA_DIR": str(log_path.parent / "data"),
        **env,
    }
    log = open(log_path, "ab")  # noqa: SIM115 - closed when the process exits
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=variables,
        stdout=log,
        stderr=log,
        cwd=os.getcwd(),
    )


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate()`` until it holds; fail saying ``what`` did not happen in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def kill_after_each(
    start: Callable[[], Awaitable[asyncio.subprocess.Process]],
    progress: Callable[[], int],
    thresholds: Sequence[int],
    *,
    timeout: float,
    what: str,
) -> None:
    """Start the bot and SIGKILL it once ``progress()`` reaches each threshold in turn."""
    for threshold in thresholds:
        process = await start()
        try:
            await wait_until(lambda t=threshold: progress() >= t, timeout, f"{threshold} {what}")
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()


async def mark_reminded(database: Any, meeting_id: int, person_id: int) -> None:
    """What the due runner records when a meeting reminder went out to ``person_id``."""
    async with database.transaction() as session:
        session.add(
            Occurrence(
                key=f"test:remind:{meeting_id}:{person_id}",
                kind=OccurrenceKind.MEETING_REMINDER,
                person_id=person_id,
                meeting_id=meeting_id,
                due_at=utcnow() - timedelta(hours=1),
                window_ends_at=utcnow() + timedelta(days=5),
                status=OccurrenceStatus.DONE,
                done_at=utcnow() - timedelta(hours=1),
            )
        )


def weekly_only_protocol() -> StudyProtocol:
    """The default protocol without its monthly reflection.

    For end-to-end tests on today's calendar: they must not depend on where the 1st of the
    month falls (test_schedule covers monthly reflections on fixed dates).
    """
    from bot.protocol import load_protocol
    from bot.settings import DEFAULT_STUDY_PATH

    protocol = load_protocol(DEFAULT_STUDY_PATH)
    return protocol.model_copy(
        update={"checkins": [c for c in protocol.checkins if c.schedule != "monthly"]}
    )


def raw_message(update_id: int, user_id: int, name: str, text: str) -> dict[str, Any]:
    """A raw private-chat message update, as Telegram would send it (a command if ``text``
    starts with "/"), for tests that store a batch of updates at once."""
    command = text.split(maxsplit=1)[0] if text.startswith("/") else None
    entities = [{"type": "bot_command", "offset": 0, "length": len(command)}] if command else []
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": name},
            "from": {"id": user_id, "is_bot": False, "first_name": name},
            "text": text,
            **({"entities": entities} if entities else {}),
        },
    }


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """``python -m bot ARGS`` in ``cwd`` with only the settings in ``env`` (none inherited, no
    .env from elsewhere), as a person would run it; its output captured."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "COMPANION_"))}
    clean.pop("DATABASE_URL", None)
    clean["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
