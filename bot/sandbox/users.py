"""Fake Telegram users and groups that drive the bot through the sandbox.

Every action builds the real Bot API ``Update`` Telegram would deliver, queues it (for
``getUpdates`` or the webhook) and returns the update dict, so tests can assert on it.
"""

from __future__ import annotations

import base64
import copy
import secrets
from typing import TYPE_CHECKING

from bot.sandbox.html import detect_entities, utf16_len
from bot.sandbox.state import ChatInfo, JsonDict

if TYPE_CHECKING:
    from bot.sandbox.server import SandboxTelegram

#: A valid 1x1 PNG, used by :meth:`SandboxUser.send_photo`.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def synth_ogg(duration: int) -> bytes:
    """A small OGG-looking payload (starts with ``OggS``), about 1 KB per second."""
    header = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00"
    return header + secrets.token_bytes(max(1, duration) * 1000)


def _chat_instance(chat_id: int) -> str:
    return str((abs(chat_id) * 7_919_861 + 1_000_003) % 9_000_000_000_000_000_000)


class _Sender:
    """Shared message-building helpers for users and groups."""

    def __init__(self, sandbox: SandboxTelegram) -> None:
        self._sb = sandbox

    def _message(self, chat: ChatInfo, sender: JsonDict, content: JsonDict) -> JsonDict:
        message: JsonDict = {
            "message_id": chat.allocate_message_id(),
            "from": copy.deepcopy(sender),
            "chat": chat.chat_object(),
            "date": self._sb.unix_now(),
            **content,
        }
        self._sb._store_message(chat, message)
        return message

    def _update(self, kind: str, payload: JsonDict) -> JsonDict:
        update: JsonDict = {kind: copy.deepcopy(payload)}
        self._sb.push_update(update)
        return update

    @staticmethod
    def _text_content(text: str) -> JsonDict:
        content: JsonDict = {"text": text}
        entities = detect_entities(text)
        if entities:
            content["entities"] = entities
        return content

    @staticmethod
    def _command_content(command: str, payload: str | None) -> JsonDict:
        name = command.removeprefix("/")
        text = f"/{name}" + (f" {payload}" if payload else "")
        return {
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": utf16_len(f"/{name}")}],
        }


