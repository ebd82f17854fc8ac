"""The sandbox Telegram Bot API server: an aiohttp app inside the caller's event loop.

A python-telegram-bot ``Bot``/``Application`` pointed at it (``base_url=sandbox.base_url``,
``base_file_url=sandbox.base_file_url``) cannot tell it from Telegram for the methods the bot
uses. Tests drive fake users in-process (:meth:`SandboxTelegram.user`); a browser page or an
out-of-process test uses the control API.

Routes
------
Bot API (Telegram's wire format, ``{"ok": ..., "result"|"error_code"+"description"}``):

* ``GET|POST /bot<token>/<method>`` - params as query string, JSON body, form-urlencoded or
  multipart (uploads). Method names are case-insensitive. Wrong token: 401; unknown method: 404.
* ``GET /file/bot<token>/<file_path>`` - download a file returned by ``getFile``.

Control API (JSON in and out; errors are ``{"error": "..."}`` with status 400/404):

* ``POST /control/users/{user_id}/text`` ``{"text": str}``
* ``POST /control/users/{user_id}/command`` ``{"command": "start", "payload": str|null}``
* ``POST /control/users/{user_id}/press`` ``{"message_id": int, "data": str}``
* ``POST /control/users/{user_id}/voice`` ``{"duration": 5, "data_base64": str?, "caption"?}``
* ``POST /control/users/{user_id}/forward`` ``{"text": str?, "voice": seconds?, "author": str?,
  "author_id": int?}`` (someone else's message forwarded: ``forward_origin`` is a hidden user,
  or a known user when ``author_id`` is given)
* ``POST /control/users/{user_id}/sticker`` ``{}``
* ``POST /control/users/{user_id}/photo`` ``{"caption": str?}``
* ``POST /control/users/{user_id}/edit`` ``{"message_id": int, "text": str}``
* ``POST /control/users/{user_id}/block`` and ``/unblock`` ``{}``

  Every user route accepts optional ``first_name``, ``username``, ``language_code`` (used when
  the user is new) and answers ``{"update": <Update>, "update_id": int}``.
* ``POST /control/groups/{chat_id}`` ``{"title": str}`` - create a group (negative id).
* ``POST /control/groups/{chat_id}/text`` ``{"user_id": int, "text": str}``;
  ``/command`` ``{"user_id", "command", "payload"}``.
* ``GET /control/chats/{chat_id}/messages?after=<message_id>&wait=<seconds>&include_user=0|1``
  - long-poll: waits up to ``wait`` s until the bot (or, with ``include_user=1``, anyone) has a
  message with id > ``after`` in that chat; answers the list (current text and markup).
* ``GET /control/chats/{chat_id}/snapshot?version=<int>&wait=<seconds>`` - long-poll until the
  chat's version exceeds ``version`` (any send, edit, delete); answers ``{"version",
  "chat", "messages" (all, both directions), "reply_keyboard", "blocked"}``.
* ``GET /control/files/{file_id}[?download=1]`` - the bytes of a file (a photo or document
  the bot sent, a voice note), for a page that shows them.
* ``GET /control/callbacks/{query_id}`` - ``{"answered": bool, "text"?, "show_alert"?}``: how
  the bot answered a button press (the toast Telegram would show).
* ``GET /control/state`` - counts: pending updates, requests by method, 429s, failures,
  ``flood_violations``, ``spec_errors``, webhook, limits, faults.
* ``GET /control/requests?method=<name>&since=<index>`` - recorded Bot API calls.
* ``GET /control/answered?method=<name>&at_least=<n>&wait=<seconds>`` - long-poll until at
  least ``n`` calls of ``method`` have been answered with 200; answers ``{"count": int}``.
  Benchmarks wait with it instead of polling ``/control/state`` from the measured process.
* ``POST /control/faults`` - any of ``{"slow_seconds": float, "fail_next": {"n", "status",
  "method"}, "network_drop_next": {"n", "method"}, "hang_after_accept": {"n", "seconds",
  "method"}, "hang_before_accept": {"n", "seconds", "method"}, "limits": {"enforce",
  "global_per_second", "per_chat_per_second", "group_per_minute"}, "clear": true}``.
* ``POST /control/updates`` - a raw Update (``update_id`` assigned if missing).

A static demo page, when ``bot/sandbox/static/index.html`` exists, is served at ``/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from bot.sandbox.errors import ApiError, bad_request
from bot.sandbox.limits import Faults, FloodController, FloodLimits
from bot.sandbox.spec import BotApiSpec
from bot.sandbox.state import (
    CallbackInfo,
    ChatInfo,
    FileStore,
    JsonDict,
    Notifier,
    RecordedRequest,
    UploadedFile,
)
from bot.sandbox.users import SandboxGroup, SandboxUser, describe

log = logging.getLogger("bot.sandbox")

STATIC_DIR = Path(__file__).with_name("static")

#: Update kinds Telegram leaves out unless ``allowed_updates`` asks for them.
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_INT_PARAMS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "offset",
        "limit",
        "timeout",
        "max_connections",
        "cache_time",
        "user_id",
        "until_date",
        "duration",
        "width",
        "height",
        "length",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "allow_paid_broadcast",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "show_alert",
        "drop_pending_updates",
        "has_spoiler",
        "show_caption_above_media",
        "disable_content_type_detection",
        "supports_streaming",
        "is_personal",
        "revoke_messages",
    }
)
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "reply_parameters",
        "link_preview_options",
        "message_ids",
        "media",
    }
)
_PRIMITIVE_DECODERS: dict[str, Callable[[str], Any]] = {
    "Integer": int,
    "Float": float,
    "Boolean": lambda v: {"true": True, "false": False}[v.lower()],
}


class _Poll:
    """One in-flight ``getUpdates`` request (for the 409 on a concurrent second one)."""

    def __init__(self) -> None:
        self.superseded = False


class SandboxTelegram:
    """An in-memory Telegram Bot API server for tests and the demo.

    Use ``async with SandboxTelegram() as sb:`` (or ``await sb.start()`` / ``await sb.stop()``),
    then point the bot at ``sb.base_url`` / ``sb.base_file_url``.

    Spec checking is on when a :class:`~bot.sandbox.spec.BotApiSpec` is given
    (``spec=BotApiSpec.load_default()``); flood limits are enforced with
    ``limits=FloodLimits(enforce=True)`` (or ``sb.limits.enforce = True`` later).
    """

    def __init__(
        self,
        *,
        token: str = "123456:SANDBOX-token",  # noqa: S107 (a sandbox token, not a secret)
        bot_username: str = "companion_sandbox_bot",
        host: str = "127.0.0.1",
        port: int = 0,
        spec: BotApiSpec | None = None,
        limits: FloodLimits | None = None,
        clock: Callable[[], float] | None = None,
        extra_routes: Callable[[web.Application], None] | None = None,
    ) -> None:
        """Configure the sandbox; nothing listens until :meth:`start`.

        ``clock`` gives the unix time that message dates use (default: the system clock; the
        demo passes its movable clock). ``extra_routes`` adds the caller's own routes to the
        app before it starts (the demo's clock control), so the sandbox needs no import of
        them.
        """
        self.clock: Callable[[], float] = clock or time.time
        self._extra_routes = extra_routes
        self.token = token
        self.bot_username = bot_username
        self.host = host
        self.port = port
        self.spec = spec
        self.limits = limits if limits is not None else FloodLimits()
        self.flood = FloodController(self.limits)
        self.faults = Faults()
        bot_id_text = token.split(":", 1)[0]
        self.bot_user: JsonDict = {
            "id": int(bot_id_text) if bot_id_text.isdigit() else 123456,
            "is_bot": True,
            "first_name": "Companion Sandbox",
            "username": bot_username,
        }
        self.requests: list[RecordedRequest] = []
        self.callback_answers: dict[str, JsonDict] = {}
        self.spec_errors: list[str] = []
        self.flood_violations: list[str] = []
        self.unsupported_calls: list[str] = []
        self.webhook_deliveries: list[JsonDict] = []
        self.chats: dict[int, ChatInfo] = {}
        self.files = FileStore()
        self._users: dict[int, SandboxUser] = {}
        self._groups: dict[int, SandboxGroup] = {}
        self._updates: list[JsonDict] = []
        self._next_update_id = 100_000_001
        self._allowed_updates: list[str] | None = None
        self._callbacks: dict[str, CallbackInfo] = {}
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._last_commands_key: tuple[str, str] | None = None
        self._webhook: JsonDict = {"url": ""}
        self._webhook_error: tuple[int, str] | None = None
        self._update_signal = Notifier()
        self._message_signal = Notifier()
        self._answered: dict[str, int] = {}  # method -> calls answered with 200
        self._answer_signal = Notifier()
        self._current_poll: _Poll | None = None
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self.url = ""
        self.base_url = ""
        self.base_file_url = ""
        from bot.sandbox.methods import BotApiMethods

        self._api = BotApiMethods(self)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start listening (port 0 picks a free port) and set the URLs."""
        from bot.sandbox.control import add_control_routes

        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        add_control_routes(app, self)
        if self._extra_routes is not None:
            self._extra_routes(app)
        if (STATIC_DIR / "index.html").is_file():
            app.router.add_get("/", self._handle_index)
            app.router.add_static("/static/", STATIC_DIR)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        self.url = f"http://{self.host}:{self.port}"
        self.base_url = f"{self.url}/bot"
        self.base_file_url = f"{self.url}/file/bot"
        self._webhook_task = asyncio.create_task(self._webhook_loop(), name="sandbox-webhook")
        log.info("sandbox Telegram listening on %s", self.url)

    async def stop(self) -> None:
        """Stop: end long polls and hangs at once, stop webhook delivery, close the port."""
        self._stopping.set()
        self._update_signal.notify()
        self._message_signal.notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxTelegram:
        """Start and return the sandbox."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the sandbox."""
        await self.stop()

    # ------------------------------------------------------------------ public API
    def unix_now(self) -> int:
        """Telegram's ``date`` (integer unix seconds) on this sandbox's clock."""
        return int(self.clock())

    def user(
        self,
        user_id: int,
        first_name: str = "Sam",
        *,
        username: str | None = None,
        language_code: str = "en",
    ) -> SandboxUser:
        """Return the fake user ``user_id`` (created with its private chat on first use)."""
        existing = self._users.get(user_id)
        if existing is not None:
            return existing
        if user_id <= 0:
            raise ValueError("user ids are positive")
        chat = self.chats.get(user_id)
        if chat is None:
            chat = ChatInfo(
                id=user_id,
                type="private",
                first_name=first_name,
                username=username,
                language_code=language_code,
            )
            self.chats[user_id] = chat
        sandbox_user = SandboxUser(self, chat)
        self._users[user_id] = sandbox_user
        return sandbox_user

    def group(self, chat_id: int, title: str = "Team") -> SandboxGroup:
        """Return the group ``chat_id`` (negative; created on first use)."""
        existing = self._groups.get(chat_id)
        if existing is not None:
            return existing
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        chat = ChatInfo(id=chat_id, type="group", title=title)
        self.chats[chat_id] = chat
        group = SandboxGroup(self, chat)
        self._groups[chat_id] = group
        return group

    def push_update(self, update: JsonDict, *, check: bool = True) -> int:
        """Queue a raw update (``update_id`` assigned when missing); return its id.

        Updates of a kind excluded by the current ``allowed_updates`` are dropped, as Telegram
        does. With ``check`` (default) the update is validated against the spec, if loaded.
        """
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        update_id = int(update["update_id"])
        self._next_update_id = max(self._next_update_id, update_id + 1)
        kind = describe(update)
        if not self._update_allowed(kind):
            log.debug("update %s (%s) dropped by allowed_updates", update_id, kind)
            return update_id
        if check and self.spec is not None:
            self._spec_report(self.spec.check_object("Update", update, f"Update[{kind}]"))
        self._updates.append(copy.deepcopy(update))
        self._update_signal.notify()
        return update_id

    def sent_to(self, chat_id: int) -> list[JsonDict]:
        """Messages the bot sent to ``chat_id``, oldest first, edits applied, deletions gone."""
        chat = self.chats.get(chat_id)
        if chat is None:
            return []
        bot_id = self.bot_user["id"]
        return [
            copy.deepcopy(m)
            for m in chat.messages.values()
            if m.get("from", {}).get("id") == bot_id
        ]

    def chat_messages(self, chat_id: int) -> list[JsonDict]:
        """Every message in ``chat_id`` (bot and users), oldest first."""
        chat = self.chats.get(chat_id)
        return [copy.deepcopy(m) for m in chat.messages.values()] if chat else []

    def reply_keyboard(self, chat_id: int) -> JsonDict | None:
        """The reply keyboard the bot last showed in ``chat_id`` (``None`` after removal)."""
        chat = self.chats.get(chat_id)
        return copy.deepcopy(chat.reply_keyboard) if chat and chat.reply_keyboard else None

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[JsonDict]:
        """Wait until the bot has sent at least ``count`` messages to ``chat_id``; return them.

        Raises ``TimeoutError`` describing what did arrive and the recent calls otherwise.
        """
        ok = await self._message_signal.wait_until(
            lambda: len(self.sent_to(chat_id)) >= count, timeout
        )
        messages = self.sent_to(chat_id)
        if not ok:
            texts = [str(m.get("text", m.get("caption", "<media>")))[:60] for m in messages]
            recent = [f"{r.method}->{r.status}" for r in self.requests[-8:]]
            raise TimeoutError(
                f"bot sent {len(messages)} message(s) to chat {chat_id} within {timeout}s, "
                f"expected {count}; texts so far: {texts}; pending updates: "
                f"{self.pending_updates}; last requests: {recent}"
            )
        return messages

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed (polling) or not yet delivered (webhook)."""
        return len(self._updates)

    @property
    def commands(self) -> list[JsonDict]:
        """The command list of the last ``setMyCommands`` (empty after it was deleted)."""
        if self._last_commands_key is None:
            return []
        return copy.deepcopy(self._commands.get(self._last_commands_key, []))

    @property
    def webhook(self) -> JsonDict:
        """Current webhook settings (``url`` empty when none) plus ``pending_update_count``."""
        info = copy.deepcopy(self._webhook)
        info["pending_update_count"] = self.pending_updates
        return info

    def requests_for(self, method: str) -> list[RecordedRequest]:
        """Recorded calls of ``method`` (case-insensitive)."""
        return [r for r in self.requests if r.method.lower() == method.lower()]

    def count_status(self, status: int) -> int:
        """How many recorded calls got HTTP ``status`` (e.g. 429)."""
        return sum(1 for r in self.requests if r.status == status)

    def state_summary(self) -> JsonDict:
        """Counts for ``GET /control/state``."""
        by_method: dict[str, int] = {}
        by_status: dict[str, int] = {}
        for r in self.requests:
            by_method[r.method] = by_method.get(r.method, 0) + 1
            by_status[str(r.status)] = by_status.get(str(r.status), 0) + 1
        return {
            "pending_updates": self.pending_updates,
            "requests": len(self.requests),
            "requests_by_method": by_method,
            "requests_by_status": by_status,
            "too_many_requests": self.count_status(429),
            "flood_violations": list(self.flood_violations),
            "spec_errors": list(self.spec_errors),
            "unsupported_calls": list(self.unsupported_calls),
            "chats": sorted(self.chats),
            "files": len(self.files),
            "webhook": self.webhook,
            "commands": self.commands,
            "limits": {
                "enforce": self.limits.enforce,
                "global_per_second": self.limits.global_per_second,
                "per_chat_per_second": self.limits.per_chat_per_second,
                "group_per_minute": self.limits.group_per_minute,
            },
            "faults": self.faults.to_dict(),
            "spec_checking": self.spec is not None,
        }

    # ------------------------------------------------------------------ internals for helpers
    def _store_message(self, chat: ChatInfo, message: JsonDict) -> None:
        chat.messages[int(message["message_id"])] = message
        chat.touch()
        self._message_signal.notify()

    def _register_callback(self, query_id: str) -> None:
        self._callbacks[query_id] = CallbackInfo(created=time.monotonic())

    def _update_allowed(self, kind: str) -> bool:
        allowed = self._allowed_updates
        if not allowed:
            return kind not in DEFAULT_EXCLUDED_UPDATES
        return kind in allowed

    def _spec_report(self, errors: list[str]) -> None:
        for error in errors:
            log.warning("Bot API spec violation: %s", error)
            self.spec_errors.append(error)

    # ------------------------------------------------------------------ HTTP: Bot API
    async def _read_params(self, request: web.Request, method: str) -> JsonDict:
        raw: dict[str, Any] = dict(request.query)
        from_json: dict[str, Any] = {}
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise bad_request("can't parse JSON object") from exc
                if not isinstance(body, dict):
                    raise bad_request("can't parse JSON object")
                from_json = body
            elif ctype == "multipart/form-data":
                reader = await request.multipart()
                async for part in reader:
                    if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                        continue
                    if part.filename is not None:
                        data = await part.read(decode=True)
                        raw[part.name] = UploadedFile(
                            part.filename,
                            part.headers.get("Content-Type", "application/octet-stream"),
                            bytes(data),
                        )
                    else:
                        raw[part.name] = await part.text()
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        raw[key] = UploadedFile(
                            value.filename, value.content_type, value.file.read()
                        )
                    else:
                        raw[key] = value
        types = self.spec.param_types(method) if self.spec is not None else {}
        params = {key: self._decode(key, value, types.get(key, ())) for key, value in raw.items()}
        params.update(from_json)
        return params

    @staticmethod
    def _decode(name: str, value: Any, types: tuple[str, ...]) -> Any:
        """Turn a form/query string into the value it stands for (numbers, bools, JSON)."""
        if not isinstance(value, str):
            return value
        stripped = value.strip()
        wants_json = (
            any(t not in _PRIMITIVE_DECODERS and t != "String" for t in types)
            if types
            else name in _JSON_PARAMS
        )
        if stripped[:1] in ("{", "[") and wants_json:
            try:
                return json.loads(stripped)
            except ValueError:
                return value
        for type_name in types:
            decoder = _PRIMITIVE_DECODERS.get(type_name)
            if decoder is None:
                continue
            try:
                return decoder(stripped)
            except (ValueError, KeyError):
                continue
        if name in _INT_PARAMS and re.fullmatch(r"-?\d+", stripped):
            return int(stripped)
        if name in _BOOL_PARAMS and stripped.lower() in ("true", "false"):
            return stripped.lower() == "true"
        return value

    @staticmethod
    def _respond(body: JsonDict, status: int = 200) -> web.Response:
        return web.json_response(body, status=status)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` unless the sandbox stops first."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _held_caller_stayed(self, request: web.Request, record: RecordedRequest) -> bool:
        """Apply a ``hang_before_accept`` fault; False if the caller went away meanwhile (the
        call is then never processed, as if it had not arrived)."""
        stall = self.faults.take_stall(record.method)
        if not stall:
            return True
        await self._pause(stall)
        if request.transport is not None and not request.transport.is_closing():
            return True
        record.status = 0
        record.description = "caller gone before it was accepted"
        return False

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method_raw = request.match_info["method"]
        record = RecordedRequest(method=method_raw, params={}, time=time.time())
        self.requests.append(record)
        if request.match_info["token"] != self.token:
            return self._finish(record, ApiError(401, "Unauthorized"))
        canonical = self._api.canonical(method_raw)
        if canonical is None and self.spec is not None:
            canonical = self.spec.method_name(method_raw)
        record.method = canonical if canonical is not None else method_raw
        try:
            record.params = await self._read_params(request, record.method)
        except ApiError as exc:
            return self._finish(record, exc)
        if self.spec is not None:
            self._spec_report(self.spec.check_request(record.method, record.params))
        handler = self._api.handler(record.method)
        if handler is None:
            if canonical is None:
                return self._finish(record, ApiError(404, "Not Found"))
            self.unsupported_calls.append(canonical)
            log.warning("sandbox does not implement Bot API method %s", canonical)
            return self._finish(
                record, bad_request(f"method {canonical} is not supported by the sandbox")
            )
        await self._pause(self.faults.slow_seconds)
        if not await self._held_caller_stayed(request, record):
            return web.Response(status=500)
        if self.faults.take_drop(record.method):
            record.status = 0
            record.description = "connection dropped"
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        failure = self.faults.take_failure(record.method)
        if failure is not None:
            status, description, retry_after = failure
            parameters = {"retry_after": retry_after} if retry_after else None
            return self._finish(record, ApiError(status, description, parameters))
        chat_id, is_group = self._flood_target(record.params)
        refusal = self.flood.check(record.method, chat_id, is_group)
        if refusal is not None:
            if refusal.violation:
                self.flood_violations.append(refusal.violation)
                log.warning("flood violation: %s", refusal.violation)
            error = ApiError(
                429,
                f"Too Many Requests: retry after {refusal.retry_after}",
                {"retry_after": refusal.retry_after},
            )
            return self._finish(record, error)
        try:
            result, ok_description = await handler(record.params)
        except ApiError as exc:
            return self._finish(record, exc)
        self.flood.record(record.method, chat_id)
        if self.spec is not None:
            self._spec_report(self.spec.check_result(record.method, result))
        hang = self.faults.take_hang(record.method)
        if hang:
            await self._pause(hang)
        body: JsonDict = {"ok": True, "result": result}
        if ok_description:
            body["description"] = ok_description
        self._answered[record.method] = self._answered.get(record.method, 0) + 1
        self._answer_signal.notify()
        return self._respond(body)

    def answered(self, method: str) -> int:
        """How many calls of ``method`` (as the spec spells it) were answered with 200."""
        return self._answered.get(method, 0)

    async def wait_answered(self, method: str, at_least: int, seconds: float) -> int:
        """Wait up to ``seconds`` until ``at_least`` calls of ``method`` were answered."""
        await self._answer_signal.wait_until(
            lambda: self.answered(method) >= at_least or self._stopping.is_set(), seconds
        )
        return self.answered(method)

    def _finish(self, record: RecordedRequest, error: ApiError) -> web.Response:
        record.status = error.status
        record.description = error.description
        log.debug("%s -> %s %s", record.method, error.status, error.description)
        return self._respond(error.envelope(), error.status)

    def _flood_target(self, params: JsonDict) -> tuple[int | None, bool]:
        chat_id = params.get("chat_id")
        if isinstance(chat_id, str):
            chat = self._api.find_chat(chat_id)
            chat_id = chat.id if chat else None
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            return None, False
        chat = self.chats.get(chat_id)
        if chat is None:
            return None, False
        return chat_id, chat.type != "private"

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        not_found = self._respond(
            {"ok": False, "error_code": 404, "description": "Not Found"}, 404
        )
        if request.match_info["token"] != self.token:
            return not_found
        stored = self.files.by_path(request.match_info["path"])
        if stored is None:
            return not_found
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    async def _handle_index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    # ------------------------------------------------------------------ getUpdates
    async def get_updates(
        self, offset: int, limit: int, poll_seconds: float, allowed: list[str] | None
    ) -> list[JsonDict]:
        """``getUpdates`` semantics: confirm by offset, long-poll, 409 when superseded."""
        if self._webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if allowed is not None:
            self._allowed_updates = list(allowed)
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        previous = self._current_poll
        if previous is not None:
            previous.superseded = True
        poll = _Poll()
        self._current_poll = poll
        self._update_signal.notify()
        try:
            await self._update_signal.wait_until(
                lambda: bool(self._updates) or poll.superseded or self._stopping.is_set(),
                poll_seconds,
            )
        finally:
            if self._current_poll is poll:
                self._current_poll = None
        if poll.superseded:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        return [copy.deepcopy(u) for u in self._updates[:limit]]

    # ------------------------------------------------------------------ webhook
    def set_webhook(self, settings: JsonDict, drop_pending: bool) -> None:
        """Install (or, with an empty url, remove) the webhook."""
        if drop_pending:
            self._updates.clear()
        if settings.get("allowed_updates") is not None:
            self._allowed_updates = list(settings["allowed_updates"])
        self._webhook = settings
        self._webhook_error = None
        self._update_signal.notify()

    def webhook_info(self) -> JsonDict:
        """The ``WebhookInfo`` object."""
        info: JsonDict = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": self.pending_updates,
        }
        if info["url"]:
            info["ip_address"] = "127.0.0.1"
            info["max_connections"] = int(self._webhook.get("max_connections", 40))
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
        if self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    async def _webhook_loop(self) -> None:
        backoff = 0.05
        while not self._stopping.is_set():
            url = self._webhook.get("url")
            if not url or not self._updates:
                await self._update_signal.wait_until(
                    lambda: (
                        self._stopping.is_set() or bool(self._webhook.get("url") and self._updates)
                    ),
                    5.0,
                )
                continue
            update = self._updates[0]
            headers = {"Content-Type": "application/json"}
            secret = self._webhook.get("secret_token")
            if secret:
                headers["X-Telegram-Bot-Api-Secret-Token"] = str(secret)
            error: str | None = None
            try:
                if self._http is None:
                    self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
                async with self._http.post(url, data=json.dumps(update), headers=headers) as resp:
                    await resp.read()
                    if not 200 <= resp.status < 300:
                        error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"Connection failed: {exc.__class__.__name__}"
            self.webhook_deliveries.append(
                {"update_id": update["update_id"], "url": url, "ok": error is None}
            )
            if error is None:
                if self._updates and self._updates[0] is update:
                    self._updates.pop(0)
                backoff = 0.05
                continue
            self._webhook_error = (self.unix_now(), error)
            log.info("webhook delivery of update %s failed: %s", update["update_id"], error)
            await self._pause(backoff)
            backoff = min(backoff * 2, 1.0)


Handler = Callable[[JsonDict], Awaitable[tuple[Any, str | None]]]
