"""``python -m bot.sandbox`` runs the server standalone and prints its base_url."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_standalone_server() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sandbox",
        "--port",
        "0",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode().strip()
        assert line.startswith("http://127.0.0.1:") and line.endswith("/bot")
        async with httpx.AsyncClient() as client:
            resp = await client.get(f"{line}123456:SANDBOX-token/getMe")
            assert resp.json()["result"]["is_bot"] is True
            state = await client.get(line.removesuffix("/bot") + "/control/state")
            assert state.json()["requests"] == 1
    finally:
        proc.terminate()
        await proc.wait()