class SandboxUser(_Sender):
    """A person talking to the bot in their private chat (``chat.id == user id``)."""

    def __init__(self, sandbox: SandboxTelegram, chat: ChatInfo) -> None:
        """Wrap the private chat ``chat`` of this user (use :meth:`SandboxTelegram.user`)."""
        super().__init__(sandbox)
        self.chat = chat

    @property
    def id(self) -> int:
        """The Telegram user id (also the private chat id)."""
        return self.chat.id

    @property
    def user_object(self) -> JsonDict:
        """The Bot API ``User`` object of this person."""
        return self.chat.user_object()

    @property
    def messages(self) -> list[JsonDict]:
        """Messages the bot sent to this user (``sandbox.sent_to(self.id)``)."""
        return self._sb.sent_to(self.id)

    @property
    def blocked(self) -> bool:
        """Whether this user has blocked the bot."""
        return self.chat.blocked

    def _send(self, content: JsonDict, reply_to: int | None = None) -> JsonDict:
        if self.chat.blocked:
            self.unblock()  # like pressing "Restart" in the app
        if reply_to is not None:
            replied = self.chat.messages.get(reply_to)
            if replied is None:
                raise ValueError(f"chat {self.id} has no message {reply_to} to reply to")
            replied = copy.deepcopy(replied)
            replied.pop("reply_to_message", None)
            content = {**content, "reply_to_message": replied}
        message = self._message(self.chat, self.user_object, content)
        return self._update("message", message)

    def send_text(self, text: str, *, reply_to: int | None = None) -> JsonDict:
        """Send ``text`` (auto-detected entities like Telegram's), as a reply to the message
        ``reply_to`` if given; return the update."""
        return self._send(self._text_content(text), reply_to)

    def send_document(
        self, data: bytes = b"%PDF-1.4 sandbox", caption: str | None = None
    ) -> JsonDict:
        """Send a document (a small PDF-looking file); return the update."""
        stored = self._sb.files.add(data, "documents", ".pdf", mime_type="application/pdf")
        content: JsonDict = {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": "leaflet.pdf",
                "mime_type": "application/pdf",
                "file_size": stored.size,
            }
        }
        if caption:
            content["caption"] = caption
        return self._send(content)

    def send_command(self, command: str, payload: str | None = None) -> JsonDict:
        """Send ``/command [payload]`` with a ``bot_command`` entity; return the update."""
        return self._send(self._command_content(command, payload))

    def press(self, message: JsonDict | int, data: str) -> JsonDict:
        """Press an inline button with callback ``data`` under a bot message.

        The data is not checked against the keyboard (tests forge it on purpose). A message that
        no longer exists is delivered as an ``InaccessibleMessage`` (``date`` 0).
        """
        message_id = message if isinstance(message, int) else int(message["message_id"])
        stored = self.chat.messages.get(message_id)
        attached: JsonDict
        if stored is None:
            attached = {"chat": self.chat.chat_object(), "message_id": message_id, "date": 0}
        else:
            attached = copy.deepcopy(stored)
        query_id = str(secrets.randbelow(9 * 10**18) + 10**18)
        self._sb._register_callback(query_id)
        query: JsonDict = {
            "id": query_id,
            "from": self.user_object,
            "message": attached,
            "chat_instance": _chat_instance(self.chat.id),
            "data": data,
        }
        return self._update("callback_query", query)

    def send_voice(
        self, duration: int = 5, data: bytes | None = None, caption: str | None = None
    ) -> JsonDict:
        """Send a voice note (bytes downloadable through getFile); return the update."""
        content = self._voice_content(duration, data)
        if caption:
            content["caption"] = caption
        return self._send(content)

    def _voice_content(self, duration: int, data: bytes | None = None) -> JsonDict:
        payload = data if data is not None else synth_ogg(duration)
        stored = self._sb.files.add(payload, "voice", ".oga", mime_type="audio/ogg")
        return {
            "voice": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "duration": duration,
                "mime_type": "audio/ogg",
                "file_size": stored.size,
            }
        }

    def forward(
        self,
        text: str | None = None,
        *,
        voice: int | None = None,
        author: str = "Alex",
        author_id: int | None = None,
    ) -> JsonDict:
        """Forward someone else's message into this chat: ``text``, or a voice note ``voice``
        seconds long. Its ``forward_origin`` is a ``MessageOriginUser`` when ``author_id`` is
        given, else a ``MessageOriginHiddenUser`` (an author who hides their account, shown by
        name only); return the update."""
        content = (
            self._voice_content(voice) if voice is not None else self._text_content(text or "")
        )
        sent = self._sb.unix_now() - 3600
        if author_id is not None:
            user = {"id": author_id, "is_bot": False, "first_name": author}
            content["forward_origin"] = {"type": "user", "date": sent, "sender_user": user}
        else:
            content["forward_origin"] = {
                "type": "hidden_user",
                "date": sent,
                "sender_user_name": author,
            }
        return self._send(content)

    def send_sticker(self) -> JsonDict:
        """Send a sticker; return the update."""
        stored = self._sb.files.add(
            b"RIFF\x00\x00\x00\x00WEBPVP8 " + secrets.token_bytes(64),
            "stickers",
            ".webp",
            mime_type="image/webp",
        )
        content: JsonDict = {
            "sticker": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "\N{THUMBS UP SIGN}",
                "file_size": stored.size,
            }
        }
        return self._send(content)

    def send_photo(self, caption: str | None = None) -> JsonDict:
        """Send a (1x1 PNG) photo; return the update."""
        stored = self._sb.files.add(TINY_PNG, "photos", ".jpg", mime_type="image/png")
        content: JsonDict = {
            "photo": [
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": 1,
                    "height": 1,
                    "file_size": stored.size,
                }
            ]
        }
        if caption:
            content["caption"] = caption
        return self._send(content)

    def edit(self, message_id: int, text: str) -> JsonDict:
        """Edit one of this user's own text messages; return the ``edited_message`` update."""
        stored = self.chat.messages.get(message_id)
        if stored is None or stored.get("from", {}).get("id") != self.id:
            raise ValueError(f"user {self.id} has no message {message_id} to edit")
        stored.pop("entities", None)
        stored.update(self._text_content(text))
        stored["edit_date"] = self._sb.unix_now()
        self.chat.touch()
        self._sb._message_signal.notify()
        return self._update("edited_message", stored)

    def _member_update(self, old: str, new: str) -> JsonDict:
        bot = copy.deepcopy(self._sb.bot_user)
        new_member: JsonDict = {"status": new, "user": bot}
        if new == "kicked":
            new_member["until_date"] = 0
        old_member: JsonDict = {"status": old, "user": copy.deepcopy(bot)}
        if old == "kicked":
            old_member["until_date"] = 0
        payload: JsonDict = {
            "chat": self.chat.chat_object(),
            "from": self.user_object,
            "date": self._sb.unix_now(),
            "old_chat_member": old_member,
            "new_chat_member": new_member,
        }
        return self._update("my_chat_member", payload)

    def block(self) -> JsonDict:
        """Block the bot: sends now fail with 403; returns the ``my_chat_member`` update."""
        self.chat.blocked = True
        self.chat.touch()
        return self._member_update("member", "kicked")

    def unblock(self) -> JsonDict:
        """Unblock (restart) the bot; returns the ``my_chat_member`` update."""
        self.chat.blocked = False
        self.chat.touch()
        return self._member_update("kicked", "member")


