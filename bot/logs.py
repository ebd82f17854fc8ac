"""Logging set-up: structured lines, the right levels, and no secrets or message text.

httpx logs every request URL at INFO, and the URL contains the bot token, so httpx and httpcore
are held at WARNING; a filter also redacts anything shaped like a token as a second guard.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

TOKEN_PATTERN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}|bot\d+:[A-Za-z0-9_-]+")
REDACTED = "[redacted]"


class RedactingFilter(logging.Filter):
    """Replaces bot tokens (by shape, and the configured one exactly) in every record."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = [s for s in (secrets or []) if s]

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_PATTERN.sub(REDACTED, text)

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
    """Keep httpx/httpcore request lines (which carry the token in the URL) out of the logs.

    APScheduler's own INFO lines (a job added or run every few seconds) go too: the scheduler
    logs what it did in its own words.
    """
    for name in ("httpx", "httpcore", "aiohttp.access", "apscheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)
