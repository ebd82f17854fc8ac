"""Encryption of free text at rest (Fernet, with key rotation through MultiFernet).

``COMPANION_SECRET_KEY`` may hold several comma-separated secrets: the first encrypts, all of
them decrypt, so a key can be rotated without losing what was written under the old one. Each
secret is stretched into a Fernet key with HKDF, so any long random string works. Without a
secret, text is stored as given and marked as not encrypted.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"involvement-companion free text v1"


def _fernet_for(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(key))


class TextCipher:
    """Encrypts and decrypts free text with the study's secret key(s)."""

    def __init__(self, secret: str | None) -> None:
        secrets = [s.strip() for s in (secret or "").split(",") if s.strip()]
        self._fernet = MultiFernet([_fernet_for(s) for s in secrets]) if secrets else None

    @property
    def enabled(self) -> bool:
        """Whether a key is configured (text and voice notes are then encrypted)."""
        return self._fernet is not None

    def encrypt(self, text: str) -> tuple[str, bool]:
        """``(stored_value, encrypted)`` for ``text``."""
        if self._fernet is None:
            return text, False
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii"), True

    def encrypt_bytes(self, data: bytes) -> bytes:
        """``data`` encrypted (a voice note's audio); the caller checks :attr:`enabled`."""
        if self._fernet is None:
            raise ValueError("COMPANION_SECRET_KEY is not set")
        return self._fernet.encrypt(data)

    def decrypt_bytes(self, data: bytes) -> bytes:
        """The original bytes; raises ValueError when the key that wrote them is gone."""
        if self._fernet is None:
            raise ValueError("these bytes are encrypted but COMPANION_SECRET_KEY is not set")
        try:
            return self._fernet.decrypt(data)
        except InvalidToken as exc:
            raise ValueError(
                "these bytes were encrypted with a key that is no longer set"
            ) from exc

    def decrypt(self, stored: str, encrypted: bool) -> str:
        """The original text; raises ValueError when the key that wrote it is gone."""
        if not encrypted:
            return stored
        if self._fernet is None:
            raise ValueError("this text is encrypted but COMPANION_SECRET_KEY is not set")
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError("this text was encrypted with a key that is no longer set") from exc
