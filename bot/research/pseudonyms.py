"""Stable research pseudonyms: an HMAC of the person keyed by ``COMPANION_SECRET_KEY``.

The input is the bot's own random code for the person (never a Telegram id or a name), so the
same person gets the same pseudonym in every export made with the same key, and nobody without
the key can link a pseudonym back to the person or to the bot's internal code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_DOMAIN = b"involvement-companion research pseudonym v1:"


class MissingKeyError(ValueError):
    """No key is configured, so no stable pseudonym can be made."""


class Pseudonymiser:
    """Turns the bot's internal code for a person into the export's pseudonym."""

    def __init__(self, secret: str | None) -> None:
        # With several comma-separated keys (rotation of the text encryption), the first one
        # makes pseudonyms: keep it first and the pseudonyms stay the same.
        keys = [s.strip() for s in (secret or "").split(",") if s.strip()]
        if not keys:
            raise MissingKeyError("COMPANION_SECRET_KEY is not set")
        self._key = keys[0].encode("utf-8")
        self._made: dict[str, str] = {}

    def __call__(self, internal: str) -> str:
        """The pseudonym for the person whose internal code is ``internal``."""
        made = self._made.get(internal)
        if made is None:
            digest = hmac.new(self._key, _DOMAIN + internal.encode("utf-8"), hashlib.sha256)
            made = "R-" + base64.b32encode(digest.digest()).decode("ascii")[:12]
            self._made[internal] = made
        return made
