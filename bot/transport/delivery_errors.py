"""What a failed Bot API call means for the message behind it.

python-telegram-bot turns every failure into a :class:`telegram.error.TelegramError`; what
matters to the outbox is whether the request could have reached Telegram:

========================================  ===================  =============================
error                                     outcome              the outbox
========================================  ===================  =============================
``RetryAfter`` (429)                      ``RETRY_AFTER``      pause, then send again
``NetworkError`` from an HTTP status      ``RETRY``            back off, send again
(5xx etc.: no ``__cause__``, or a body
that was not JSON)
``NetworkError``/``TimedOut`` caused by   ``RETRY``            back off, send again
``ConnectError``, ``ConnectTimeout``,
``PoolTimeout`` (httpx) or
``ClientConnectorError``,
``ConnectionTimeoutError`` (aiohttp):
the request never left this host
``TimedOut`` caused by ``ReadTimeout`` /  ``UNKNOWN``          never resent automatically
``WriteTimeout``; ``NetworkError`` caused
by ``RemoteProtocolError``, ``ReadError``
and anything else ambiguous
``Forbidden`` (403)                       ``UNREACHABLE``      person marked unreachable
``BadRequest`` (400)                      ``REJECTED``         failed, description kept
``ChatMigrated`` (400)                    ``MIGRATED``         resent to the new chat id
``InvalidToken`` (401/404)                ``MISCONFIGURED``    everything paused, kept
========================================  ===================  =============================

The description kept for a failure is Telegram's (or the transport's) error text, never the
message text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import aiohttp
import httpx
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.logs import redact
from bot.transport.ratelimit import retry_after_seconds

#: Transport errors that prove the request never left this host.
NEVER_SENT_CAUSES: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    aiohttp.ClientConnectorError,  # no connection could be made
    aiohttp.ConnectionTimeoutError,  # none within the pool and connect timeouts
)

#: Keep stored error descriptions short (the column holds 300 characters).
MAX_DESCRIPTION = 250


class Outcome(enum.StrEnum):
    """What to do with a message whose send raised."""

    RETRY_AFTER = "retry_after"  # flood control: wait retry_after, then send again
    RETRY = "retry"  # the request certainly did not take effect: back off and resend
    UNKNOWN = "unknown"  # it may have been delivered: never resend blindly
    UNREACHABLE = "unreachable"  # 403: blocked, deactivated, kicked
    REJECTED = "rejected"  # 400: Telegram refused this message; resending will not help
    MIGRATED = "migrated"  # the group became a supergroup with a new chat id
    MISCONFIGURED = "misconfigured"  # the token is wrong: nothing can be sent


@dataclass(frozen=True)
class Classification:
    """An error, reduced to what the outbox needs to know."""

    outcome: Outcome
    description: str
    retry_after: float | None = None
    new_chat_id: int | None = None


def _describe(exc: BaseException) -> str:
    """What went wrong, fit to store: one line, short, and never the token (an aiohttp error
    can carry the whole URL, which holds it)."""
    text = exc.message if isinstance(exc, TelegramError) else f"{type(exc).__name__}: {exc}"
    text = redact(" ".join(str(text).split()))
    return text[:MAX_DESCRIPTION]


def _never_sent(exc: BaseException) -> bool:
    cause = exc.__cause__
    return isinstance(cause, NEVER_SENT_CAUSES)


def classify(exc: BaseException) -> Classification:
    """Classify an exception raised by a Bot API call (see the module table)."""
    description = _describe(exc)
    if isinstance(exc, RetryAfter):
        return Classification(Outcome.RETRY_AFTER, description, retry_after_seconds(exc))
    if isinstance(exc, ChatMigrated):
        return Classification(Outcome.MIGRATED, description, new_chat_id=exc.new_chat_id)
    if isinstance(exc, Forbidden):
        return Classification(Outcome.UNREACHABLE, description)
    if isinstance(exc, InvalidToken):
        return Classification(Outcome.MISCONFIGURED, description)
    if isinstance(exc, BadRequest):
        return Classification(Outcome.REJECTED, description)
    if isinstance(exc, Conflict):
        # Only getUpdates/setWebhook answer 409; the server refused the call outright.
        return Classification(Outcome.RETRY, description)
    if isinstance(exc, TimedOut):
        # TimedOut is a NetworkError, so it must be looked at first.
        outcome = Outcome.RETRY if _never_sent(exc) else Outcome.UNKNOWN
        return Classification(outcome, description)
    if isinstance(exc, NetworkError):
        cause = exc.__cause__
        if cause is None or isinstance(cause, TelegramError):
            # Raised from an HTTP status (5xx, 413, ...): the server answered and did not
            # accept the message. A cause that is a TelegramError is a non-JSON error body.
            return Classification(Outcome.RETRY, description)
        if _never_sent(exc):
            return Classification(Outcome.RETRY, description)
        return Classification(Outcome.UNKNOWN, description)
    # Anything else escaped the transport: we cannot prove the request was not sent.
    return Classification(Outcome.UNKNOWN, description)
