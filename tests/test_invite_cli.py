"""`companion invite create`: links from getMe, JSON, QR PNGs, hash-only storage, clear errors;
and a connector invite that makes its user staff."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from storage.clock import utcnow
from storage.models import AuditEvent, Base, Invite, PartnerProfile, Person

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def run_cli(*args: str, sandbox, database_url: str, cwd: Path, **env: str):
    """Run ``python -m bot ...`` in a thread (the sandbox answers getMe on this event loop)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "COMPANION_"))}
    clean.pop("DATABASE_URL", None)
    clean["PYTHONPATH"] = str(ROOT)
    values = {
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.base_url,
        "DATABASE_URL": database_url,
        **env,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", *args],
        env={**clean, **values},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def all_rows_text(database) -> str:
    """Every value in every table, as one string (to prove a code is stored nowhere)."""
    parts = []
    async with database.sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(text(f"SELECT * FROM {table.name}"))).all()
            parts.extend(repr(tuple(row)) for row in rows)
    return "\n".join(parts)


async def test_json_and_qr_codes_with_only_hashes_stored(
    sandbox, database, database_url, tmp_path
):
    qr_dir = tmp_path / "handouts"
    result = await run_cli(
        "invite", "create", "--role", "partner", "--group", "north", "--count", "3",
        "--json", "--qr", str(qr_dir),
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    invites = json.loads(result.stdout)
    assert len(invites) == 3
    codes = [i["code"] for i in invites]
    assert len(set(codes)) == 3
    for invite in invites:
        assert set(invite) >= {"code", "link", "role", "group", "expires_at"}
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,64}", invite["code"])
        assert len(invite["code"]) * 6 >= 128, "at least 128 random bits"
        assert invite["link"] == f"https://t.me/companion_sandbox_bot?start={invite['code']}"
        assert (invite["role"], invite["group"]) == ("partner", "north")
    pngs = sorted(qr_dir.glob("*.png"))
    assert len(pngs) == 3
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in pngs)
    assert all(p.stat().st_size > 200 for p in pngs)
    assert all(code not in p.name for p in pngs for code in codes)

    async with database.sessions() as session:
        stored = (await session.execute(select(Invite))).scalars().all()
        audit = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "invite.created"))
        ).scalar_one()
    assert sorted(i.code_hash for i in stored) == sorted(
        hashlib.sha256(c.encode()).hexdigest() for c in codes
    )
    assert all(i.used_at is None and i.group_key == "north" for i in stored)
    expires = stored[0].expires_at - stored[0].created_at
    assert expires == timedelta(days=14), "14 days by default"
    assert audit.detail["count"] == 3 and audit.detail["role"] == "partner"
    everything = await all_rows_text(database)
    assert all(code not in everything for code in codes), "only the hash is stored"


async def test_text_output_and_longer_expiry(sandbox, database, database_url, tmp_path):
    result = await run_cli(
        "invite", "create", "--role", "researcher", "--expires-days", "30",
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "https://t.me/companion_sandbox_bot?start=" in result.stdout
    assert "works once" in result.stdout
    async with database.sessions() as session:
        invite = (await session.execute(select(Invite))).scalar_one()
    assert invite.role == "researcher"
    assert abs(invite.expires_at - (utcnow() + timedelta(days=30))) < timedelta(minutes=5)


async def test_bad_options_are_explained_and_nothing_is_stored(
    sandbox, database, database_url, tmp_path
):
    unknown = await run_cli(
        "invite", "create", "--role", "partner", "--group", "narnia",
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "no group called narnia" in unknown.stderr
    assert "north, south, online" in unknown.stderr
    role = await run_cli(
        "invite", "create", "--role", "admin",
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert role.returncode == 2 and "partner, connector, researcher" in role.stderr
    expiry = await run_cli(
        "invite", "create", "--role", "partner", "--expires-days", "31",
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert expiry.returncode == 2 and "--expires-days must be between 1 and 30" in expiry.stderr
    offline = await run_cli(
        "invite", "create", "--role", "partner",
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
        TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot",
    )  # fmt: skip
    assert offline.returncode == 1 and "No invites were made" in offline.stderr
    assert sandbox.token not in offline.stderr + offline.stdout
    async with database.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Invite))).scalar_one() == 0


async def test_a_connector_invite_makes_a_connector(
    companion, sandbox, database, database_url, tmp_path
):
    result = await run_cli(
        "invite", "create", "--role", "connector", "--json",
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [invite] = json.loads(result.stdout)
    jo = sandbox.user(7301, "Jo")
    jo.send_command("start", invite["code"])
    [welcome] = await sandbox.wait_for_messages(7301, 1)
    assert "part of the team" in welcome["text"] and "/help" in welcome["text"]
    async with database.sessions() as session:
        person = (await session.execute(select(Person))).scalar_one()
        profiles = (await session.execute(select(PartnerProfile))).scalars().all()
        granted = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "role.granted"))
        ).scalar_one()
        stored = (await session.execute(select(Invite))).scalar_one()
    assert person.role == "connector" and profiles == []
    assert granted.detail["source"] == "invite" and granted.detail["role"] == "connector"
    assert stored.used_by_person_id == person.id and stored.used_at is not None
    jo.send_command("help")
    messages = await sandbox.wait_for_messages(7301, 2)
    assert messages[-1]["text"].startswith("Here is what you can do")
