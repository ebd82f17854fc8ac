"""First contact with the command line: every failure is one plain sentence and a non-zero
exit, never a traceback (unless --debug) and never the token; check-config changes nothing on
disk, says Telegram is reachable only after a real getMe, and refuses a weak secret key."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import free_port
from tests.support import run_cli

#: A token of the right shape that the sandbox (like Telegram) answers 401 for.
REJECTED = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ012345"
SECRET_PART = REJECTED.split(":", 1)[1]
#: A line of the bot's own log (``companion run`` logs on stderr), as opposed to what it says.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
STRONG_KEY = "q9Zr_Ft2Lw8-Xk4Pb7Hs1Mn6Vd3Jc0Yt5Ra"


def run_companion(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot ARGS`` with only the settings given (no .env, no inherited ones)."""
    return run_cli(*args, env=env, cwd=cwd)


async def run_in_thread(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The same, off the event loop, so that the sandbox on this loop can answer it."""
    return await asyncio.to_thread(run_companion, *args, cwd=cwd, **env)


def said(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the command said on stderr, without the lines of its log."""
    return [line for line in result.stderr.splitlines() if line and not LOG_LINE.match(line)]


def assert_one_sentence(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """A non-zero exit with exactly one sentence on stderr, holding ``words``, and no token."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    assert "Unclosed" not in output
    assert REJECTED not in output and SECRET_PART not in output
    lines = said(result)
    assert len(lines) == 1, output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- companion run ------------------------------------------------------------------------------


async def test_run_with_a_token_telegram_rejects(sandbox, database, database_url, tmp_path):
    result = await run_in_thread(
        "run",
        cwd=tmp_path,
        TELEGRAM_BOT_TOKEN=REJECTED,
        TELEGRAM_API_BASE_URL=sandbox.base_url,
        DATABASE_URL=database_url,
    )
    assert_one_sentence(result, "rejected the bot token", "@BotFather", "TELEGRAM_BOT_TOKEN")
    assert [r.method for r in sandbox.requests] == ["getMe"]  # asked, answered 401, stopped


async def test_run_with_no_network(database, database_url, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}/bot"
    result = await run_in_thread(
        "run",
        cwd=tmp_path,
        TELEGRAM_BOT_TOKEN=REJECTED,
        TELEGRAM_API_BASE_URL=closed,
        DATABASE_URL=database_url,
    )
    assert_one_sentence(result, f"Telegram cannot be reached at {closed}", "then try again")


@pytest.mark.parametrize(
    "how", [("--debug",), ("COMPANION_LOG_LEVEL", "DEBUG")], ids=["--debug", "log-level"]
)
async def test_debug_shows_the_traceback_but_never_the_token(
    how, sandbox, database, database_url, tmp_path
):
    options = list(how) if how[0] == "--debug" else []
    env = {how[0]: how[1]} if how[0] != "--debug" else {}
    result = await run_in_thread(
        *options,
        "run",
        cwd=tmp_path,
        TELEGRAM_BOT_TOKEN=REJECTED,
        TELEGRAM_API_BASE_URL=sandbox.base_url,
        DATABASE_URL=database_url,
        **env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "InvalidToken" in result.stderr
    assert REJECTED not in output and SECRET_PART not in output
    assert "rejected the bot token" in result.stderr.splitlines()[-1]


# -- other commands ----------------------------------------------------------------------------


async def test_invite_create_with_a_wrong_token(sandbox, database, database_url, tmp_path):
    result = await run_in_thread(
        "invite",
        "create",
        "--role",
        "partner",
        cwd=tmp_path,
        TELEGRAM_BOT_TOKEN=REJECTED,
        TELEGRAM_API_BASE_URL=sandbox.base_url,
        DATABASE_URL=database_url,
    )
    assert_one_sentence(result, "rejected the bot token", "No invites were made")


@pytest.mark.parametrize(
    ("command", "url", "words"),
    [
        (("db", "status"), "nonsense", "DATABASE_URL is not a database address this bot can use"),
        (("run",), "mysql://someone@localhost/study", "DATABASE_URL is not a database address"),
        (("db", "upgrade"), "postgresql+asyncpg://nobody:hunter2@127.0.0.1:{port}/none", "cannot"),
    ],
    ids=["unparsable", "unsupported", "unreachable"],
)
def test_a_bad_database_url(command, url, words, tmp_path):
    result = run_companion(
        *command,
        cwd=tmp_path,
        DATABASE_URL=url.format(port=free_port()),
        TELEGRAM_BOT_TOKEN=REJECTED,
        TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{free_port()}/bot",
    )
    assert_one_sentence(result, words)
    assert "hunter2" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        (("run",), "binary"),
        (("meeting", "list"), "folder"),
        (("preview",), "binary"),
        (("check-config",), "binary"),
    ],
    ids=["run", "meeting list", "preview", "check-config"],
)
def test_an_unreadable_study_protocol(command, kind, tmp_path):
    study = tmp_path / "study.yaml"
    if kind == "binary":
        study.write_bytes(b"\xff\xfe\x00 not text")
    else:
        study.mkdir()
    result = run_companion(
        *command,
        cwd=tmp_path,
        COMPANION_STUDY=str(study),
        TELEGRAM_BOT_TOKEN=REJECTED,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/c.db",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert f"{study}: the study protocol" in output


def test_an_unexpected_error_is_one_sentence_with_the_way_to_see_more(monkeypatch, tmp_path):
    from bot.tools import cli
    from storage import migrate

    def broken(_url: str) -> None:
        raise ValueError(f"could not do it with {REJECTED}")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(migrate, "upgrade_sync", broken)
    result = CliRunner().invoke(cli.app, ["db", "upgrade"], env={"TELEGRAM_BOT_TOKEN": REJECTED})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "The command stopped on an unexpected error (ValueError: could not do it with "
        "[redacted]). Run it again as `companion --debug ...` to see where, and tell whoever "
        "looks after the bot."
    ]


# -- companion check-config --------------------------------------------------------------------


def test_check_config_changes_nothing_on_disk(tmp_path):
    result = run_companion("check-config", cwd=tmp_path)
    assert result.returncode == 1  # no token
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert "data/companion.db is not created yet; `companion run` creates it" in result.stdout
    assert "behind" not in result.stdout


def test_check_config_reads_an_existing_sqlite_database_without_writing(database_url, tmp_path):
    from storage.db import sqlite_path

    path = sqlite_path(database_url)
    if path is None:
        pytest.skip("an SQLite file only")
    before = {p.name: p.stat().st_mtime_ns for p in path.parent.iterdir()}
    result = run_companion("check-config", cwd=tmp_path, DATABASE_URL=database_url)
    assert "can be reached and is up to date" in result.stdout
    assert {p.name: p.stat().st_mtime_ns for p in path.parent.iterdir()} == before


async def test_check_config_says_reachable_only_after_get_me(sandbox, tmp_path):
    result = await run_in_thread(
        "check-config",
        cwd=tmp_path,
        TELEGRAM_BOT_TOKEN=sandbox.token,
        TELEGRAM_API_BASE_URL=sandbox.base_url,
        COMPANION_SECRET_KEY=STRONG_KEY,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"Telegram answers at {sandbox.base_url}, and the token belongs to "
        f"@{sandbox.bot_username}." in result.stdout
    )
    assert [r.method for r in sandbox.requests] == ["getMe"]
    assert sandbox.token not in result.stdout + result.stderr
    assert "The configuration looks good" in result.stdout


async def test_check_config_says_when_the_token_is_rejected_or_telegram_unreachable(
    sandbox, tmp_path
):
    rejected = await run_in_thread(
        "check-config",
        cwd=tmp_path,
        TELEGRAM_BOT_TOKEN=REJECTED,
        TELEGRAM_API_BASE_URL=sandbox.base_url,
        COMPANION_SECRET_KEY=STRONG_KEY,
    )
    closed = f"http://127.0.0.1:{free_port()}/bot"
    offline = await run_in_thread(
        "check-config",
        cwd=tmp_path,
        TELEGRAM_BOT_TOKEN=REJECTED,
        TELEGRAM_API_BASE_URL=closed,
        COMPANION_SECRET_KEY=STRONG_KEY,
    )
    for result in (rejected, offline):
        assert result.returncode == 1
        assert "Telegram answers" not in result.stdout
        assert REJECTED not in result.stdout + result.stderr
        assert SECRET_PART not in result.stdout + result.stderr
        assert "1 problem found" in result.stdout
    assert "problem  Telegram (" in rejected.stdout and "rejected the bot token" in rejected.stdout
    assert f"problem  Telegram cannot be reached at {closed}" in offline.stdout


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("tooshort-1", "it is shorter than 32 characters"),
        ("correct horse battery staple and more words", "it is made of words"),
        ("correcthorsebatterystaple20262026", "it is made of words"),
    ],
)
def test_check_config_refuses_a_weak_secret_key_with_the_command_to_make_one(
    key, why, monkeypatch, tmp_path
):
    from bot.tools import cli

    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "COMPANION_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.app, ["check-config"], env={"COMPANION_SECRET_KEY": key})
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if "COMPANION_SECRET_KEY" in x)
    assert line.startswith("problem  COMPANION_SECRET_KEY is too weak: ")
    assert why in line
    assert 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"' in line
    assert key not in result.output
