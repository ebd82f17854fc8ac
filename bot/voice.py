"""Downloading a partner's voice note into the data folder.

The answer row (with the Telegram file id and length) is written first; the download comes
after and may fail (network, a file too big for the Bot API): the answer is then kept without
a local copy, and the file id still lets the team fetch the audio later.
"""

from __future__ import annotations

import logging
from pathlib import Path

from telegram import Bot
from telegram.error import TelegramError

log = logging.getLogger(__name__)


async def download_voice(bot: Bot, file_id: str, data_dir: Path, relative_path: str) -> str | None:
    """Save the voice note ``file_id`` to ``data_dir / relative_path``; None if it failed.

    Returns ``relative_path`` on success, as stored in ``Answer.voice_path``.
    """
    target = data_dir / relative_path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        telegram_file = await bot.get_file(file_id)
        await telegram_file.download_to_drive(target)
    except (TelegramError, OSError) as exc:
        log.warning("voice note download failed (%s); the answer is kept", type(exc).__name__)
        return None
    return relative_path
