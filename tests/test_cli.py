"""The command line: check-config explains problems plainly, db upgrade works, run refuses
clearly when it cannot start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from storage.db import is_sqlite
from tests.support import run_cli


def companion(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=env, cwd=cwd, timeout=60)


def test_check_config_names_each_problem_and_fails(tmp_path: Path) -> None:
    bad_protocol = tmp_path / "study.yaml"
    bad_protocol.write_text("version: 1\nstudy:\n  name: Test\n  teem: typo\n")
    result = companion(
        "check-config",
        env={
            "DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
            "COMPANION_STUDY": str(bad_protocol),
        },
        cwd=tmp_path,
    )
    assert result.returncode == 1
    out = result.stdout
    assert "TELEGRAM_BOT_TOKEN is not set" in out
    assert "cannot be reached" in out
    assert f"{bad_protocol}:4: study.teem is not a setting the protocol knows" in out
    assert "problems found" in out


def test_a_bad_setting_is_explained(tmp_path: Path) -> None:
    result = companion("check-config", env={"COMPANION_GLOBAL_RATE": "fast"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "COMPANION_GLOBAL_RATE is not valid" in result.stderr


def test_run_without_a_token_says_so(tmp_path: Path) -> None:
    result = companion("run", env={}, cwd=tmp_path)
    assert result.returncode == 1
    assert "TELEGRAM_BOT_TOKEN is not set" in result.stderr


def test_db_upgrade_and_status(tmp_path: Path, database_url: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/up.db"
    assert companion("db", "status", env={"DATABASE_URL": url}, cwd=tmp_path).stdout.count(
        "at revision none"
    )
    result = companion("db", "upgrade", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 0 and "is now at revision" in result.stdout


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)
async def test_run_refuses_a_postgres_database_that_is_behind(tmp_path: Path) -> None:
    url = os.environ["TEST_DATABASE_URL"]
    assert not is_sqlite(url)
    import asyncpg

    await_conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await await_conn.execute("DROP DATABASE IF EXISTS companion_behind")
        await await_conn.execute("CREATE DATABASE companion_behind")
    finally:
        await await_conn.close()
    behind = "postgresql+asyncpg://postgres@127.0.0.1:5432/companion_behind"
    result = companion(
        "run", env={"TELEGRAM_BOT_TOKEN": "1:x" * 3, "DATABASE_URL": behind}, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "run `companion db upgrade` first" in result.stderr
