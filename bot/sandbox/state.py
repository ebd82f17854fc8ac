"""In-memory state of the sandbox Telegram: chats, messages, files, updates.

Nothing here touches the network. The server (:mod:`bot.sandbox.server`) mutates this state
while answering Bot API calls, and the fake users (:mod:`bot.sandbox.users`) mutate it when
they "send" something. All of it lives in one asyncio event loop; no locking is needed.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]


def unix_now() -> int:
    """Current time as Telegram's ``date``: integer unix seconds."""
    return int(time.time())


@dataclass
class UploadedFile:
    """A file part of a multipart request (an ``InputFile`` upload)."""

    filename: str
    content_type: str
    data: bytes

    def __repr__(self) -> str:
        """Short form, without the bytes."""
        return f"UploadedFile({self.filename!r}, {self.content_type!r}, {len(self.data)} bytes)"


@dataclass
class StoredFile:
    """A file known to the sandbox: downloadable through ``getFile`` + ``/file/bot<token>/``."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    mime_type: str | None = None
    file_name: str | None = None

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


@dataclass
class RecordedRequest:
    """One Bot API call as the sandbox saw it."""

    method: str
    params: JsonDict
    time: float  # unix time (float seconds) of arrival
    status: int = 200  # HTTP status returned (0 = connection dropped without an answer)
    description: str | None = None  # error description when status != 200

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return self.status == 200


@dataclass
class ChatInfo:
    """A chat the sandbox knows: a private chat with a user, or a group."""

    id: int
    type: str  # "private" | "group" | "supergroup"
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    language_code: str = "en"
    blocked: bool = False  # private chats: the user blocked the bot
    left: bool = False  # groups: the bot left (leaveChat)
    next_message_id: int = 1
    messages: dict[int, JsonDict] = field(default_factory=dict)
    reply_keyboard: JsonDict | None = None
    version: int = 0

    def chat_object(self) -> JsonDict:
        """The Bot API ``Chat`` object."""
        chat: JsonDict = {"id": self.id, "type": self.type}
        if self.type == "private":
            chat["first_name"] = self.first_name or ""
            if self.last_name:
                chat["last_name"] = self.last_name
            if self.username:
                chat["username"] = self.username
        else:
            chat["title"] = self.title or ""
        return chat

    def user_object(self) -> JsonDict:
        """The Bot API ``User`` object of the other party of a private chat."""
        user: JsonDict = {"id": self.id, "is_bot": False, "first_name": self.first_name or ""}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def allocate_message_id(self) -> int:
        """Next message id in this chat (ids start at 1 and only grow)."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def touch(self) -> None:
        """Mark the chat as changed (for pollers of the control API)."""
        self.version += 1


class Notifier:
    """A level-triggered "something changed" signal that many coroutines can wait on."""

    def __init__(self) -> None:
        """Create the notifier (safe outside a running loop)."""
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake every current waiter."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], seconds: float) -> bool:
        """Wait until ``predicate()`` is true or ``seconds`` pass; return the predicate."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, seconds)
        while True:
            event = self._event
            if predicate():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return predicate()


@dataclass
class CallbackInfo:
    """A callback query the sandbox created, to validate ``answerCallbackQuery``."""

    created: float  # time.monotonic()
    answered: bool = False


class FileStore:
    """Files by ``file_id``, with Telegram-like ids and paths."""

    def __init__(self) -> None:
        """Create an empty store."""
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = 0

    def add(
        self,
        data: bytes,
        folder: str,
        extension: str,
        *,
        mime_type: str | None = None,
        file_name: str | None = None,
    ) -> StoredFile:
        """Store ``data`` and return its record (``folder`` like ``documents``, ``voice``)."""
        self._counter += 1
        token = secrets.token_urlsafe(24)
        stored = StoredFile(
            file_id=f"SBX{self._counter:04d}{token}",
            file_unique_id=f"U{self._counter:04d}{token[:8]}",
            data=data,
            file_path=f"{folder}/file_{self._counter}{extension}",
            mime_type=mime_type,
            file_name=file_name,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """Look a file up by ``file_id``."""
        return self._by_id.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        """Look a file up by ``file_path`` (the download path)."""
        return self._by_path.get(file_path)

    def __len__(self) -> int:
        """Number of stored files."""
        return len(self._by_id)
