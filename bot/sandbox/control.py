"""The sandbox's control HTTP API (``/control/...``) for browser pages and out-of-process tests.

The routes are documented in :mod:`bot.sandbox.server`. They are thin JSON wrappers around
the in-process API of :class:`~bot.sandbox.server.SandboxTelegram`.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.sandbox.state import JsonDict

if TYPE_CHECKING:
    from bot.sandbox.server import SandboxTelegram
    from bot.sandbox.users import SandboxUser

MAX_WAIT = 60.0

_Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlError(Exception):
    """A control-API request error (answered as ``{"error": ...}``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        """Create the error with an HTTP ``status``."""
        super().__init__(message)
        self.status = status


def _json_route(func: Callable[[web.Request], Awaitable[Any]]) -> _Route:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return web.json_response(await func(request))
        except ControlError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": f"{exc.__class__.__name__}: {exc}"}, status=400)

    return wrapper


async def _body(request: web.Request) -> JsonDict:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise ControlError("body must be a JSON object") from exc
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ControlError("body must be a JSON object")
    return body


def _int_arg(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ControlError(f"{name} must be an integer") from exc


def _float_query(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return min(MAX_WAIT, max(0.0, float(raw)))
    except ValueError as exc:
        raise ControlError(f"{name} must be a number") from exc


def add_control_routes(app: web.Application, sb: SandboxTelegram) -> None:  # noqa: PLR0915
    """Register the ``/control/`` routes for ``sb`` on ``app``."""

    def user_for(request: web.Request, body: JsonDict) -> SandboxUser:
        user_id = _int_arg(request.match_info["user_id"], "user_id")
        if user_id <= 0:
            raise ControlError("user_id must be positive")
        return sb.user(
            user_id,
            str(body.get("first_name") or "Sam"),
            username=body.get("username"),
            language_code=str(body.get("language_code") or "en"),
        )

    def answer(update: JsonDict) -> JsonDict:
        return {"update": update, "update_id": update.get("update_id")}

    @_json_route
    async def user_action(request: web.Request) -> Any:
        action = request.match_info["action"]
        body = await _body(request)
        user = user_for(request, body)
        if action == "text":
            text = body.get("text")
            if not isinstance(text, str) or not text:
                raise ControlError("text is required")
            reply_to = body.get("reply_to")
            if reply_to is not None:
                reply_to = _int_arg(reply_to, "reply_to")
            try:
                return answer(user.send_text(text, reply_to=reply_to))
            except ValueError as exc:
                raise ControlError(str(exc)) from exc
        if action == "command":
            command = body.get("command")
            if not isinstance(command, str) or not command:
                raise ControlError("command is required")
            payload = body.get("payload")
            return answer(user.send_command(command, None if payload is None else str(payload)))
        if action == "press":
            message_id = _int_arg(body.get("message_id"), "message_id")
            data = body.get("data")
            if not isinstance(data, str):
                raise ControlError("data is required")
            return answer(user.press(message_id, data))
        if action == "voice":
            raw = body.get("data_base64")
            try:
                data = base64.b64decode(raw, validate=True) if raw else None
            except (binascii.Error, ValueError) as exc:
                raise ControlError("data_base64 is not valid base64") from exc
            duration = _int_arg(body.get("duration", 5), "duration")
            return answer(user.send_voice(duration, data, body.get("caption")))
        if action == "forward":
            text, voice = body.get("text"), body.get("voice")
            if (not isinstance(text, str) or not text) and voice is None:
                raise ControlError("text or voice is required")
            author_id = body.get("author_id")
            return answer(
                user.forward(
                    text if isinstance(text, str) else None,
                    voice=None if voice is None else _int_arg(voice, "voice"),
                    author=str(body.get("author") or "Alex"),
                    author_id=None if author_id is None else _int_arg(author_id, "author_id"),
                )
            )
        if action == "sticker":
            return answer(user.send_sticker())
        if action == "photo":
            return answer(user.send_photo(body.get("caption")))
        if action == "edit":
            message_id = _int_arg(body.get("message_id"), "message_id")
            text = body.get("text")
            if not isinstance(text, str) or not text:
                raise ControlError("text is required")
            return answer(user.edit(message_id, text))
        if action == "block":
            return answer(user.block())
        if action == "unblock":
            return answer(user.unblock())
        raise ControlError(f"unknown user action {action!r}", 404)

    @_json_route
    async def create_group(request: web.Request) -> Any:
        body = await _body(request)
        chat_id = _int_arg(request.match_info["chat_id"], "chat_id")
        if chat_id >= 0:
            raise ControlError("group chat ids are negative")
        group = sb.group(chat_id, str(body.get("title") or "Team"))
        return group.chat.chat_object()

    @_json_route
    async def group_action(request: web.Request) -> Any:
        body = await _body(request)
        chat_id = _int_arg(request.match_info["chat_id"], "chat_id")
        if chat_id not in sb.chats or sb.chats[chat_id].type == "private":
            raise ControlError(f"no group {chat_id}", 404)
        group = sb.group(chat_id)
        user_id = _int_arg(body.get("user_id"), "user_id")
        action = request.match_info["action"]
        if action == "text":
            return answer(group.send_text(user_id, str(body.get("text") or "")))
        if action == "command":
            payload = body.get("payload")
            return answer(
                group.send_command(
                    user_id, str(body.get("command")), None if payload is None else str(payload)
                )
            )
        if action == "add_bot":
            return answer(group.add_bot(user_id))
        raise ControlError(f"unknown group action {action!r}", 404)

    @_json_route
    async def chat_messages(request: web.Request) -> Any:
        chat_id = _int_arg(request.match_info["chat_id"], "chat_id")
        after = _int_arg(request.query.get("after", 0), "after")
        wait = _float_query(request, "wait", 0.0)
        include_user = request.query.get("include_user", "0").lower() in ("1", "true", "yes")

        def current() -> list[JsonDict]:
            messages = sb.chat_messages(chat_id) if include_user else sb.sent_to(chat_id)
            return [m for m in messages if int(m["message_id"]) > after]

        await sb._message_signal.wait_until(lambda: bool(current()) or sb._stopping.is_set(), wait)
        return current()

    @_json_route
    async def chat_snapshot(request: web.Request) -> Any:
        chat_id = _int_arg(request.match_info["chat_id"], "chat_id")
        version = _int_arg(request.query.get("version", -1), "version")
        wait = _float_query(request, "wait", 0.0)

        def chat_version() -> int:
            chat = sb.chats.get(chat_id)
            return chat.version if chat else 0

        await sb._message_signal.wait_until(
            lambda: chat_version() > version or sb._stopping.is_set(), wait
        )
        chat = sb.chats.get(chat_id)
        if chat is None:
            raise ControlError(f"no chat {chat_id}", 404)
        return {
            "version": chat.version,
            "chat": chat.chat_object(),
            "messages": sb.chat_messages(chat_id),
            "reply_keyboard": sb.reply_keyboard(chat_id),
            "blocked": chat.blocked,
            "bot": copy.deepcopy(sb.bot_user),
        }

    async def file_bytes(request: web.Request) -> web.StreamResponse:
        stored = sb.files.get(request.match_info["file_id"])
        if stored is None:
            return web.json_response({"error": "no such file"}, status=404)
        headers = {"Cache-Control": "private, max-age=3600"}
        if request.query.get("download", "0").lower() in ("1", "true", "yes"):
            name = stored.file_name or stored.file_path.rsplit("/", 1)[-1]
            safe = "".join(c for c in name if c.isalnum() or c in "._- ") or "file"
            headers["Content-Disposition"] = f'attachment; filename="{safe}"'
        return web.Response(
            body=stored.data,
            content_type=stored.mime_type or "application/octet-stream",
            headers=headers,
        )

    @_json_route
    async def callback_answer(request: web.Request) -> Any:
        query_id = request.match_info["query_id"]
        answered = sb.callback_answers.get(query_id)
        if answered is None:
            return {"answered": False}
        return {
            "answered": True,
            "text": answered.get("text"),
            "show_alert": str(answered.get("show_alert")).lower() == "true",
        }

    @_json_route
    async def state(request: web.Request) -> Any:
        return sb.state_summary()

    @_json_route
    async def requests(request: web.Request) -> Any:
        method = request.query.get("method")
        since = _int_arg(request.query.get("since", 0), "since")
        rows = []
        for index, r in enumerate(sb.requests[since:], start=since):
            if method and r.method.lower() != method.lower():
                continue
            row = asdict(r)
            row["params"] = {k: _jsonable(v) for k, v in r.params.items()}
            row["index"] = index
            rows.append(row)
        return rows

    @_json_route
    async def answered(request: web.Request) -> Any:
        method = request.query.get("method", "")
        if not method:
            raise ControlError("method is required")
        at_least = _int_arg(request.query.get("at_least", 0), "at_least")
        wait = _float_query(request, "wait", 0.0)
        return {"count": await sb.wait_answered(method, at_least, wait)}

    @_json_route
    async def faults(request: web.Request) -> Any:
        body = await _body(request)
        if body.get("clear"):
            sb.faults.clear()
        if "slow_seconds" in body:
            sb.faults.slow_seconds = float(body["slow_seconds"])
        if isinstance(body.get("fail_next"), dict):
            spec = body["fail_next"]
            sb.faults.fail_next(
                int(spec.get("n", 1)),
                status=int(spec.get("status", 500)),
                method=spec.get("method"),
                description=spec.get("description"),
                retry_after=spec.get("retry_after"),
            )
        if isinstance(body.get("network_drop_next"), dict):
            spec = body["network_drop_next"]
            sb.faults.network_drop_next(int(spec.get("n", 1)), method=spec.get("method"))
        for name in ("hang_after_accept", "hang_before_accept"):
            if isinstance(body.get(name), dict):
                spec = body[name]
                getattr(sb.faults, name)(
                    int(spec.get("n", 1)),
                    seconds=float(spec.get("seconds", 10.0)),
                    method=spec.get("method"),
                )
        if isinstance(body.get("limits"), dict):
            for key, value in body["limits"].items():
                if key == "enforce":
                    sb.limits.enforce = bool(value)
                elif key in ("global_per_second", "per_chat_per_second", "group_per_minute"):
                    setattr(sb.limits, key, int(value))
                else:
                    raise ControlError(f"unknown limit {key!r}")
        return {"faults": sb.faults.to_dict(), "limits": asdict(sb.limits)}

    @_json_route
    async def updates(request: web.Request) -> Any:
        body = await _body(request)
        if not body:
            raise ControlError("an Update object is required")
        return {"update_id": sb.push_update(body)}

    app.router.add_post("/control/users/{user_id}/{action}", user_action)
    app.router.add_post("/control/groups/{chat_id}", create_group)
    app.router.add_post("/control/groups/{chat_id}/{action}", group_action)
    app.router.add_get("/control/chats/{chat_id}/messages", chat_messages)
    app.router.add_get("/control/chats/{chat_id}/snapshot", chat_snapshot)
    app.router.add_get("/control/files/{file_id}", file_bytes)
    app.router.add_get("/control/callbacks/{query_id}", callback_answer)
    app.router.add_get("/control/state", state)
    app.router.add_get("/control/requests", requests)
    app.router.add_get("/control/answered", answered)
    app.router.add_post("/control/faults", faults)
    app.router.add_post("/control/updates", updates)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if hasattr(value, "data") and isinstance(getattr(value, "data", None), bytes):
        return repr(value)
    return value
