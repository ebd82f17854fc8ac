"""Downloading a partner's voice note into the data folder.

The answer row (with the Telegram file id and length) is committed first; the download comes
after the commit (it can take seconds, and the inbox batch must not hold the database that
long) and may fail (network, a file too big for the Bot API, a crash in between): the answer
is then kept without a local copy, and the file id still lets the team fetch the audio later.

With ``COMPANION_SECRET_KEY`` set, the audio is encrypted at rest like typed text: the file is
kept as ``<name>.enc`` (Fernet) and ``read_voice`` gives the audio back to whoever needs it
(``/mydata``, the research export), from :mod:`bot.partners.voice_files`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import update
from telegram import Bot
from telegram.error import TelegramError

from bot.partners.voice_files import ENCRYPTED_SUFFIX, encrypt_in_place
from storage.crypto import TextCipher
from storage.db import Database
from storage.models import Answer

log = logging.getLogger(__name__)


async def download_voice(
    bot: Bot,
    file_id: str,
    data_dir: Path,
    relative_path: str,
    cipher: TextCipher | None = None,
) -> str | None:
    """Save the voice note ``file_id`` to ``data_dir / relative_path``; None if it failed.

    Returns the path as stored in ``Answer.voice_path``: ``relative_path``, with ``.enc``
    added when ``cipher`` has a key (the audio is then encrypted at rest).
    """
    target = data_dir / relative_path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        telegram_file = await bot.get_file(file_id)
        await telegram_file.download_to_drive(target)
        if cipher is not None and cipher.enabled:
            await asyncio.to_thread(encrypt_in_place, target, cipher)
            return relative_path + ENCRYPTED_SUFFIX
    except (TelegramError, OSError) as exc:
        target.unlink(missing_ok=True)
        log.warning("voice note download failed (%s); the answer is kept", type(exc).__name__)
        return None
    return relative_path


async def fetch_voice_answer(
    bot: Bot,
    db: Database,
    *,
    file_id: str,
    data_dir: Path,
    relative_path: str,
    answer_id: int,
    cipher: TextCipher | None = None,
) -> None:
    """After the answer is committed: download its voice note and record where it is kept.

    If the answer has gone meanwhile (a withdrawal that deletes data), the file is removed
    again: nothing of theirs may stay behind.
    """
    saved = await download_voice(bot, file_id, data_dir, relative_path, cipher)
    if saved is None:
        return
    async with db.transaction() as session:
        result = await session.execute(
            update(Answer).where(Answer.id == answer_id).values(voice_path=saved)
        )
    if not getattr(result, "rowcount", 0):
        (data_dir / saved).unlink(missing_ok=True)
        log.info("voice note of an answer that is gone: removed")
