"""Helpers for benchmarks: a sandbox Telegram in its own process, driven over its control API.

The sandbox runs in a separate process so that the bot being measured has its own core.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RemoteSandbox:
    """A sandbox process and a client for its control API."""

    url: str
    token: str
    client: httpx.AsyncClient

    @property
    def base_url(self) -> str:
        """Bot API base URL (the token is appended by python-telegram-bot)."""
        return f"{self.url}/bot"

    async def state(self) -> dict:
        """The sandbox's counters."""
        response = await self.client.get(f"{self.url}/control/state")
        response.raise_for_status()
        return response.json()

    async def send_texts(self, user_ids: range, text: str) -> None:
        """Each user sends one text message (concurrently, a few at a time)."""
        semaphore = asyncio.Semaphore(16)

        async def one(user_id: int) -> None:
            async with semaphore:
                r = await self.client.post(
                    f"{self.url}/control/users/{user_id}/text",
                    json={"text": text, "first_name": f"User{user_id}"},
                )
                r.raise_for_status()

        await asyncio.gather(*(one(u) for u in user_ids))

    async def last_buttons(self, user_id: int) -> tuple[int, str]:
        """The newest bot message in ``user_id``'s chat that has buttons, and its first one."""
        r = await self.client.get(f"{self.url}/control/chats/{user_id}/messages")
        r.raise_for_status()
        for message in reversed(r.json()):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            if rows and rows[0]:
                return int(message["message_id"]), str(rows[0][0]["callback_data"])
        raise LookupError(f"no message with buttons in chat {user_id}")

    async def press_first_buttons(self, user_ids: range) -> None:
        """Each user presses the first button under the newest bot message that has any."""
        semaphore = asyncio.Semaphore(16)

        async def one(user_id: int) -> None:
            async with semaphore:
                message_id, data = await self.last_buttons(user_id)
                r = await self.client.post(
                    f"{self.url}/control/users/{user_id}/press",
                    json={"message_id": message_id, "data": data},
                )
                r.raise_for_status()

        await asyncio.gather(*(one(u) for u in user_ids))

    async def answered(self, method: str, at_least: int = 0, wait: float = 0.0) -> int:
        """How many calls of ``method`` the sandbox has answered with success.

        With ``at_least`` and ``wait`` the sandbox holds the answer until that many were made
        (or ``wait`` seconds passed), so the process being measured does not spend its own CPU
        on polling.
        """
        r = await self.client.get(
            f"{self.url}/control/answered",
            params={"method": method, "at_least": at_least, "wait": wait},
        )
        r.raise_for_status()
        return int(r.json()["count"])

    async def wait_for(self, method: str, target: int, timeout: float = 300.0) -> None:
        """Wait until the sandbox has answered ``target`` calls of ``method`` in total."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.answered(method, target, wait=min(20.0, deadline - loop.time())) < target:
            if loop.time() >= deadline:
                raise TimeoutError(f"fewer than {target} {method} calls in {timeout:.0f} s")

    async def sent_messages(self) -> int:
        """How many sendMessage calls the sandbox has answered with success."""
        return await self.answered("sendMessage")

    async def wait_for_sent(self, target: int, timeout: float = 300.0) -> None:
        """Wait until the sandbox has answered ``target`` sendMessage calls in total."""
        await self.wait_for("sendMessage", target, timeout)


@asynccontextmanager
async def remote_sandbox(*extra_args: str) -> AsyncIterator[RemoteSandbox]:
    """Start ``python -m bot.sandbox`` on a free port and stop it afterwards."""
    port = free_port()
    token = "123456:BENCH-token"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sandbox",
        "--port",
        str(port),
        "--token",
        token,
        *extra_args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), timeout=30)
        async with httpx.AsyncClient(timeout=30) as client:
            yield RemoteSandbox(url=f"http://127.0.0.1:{port}", token=token, client=client)
    finally:
        process.terminate()
        await process.wait()
