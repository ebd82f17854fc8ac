"""Voice notes as kept in the data folder: encrypting one at rest and reading one back.

Kept apart from the download (:mod:`bot.partners.voice`) so that what reads voice notes back,
``/mydata`` and the research export, does not load python-telegram-bot: ``companion export``
runs without it.
"""

from __future__ import annotations

from pathlib import Path

from storage.crypto import TextCipher

ENCRYPTED_SUFFIX = ".enc"


def encrypt_in_place(target: Path, cipher: TextCipher) -> Path:
    """Replace the plain file ``target`` by its encrypted copy ``<target>.enc``."""
    sealed = target.with_name(target.name + ENCRYPTED_SUFFIX)
    partial = sealed.with_name(sealed.name + ".partial")
    partial.write_bytes(cipher.encrypt_bytes(target.read_bytes()))
    partial.replace(sealed)
    target.unlink(missing_ok=True)
    return sealed


def read_voice(path: Path, cipher: TextCipher) -> bytes:
    """The audio of a stored voice note, decrypted if it was kept encrypted.

    Raises OSError when the file cannot be read and ValueError when its key is gone.
    """
    data = path.read_bytes()
    if path.name.endswith(ENCRYPTED_SUFFIX):
        return cipher.decrypt_bytes(data)
    return data


def audio_name(path: Path) -> str:
    """The file name a person sees for a stored voice note (without ``.enc``)."""
    return path.name.removesuffix(ENCRYPTED_SUFFIX)
