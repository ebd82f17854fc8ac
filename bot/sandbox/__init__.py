"""A sandbox Telegram Bot API server for tests and ``companion demo``.

``SandboxTelegram`` speaks the Bot API over real HTTP (aiohttp, inside the caller's event
loop), keeps chats, messages, files and updates in memory, lets tests drive fake users, checks
requests and answers against the Bot API spec, enforces Telegram's flood limits and injects
faults. See :mod:`bot.sandbox.server` for the HTTP routes.
"""

from bot.sandbox.errors import ApiError
from bot.sandbox.limits import Faults, FloodLimits
from bot.sandbox.server import SandboxTelegram
from bot.sandbox.spec import BotApiSpec, find_spec_path
from bot.sandbox.state import RecordedRequest, UploadedFile
from bot.sandbox.users import SandboxGroup, SandboxUser

__all__ = [
    "ApiError",
    "BotApiSpec",
    "Faults",
    "FloodLimits",
    "RecordedRequest",
    "SandboxGroup",
    "SandboxTelegram",
    "SandboxUser",
    "UploadedFile",
    "find_spec_path",
]
