"""The application: settings, protocol, services, durable Telegram I/O and the sandbox.

python-telegram-bot 22 is moving durations (such as ``RetryAfter.retry_after``) to
``timedelta`` and warns on every use of the old integers; we opt in to the new behaviour now,
and the code reads both forms (``bot.transport.ratelimit.retry_after_seconds``).
"""

import os

os.environ.setdefault("PTB_TIMEDELTA", "true")
