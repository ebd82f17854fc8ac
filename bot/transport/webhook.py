"""Webhook mode: Telegram POSTs updates; we answer 200 only after the inbox commit.

The ``X-Telegram-Bot-Api-Secret-Token`` header is compared in constant time; anything without
the right secret gets 403 and is not stored.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable

from aiohttp import web

from bot.transport.inbox import store_updates
from storage.db import Database

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_BODY = 1_000_000


def webhook_routes(
    path: str, secret: str, db: Database, on_stored: Callable[[], None]
) -> list[web.RouteDef]:
    """The aiohttp route that receives updates at ``path``."""
    expected = secret.encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            log.warning("webhook call without the right secret token refused")
            return web.Response(status=403)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413)
        try:
            update = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400)
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return web.Response(status=400)
        try:
            await store_updates(db, [update])
        except Exception:
            # Not stored, so not acknowledged: Telegram will deliver it again.
            log.exception("could not store a webhook update; answering 500 so it is retried")
            return web.Response(status=500)
        on_stored()
        return web.Response(status=200)

    return [web.post(path, receive)]
