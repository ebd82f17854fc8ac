"""The application: settings, protocol, services, durable Telegram I/O and the sandbox.

python-telegram-bot 22 is moving durations (such as ``RetryAfter.retry_after``) to
``timedelta`` and warns on every use of the old integers; we opt in to the new behaviour now,
and the code reads both forms (``bot.transport.ratelimit.retry_after_seconds``).

httpx (python-telegram-bot's default HTTP client) imports its own command-line client when
``click`` and ``rich`` are installed, as they are here for typer: that pulls in pygments and
rich's syntax highlighting, about 4 MB that ``companion run`` keeps for its whole life and
never uses. A ``None`` in ``sys.modules`` makes that one optional import fail as httpx expects
when the extras are missing; nothing else about httpx changes.
"""

import os
import sys

os.environ.setdefault("PTB_TIMEDELTA", "true")
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