class SandboxGroup(_Sender):
    """A group chat (negative id) in which users talk and the bot may post."""

    def __init__(self, sandbox: SandboxTelegram, chat: ChatInfo) -> None:
        """Wrap the group chat ``chat`` (use :meth:`SandboxTelegram.group`)."""
        super().__init__(sandbox)
        self.chat = chat

    @property
    def id(self) -> int:
        """The chat id (negative)."""
        return self.chat.id

    @property
    def messages(self) -> list[JsonDict]:
        """Messages the bot sent to this group."""
        return self._sb.sent_to(self.id)

    def _sender(self, user: SandboxUser | int) -> JsonDict:
        if isinstance(user, int):
            user = self._sb.user(user)
        return user.user_object

    def send_text(self, user: SandboxUser | int, text: str) -> JsonDict:
        """``user`` posts ``text`` in the group; return the update."""
        message = self._message(self.chat, self._sender(user), self._text_content(text))
        return self._update("message", message)

    def send_command(
        self, user: SandboxUser | int, command: str, payload: str | None = None
    ) -> JsonDict:
        """``user`` posts ``/command [payload]`` in the group; return the update."""
        content = self._command_content(command, payload)
        message = self._message(self.chat, self._sender(user), content)
        return self._update("message", message)

    def add_bot(self, by_user: SandboxUser | int) -> JsonDict:
        """``by_user`` adds the bot to the group; return the ``my_chat_member`` update."""
        return self._membership(by_user, "left", "member")

    def remove_bot(self, by_user: SandboxUser | int) -> JsonDict:
        """``by_user`` removes the bot from the group; return the ``my_chat_member`` update."""
        return self._membership(by_user, "member", "left")

    def _membership(self, by_user: SandboxUser | int, old: str, new: str) -> JsonDict:
        bot = copy.deepcopy(self._sb.bot_user)
        payload: JsonDict = {
            "chat": self.chat.chat_object(),
            "from": self._sender(by_user),
            "date": self._sb.unix_now(),
            "old_chat_member": {"status": old, "user": bot},
            "new_chat_member": {"status": new, "user": copy.deepcopy(bot)},
        }
        return self._update("my_chat_member", payload)


def describe(update: JsonDict) -> str:
    """One-line description of an update's kind, for logs and errors."""
    kinds = [k for k in update if k != "update_id"]
    return kinds[0] if kinds else "empty"


__all__ = ["TINY_PNG", "SandboxGroup", "SandboxUser", "describe", "synth_ogg"]
