"""Bot API method implementations for the sandbox server.

Each handler takes the decoded parameters and returns ``(result, description)`` or raises
:class:`~bot.sandbox.server.ApiError` with Telegram's status and wording. Handlers never await
between validating a request and changing state, so the flood accounting in the server sees a
consistent picture.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import struct
import time
from typing import TYPE_CHECKING, Any

from bot.sandbox.errors import ApiError, bad_request
from bot.sandbox.html import EntityParseError, check_entities, parse_html, strip_text, utf16_len
from bot.sandbox.state import ChatInfo, JsonDict, StoredFile, UploadedFile

if TYPE_CHECKING:
    from bot.sandbox.server import Handler, SandboxTelegram

log = logging.getLogger("bot.sandbox")

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_DOWNLOAD = 20 * 1024 * 1024
CALLBACK_TIMEOUT = 15.0

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


def _err(text: str) -> ApiError:
    return bad_request(text)


def _int(params: JsonDict, name: str, *, required: str | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required is not None:
            raise _err(required)
        return None
    if isinstance(value, bool):
        raise _err(f"invalid {name} specified")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise _err(f"invalid {name} specified") from exc


def _bool(params: JsonDict, name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, JPEG or WebP image, or ``None`` if not an image."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return 512, 512
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
        return None
    return None


class BotApiMethods:
    """The Bot API methods the sandbox implements, bound to one :class:`SandboxTelegram`."""

    def __init__(self, sandbox: SandboxTelegram) -> None:
        """Bind to ``sandbox``."""
        self.sb = sandbox
        self._handlers: dict[str, tuple[str, Handler]] = {}
        for name in (
            "getMe",
            "logOut",
            "close",
            "getUpdates",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "sendMessage",
            "editMessageText",
            "editMessageCaption",
            "editMessageReplyMarkup",
            "deleteMessage",
            "deleteMessages",
            "answerCallbackQuery",
            "sendChatAction",
            "leaveChat",
            "setMyCommands",
            "getMyCommands",
            "deleteMyCommands",
            "getChat",
            "sendDocument",
            "sendPhoto",
            "sendVoice",
            "getFile",
        ):
            attr = "m_" + re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()
            self._handlers[name.lower()] = (name, getattr(self, attr))

    def canonical(self, method: str) -> str | None:
        """Canonical spelling of an implemented method (case-insensitive), else ``None``."""
        entry = self._handlers.get(method.lower())
        return entry[0] if entry else None

    def handler(self, method: str) -> Handler | None:
        """The handler for ``method``, or ``None`` when the sandbox does not implement it."""
        entry = self._handlers.get(method.lower())
        return entry[1] if entry else None

    # ------------------------------------------------------------------ helpers
    def find_chat(self, chat_id: Any) -> ChatInfo | None:
        """Find a chat by numeric id or ``@username``."""
        if isinstance(chat_id, str):
            text = chat_id.strip()
            if text.startswith("@"):
                name = text[1:].lower()
                for chat in self.sb.chats.values():
                    if chat.username and chat.username.lower() == name:
                        return chat
                return None
            if not re.fullmatch(r"-?\d+", text):
                return None
            chat_id = int(text)
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            return None
        return self.sb.chats.get(chat_id)

    def _chat(self, params: JsonDict, *, sending: bool = True) -> ChatInfo:
        if params.get("chat_id") in (None, ""):
            raise _err("chat_id is empty")
        chat = self.find_chat(params["chat_id"])
        if chat is None:
            raise _err("chat not found")
        if sending and chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if sending and chat.left:
            raise ApiError(403, "Forbidden: bot is not a member of the group chat")
        return chat

    def _format(
        self, params: JsonDict, field: str, entities_field: str, *, limit: int, required: bool
    ) -> tuple[str, list[JsonDict]]:
        raw = params.get(field)
        if raw is None or raw == "":
            if required:
                raise _err("message text is empty")
            return "", []
        text = str(raw)
        mode = str(params.get("parse_mode") or "")
        try:
            if mode.lower() == "html":
                text, entities = parse_html(text)
            elif mode.lower() in ("markdown", "markdownv2"):
                log.warning("sandbox does not parse %s; the text is kept as is", mode)
                entities = []
            elif mode:
                raise _err("unsupported parse_mode")
            elif params.get(entities_field) is not None:
                entities = check_entities(text, params[entities_field])
            else:
                entities = []
        except EntityParseError as exc:
            raise _err(f"can't parse entities: {exc}") from exc
        text, entities = strip_text(text, entities)
        if not text and required:
            raise _err("message text is empty")
        if utf16_len(text) > limit:
            raise _err("message is too long" if field == "text" else "message caption is too long")
        return text, entities

    @staticmethod
    def _inline_keyboard(markup: JsonDict) -> JsonDict | None:
        rows = markup.get("inline_keyboard")
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _err("can't parse inline keyboard markup JSON object")
        clean_rows: list[list[JsonDict]] = []
        for row in rows:
            clean_row: list[JsonDict] = []
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _err("can't parse inline keyboard button: Text must be a string")
                if not button["text"].strip():
                    raise _err("text buttons are unallowed in the inline keyboard")
                actions = [a for a in _INLINE_ACTIONS if button.get(a) is not None]
                if not actions:
                    raise _err(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                if len(actions) > 1:
                    raise _err(
                        "can't parse inline keyboard button: "
                        'Can\'t find field "url" or "callback_data"'
                    )
                data = button.get("callback_data")
                if data is not None and (
                    not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64
                ):
                    raise _err("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not re.match(r"^(https?|tg)://\S+$", str(url)):
                    raise _err(f"inline keyboard button URL '{url}' is invalid: Wrong URL")
                clean_row.append(dict(button))
            if clean_row:
                clean_rows.append(clean_row)
        return {"inline_keyboard": clean_rows} if clean_rows else None

    def _markup(self, params: JsonDict, chat: ChatInfo, *, inline_only: bool) -> JsonDict | None:
        """Validate ``reply_markup``; apply reply keyboards to the chat; return inline markup."""
        markup = params.get("reply_markup")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _err("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            return self._inline_keyboard(markup)
        if inline_only:
            raise _err("inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _err("can't parse keyboard markup JSON object")
            for row in rows:
                for button in row:
                    text = button if isinstance(button, str) else (button or {}).get("text")
                    if not isinstance(text, str) or not text:
                        raise _err("keyboard button text must be non-empty")
            chat.reply_keyboard = copy.deepcopy(markup)
            return None
        if markup.get("remove_keyboard"):
            chat.reply_keyboard = None
            return None
        if markup.get("force_reply"):
            return None
        raise _err("can't parse reply keyboard markup JSON object")

    def _reply_to(self, params: JsonDict, chat: ChatInfo) -> JsonDict | None:
        reply = params.get("reply_parameters")
        message_id: int | None = None
        allow_missing = _bool(params, "allow_sending_without_reply")
        if isinstance(reply, dict) and reply.get("message_id") is not None:
            message_id = int(reply["message_id"])
            allow_missing = allow_missing or bool(reply.get("allow_sending_without_reply"))
        elif params.get("reply_to_message_id") is not None:
            message_id = _int(params, "reply_to_message_id")
        if message_id is None:
            return None
        target = chat.messages.get(message_id)
        if target is None:
            if allow_missing:
                return None
            raise _err("message to be replied not found")
        replied = copy.deepcopy(target)
        replied.pop("reply_to_message", None)
        return replied

    def _new_bot_message(self, chat: ChatInfo, content: JsonDict) -> JsonDict:
        message: JsonDict = {
            "message_id": chat.allocate_message_id(),
            "from": copy.deepcopy(self.sb.bot_user),
            "chat": chat.chat_object(),
            "date": self.sb.unix_now(),
            **content,
        }
        self.sb._store_message(chat, message)
        return copy.deepcopy(message)

    def _common_content(self, params: JsonDict, chat: ChatInfo) -> JsonDict:
        content: JsonDict = {}
        reply = self._reply_to(params, chat)
        markup = self._markup(params, chat, inline_only=False)
        if reply is not None:
            content["reply_to_message"] = reply
        if markup is not None:
            content["reply_markup"] = markup
        if _bool(params, "protect_content"):
            content["has_protected_content"] = True
        return content

    def _editable(self, params: JsonDict) -> tuple[ChatInfo, JsonDict]:
        if params.get("inline_message_id"):
            raise _err("MESSAGE_ID_INVALID")
        chat = self._chat(params, sending=False)
        message_id = _int(params, "message_id", required="message identifier is not specified")
        assert message_id is not None
        message = chat.messages.get(message_id)
        if message is None:
            raise _err("message to edit not found")
        if message.get("from", {}).get("id") != self.sb.bot_user["id"]:
            raise _err("message can't be edited")
        return chat, message

    def _file_param(self, params: JsonDict, name: str) -> UploadedFile | StoredFile:
        value = params.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        if isinstance(value, UploadedFile):
            return value
        if isinstance(value, str) and value:
            stored = self.sb.files.get(value)
            if stored is not None:
                return stored
            if value.startswith(("http://", "https://")):
                raise _err("failed to get HTTP URL content")
            raise _err("wrong file identifier/HTTP URL specified")
        raise _err(f"there is no {name} in the request")

    # ------------------------------------------------------------------ methods
    async def m_get_me(self, params: JsonDict) -> tuple[Any, str | None]:
        """getMe."""
        me = copy.deepcopy(self.sb.bot_user)
        me.update(
            can_join_groups=True,
            can_read_all_group_messages=False,
            supports_inline_queries=False,
            can_connect_to_business=False,
            has_main_web_app=False,
        )
        return me, None

    async def m_log_out(self, params: JsonDict) -> tuple[Any, str | None]:
        """logOut (a no-op here)."""
        return True, None

    async def m_close(self, params: JsonDict) -> tuple[Any, str | None]:
        """close (a no-op here)."""
        return True, None

    async def m_get_updates(self, params: JsonDict) -> tuple[Any, str | None]:
        """getUpdates with offset, limit, long-poll timeout and allowed_updates."""
        offset = _int(params, "offset") or 0
        limit = _int(params, "limit")
        limit = 100 if limit is None else min(100, max(1, limit))
        timeout = max(0, _int(params, "timeout") or 0)
        allowed = params.get("allowed_updates")
        if allowed is not None and not isinstance(allowed, list):
            raise _err("can't parse allowed_updates JSON array")
        updates = await self.sb.get_updates(offset, limit, float(timeout), allowed)
        return updates, None

    async def m_set_webhook(self, params: JsonDict) -> tuple[Any, str | None]:
        """setWebhook (http URLs allowed, for local receivers)."""
        url = str(params.get("url") or "")
        drop = _bool(params, "drop_pending_updates")
        if not url:
            self.sb.set_webhook({"url": ""}, drop)
            return True, "Webhook was deleted"
        if not re.match(r"^https?://[^/\s]+", url):
            raise _err("bad webhook: HTTPS url must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.match(str(secret)):
            raise _err("bad webhook: secret token contains unallowed characters")
        max_connections = _int(params, "max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise _err("bad webhook: max_connections must be between 1 and 100")
        allowed = params.get("allowed_updates")
        if allowed is not None and not isinstance(allowed, list):
            raise _err("can't parse allowed_updates JSON array")
        settings: JsonDict = {"url": url, "max_connections": max_connections}
        if secret:
            settings["secret_token"] = str(secret)
        if allowed is not None:
            settings["allowed_updates"] = allowed
        self.sb.set_webhook(settings, drop)
        return True, "Webhook was set"

    async def m_delete_webhook(self, params: JsonDict) -> tuple[Any, str | None]:
        """deleteWebhook."""
        had = bool(self.sb.webhook.get("url"))
        self.sb.set_webhook({"url": ""}, _bool(params, "drop_pending_updates"))
        return True, "Webhook was deleted" if had else "Webhook is already deleted"

    async def m_get_webhook_info(self, params: JsonDict) -> tuple[Any, str | None]:
        """getWebhookInfo."""
        return self.sb.webhook_info(), None

    async def m_send_message(self, params: JsonDict) -> tuple[Any, str | None]:
        """sendMessage with HTML parsing, keyboards and reply parameters."""
        chat = self._chat(params)
        text, entities = self._format(params, "text", "entities", limit=MAX_TEXT, required=True)
        content: JsonDict = {"text": text}
        if entities:
            content["entities"] = entities
        content.update(self._common_content(params, chat))
        return self._new_bot_message(chat, content), None

    async def m_edit_message_text(self, params: JsonDict) -> tuple[Any, str | None]:
        """editMessageText (drops the inline keyboard unless one is passed, like Telegram)."""
        chat, message = self._editable(params)
        if "text" not in message:
            raise _err("there is no text in the message to edit")
        text, entities = self._format(params, "text", "entities", limit=MAX_TEXT, required=True)
        markup = self._markup(params, chat, inline_only=True)
        if (
            text == message.get("text")
            and entities == message.get("entities", [])
            and markup == message.get("reply_markup")
        ):
            raise _err(_NOT_MODIFIED)
        message["text"] = text
        self._set_optional(message, "entities", entities or None)
        self._set_optional(message, "reply_markup", markup)
        return self._edited(chat, message), None

    async def m_edit_message_caption(self, params: JsonDict) -> tuple[Any, str | None]:
        """editMessageCaption."""
        chat, message = self._editable(params)
        if "text" in message:
            raise _err("there is no caption in the message to edit")
        caption, entities = self._format(
            params, "caption", "caption_entities", limit=MAX_CAPTION, required=False
        )
        markup = self._markup(params, chat, inline_only=True)
        if (
            caption == message.get("caption", "")
            and entities == message.get("caption_entities", [])
            and markup == message.get("reply_markup")
        ):
            raise _err(_NOT_MODIFIED)
        self._set_optional(message, "caption", caption or None)
        self._set_optional(message, "caption_entities", entities or None)
        self._set_optional(message, "reply_markup", markup)
        return self._edited(chat, message), None

    async def m_edit_message_reply_markup(self, params: JsonDict) -> tuple[Any, str | None]:
        """editMessageReplyMarkup."""
        chat, message = self._editable(params)
        markup = self._markup(params, chat, inline_only=True)
        if markup == message.get("reply_markup"):
            raise _err(_NOT_MODIFIED)
        self._set_optional(message, "reply_markup", markup)
        return self._edited(chat, message), None

    @staticmethod
    def _set_optional(message: JsonDict, key: str, value: Any) -> None:
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value

    def _edited(self, chat: ChatInfo, message: JsonDict) -> JsonDict:
        message["edit_date"] = self.sb.unix_now()
        chat.touch()
        self.sb._message_signal.notify()
        return copy.deepcopy(message)

    async def m_delete_message(self, params: JsonDict) -> tuple[Any, str | None]:
        """deleteMessage."""
        chat = self._chat(params, sending=False)
        message_id = _int(params, "message_id", required="message identifier is not specified")
        if message_id not in chat.messages:
            raise _err("message to delete not found")
        del chat.messages[message_id]
        chat.touch()
        self.sb._message_signal.notify()
        return True, None

    async def m_delete_messages(self, params: JsonDict) -> tuple[Any, str | None]:
        """deleteMessages (missing ones are skipped, like Telegram)."""
        chat = self._chat(params, sending=False)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _err("message identifiers are not specified")
        for message_id in ids:
            chat.messages.pop(int(message_id), None)
        chat.touch()
        self.sb._message_signal.notify()
        return True, None

    async def m_answer_callback_query(self, params: JsonDict) -> tuple[Any, str | None]:
        """answerCallbackQuery (once per query, within 15 s)."""
        query_id = str(params.get("callback_query_id") or "")
        info = self.sb._callbacks.get(query_id)
        if info is None or info.answered or time.monotonic() - info.created > CALLBACK_TIMEOUT:
            raise _err("query is too old and response timeout expired or query ID is invalid")
        text = params.get("text")
        if text is not None and utf16_len(str(text)) > 200:
            raise _err("MESSAGE_TOO_LONG")
        info.answered = True
        self.sb.callback_answers[query_id] = dict(params)
        return True, None

    async def m_leave_chat(self, params: JsonDict) -> tuple[Any, str | None]:
        """leaveChat: the bot leaves a group (a private chat cannot be left)."""
        chat = self._chat(params, sending=False)
        if chat.type == "private":
            raise _err("chat member status can't be changed in private chats")
        chat.left = True
        return True, None

    async def m_send_chat_action(self, params: JsonDict) -> tuple[Any, str | None]:
        """sendChatAction."""
        self._chat(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise _err("wrong parameter action in request")
        return True, None

    @staticmethod
    def _scope_key(params: JsonDict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or not isinstance(scope.get("type"), str):
            raise _err("can't parse BotCommandScope JSON object")
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def m_set_my_commands(self, params: JsonDict) -> tuple[Any, str | None]:
        """setMyCommands."""
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _err("can't parse commands JSON object")
        if len(commands) > 100:
            raise _err("too many commands")
        clean: list[JsonDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _err("can't parse BotCommand JSON object")
            name = str(command.get("command", ""))
            description = str(command.get("description", "")).strip()
            if not _COMMAND_RE.match(name):
                raise _err("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise _err("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name, "description": description})
        key = self._scope_key(params)
        self.sb._commands[key] = clean
        self.sb._last_commands_key = key
        return True, None

    async def m_get_my_commands(self, params: JsonDict) -> tuple[Any, str | None]:
        """getMyCommands."""
        return copy.deepcopy(self.sb._commands.get(self._scope_key(params), [])), None

    async def m_delete_my_commands(self, params: JsonDict) -> tuple[Any, str | None]:
        """deleteMyCommands."""
        self.sb._commands.pop(self._scope_key(params), None)
        return True, None

    async def m_get_chat(self, params: JsonDict) -> tuple[Any, str | None]:
        """getChat (a ChatFullInfo)."""
        chat = self._chat(params, sending=False)
        info = chat.chat_object()
        info.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return info, None

    def _store_upload(
        self, source: UploadedFile | StoredFile, folder: str, default_ext: str
    ) -> StoredFile:
        if isinstance(source, StoredFile):
            return source
        ext = ""
        if "." in source.filename:
            ext = "." + source.filename.rsplit(".", 1)[1][:8]
        return self.sb.files.add(
            source.data,
            folder,
            ext or default_ext,
            mime_type=source.content_type or None,
            file_name=source.filename,
        )

    def _media_message(self, params: JsonDict, chat: ChatInfo, media: JsonDict) -> JsonDict:
        caption, entities = self._format(
            params, "caption", "caption_entities", limit=MAX_CAPTION, required=False
        )
        content: JsonDict = dict(media)
        if caption:
            content["caption"] = caption
        if entities:
            content["caption_entities"] = entities
        content.update(self._common_content(params, chat))
        return self._new_bot_message(chat, content)

    async def m_send_document(self, params: JsonDict) -> tuple[Any, str | None]:
        """sendDocument (multipart upload or an existing file_id)."""
        chat = self._chat(params)
        stored = self._store_upload(self._file_param(params, "document"), "documents", ".bin")
        document: JsonDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        if stored.file_name:
            document["file_name"] = stored.file_name
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        return self._media_message(params, chat, {"document": document}), None

    async def m_send_photo(self, params: JsonDict) -> tuple[Any, str | None]:
        """sendPhoto (the image must be a real PNG/JPEG/GIF/WebP)."""
        chat = self._chat(params)
        source = self._file_param(params, "photo")
        size = _image_size(source.data)
        if size is None:
            raise _err("IMAGE_PROCESS_FAILED")
        stored = self._store_upload(source, "photos", ".jpg")
        photo = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": size[0],
            "height": size[1],
            "file_size": stored.size,
        }
        return self._media_message(params, chat, {"photo": [photo]}), None

    async def m_send_voice(self, params: JsonDict) -> tuple[Any, str | None]:
        """sendVoice."""
        chat = self._chat(params)
        stored = self._store_upload(self._file_param(params, "voice"), "voice", ".oga")
        voice: JsonDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": _int(params, "duration") or 1,
            "mime_type": "audio/ogg",
            "file_size": stored.size,
        }
        return self._media_message(params, chat, {"voice": voice}), None

    async def m_get_file(self, params: JsonDict) -> tuple[Any, str | None]:
        """getFile."""
        stored = self.sb.files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _err("invalid file_id")
        if stored.size > MAX_DOWNLOAD:
            raise _err("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }, None
