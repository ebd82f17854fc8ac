"""Logging set-up: structured lines, the right levels, and no secrets or message text.

HTTP libraries log request URLs, and a Bot API URL contains the token; python-telegram-bot logs
the parameters of every call (message texts) at DEBUG. So those loggers are held at WARNING
whatever the configured level, and a filter also redacts anything shaped like a token as a
second guard. :func:`redact` is the one home of that rule; stored error texts use it too.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

TOKEN_PATTERN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}|bot\d+:[A-Za-z0-9_-]+")
REDACTED = "[redacted]"

#: Loggers held at WARNING whatever the level: they log request URLs (the token) or the
#: parameters of Bot API calls (what people wrote and what the bot said).
QUIET_LOGGERS = ("httpx", "httpcore", "aiohttp", "telegram", "apscheduler")


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with bot tokens (by shape, and each of ``secrets`` exactly) replaced."""
    for secret in secrets or []:
        if secret:
            text = text.replace(secret, REDACTED)
    return TOKEN_PATTERN.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Replaces bot tokens (by shape, and the configured one exactly) in every record."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = [s for s in (secrets or []) if s]

    def _clean(self, text: str) -> str:
        return redact(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the formatted message and any exception text, then let the record through."""
        message = record.getMessage()
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as JSON with time, level, logger and message."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    level: str = "INFO", fmt: str = "text", secrets: list[str] | None = None
) -> None:
    """Configure the root logger once for the process."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet_http_libraries()


def quiet_http_libraries() -> None:
    """Hold the :data:`QUIET_LOGGERS` at WARNING, even when the bot logs at DEBUG.

    APScheduler's own INFO lines (a job added or run every few seconds) go too: the scheduler
    logs what it did in its own words.
    """
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
