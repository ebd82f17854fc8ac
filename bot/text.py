"""Text from people and from Telegram made fit to keep and show: one rule, one home.

Whatever a person types, and whatever Telegram says their name is, may carry characters
nobody sees: right-to-left overrides (U+202E) that make a name read backwards in a staff
chat, zero-width spaces (U+200B), other control and format characters (Unicode category C).
They are dropped everywhere, white space (line breaks included) becomes single spaces in a
line, and the ends are trimmed. Names are stricter: one line, no angle brackets (a name is
never markup), not a command. What is left empty is None; the caller says what then (a typed
answer is asked again; a Telegram name falls back to no name, so messages use their neutral
wording).
"""

from __future__ import annotations

import unicodedata

TELEGRAM_NAME_LIMIT = 64  # Telegram's own limit for a first name; a username is shorter
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _hidden(ch: str) -> bool:
    """A control or format character (category C) that is not white space."""
    return unicodedata.category(ch)[0] == "C" and not ch.isspace()


def _one_line(text: str) -> str:
    return " ".join("".join(ch for ch in text if not _hidden(ch)).split())


def clean_line(text: str | None, limit: int) -> str | None:
    """One tidy line (hidden characters dropped, white space collapsed, trimmed), or None when
    nothing is left or it is longer than ``limit``."""
    if text is None:
        return None
    line = _one_line(text)
    return line if 0 < len(line) <= limit else None


def clean_text(text: str | None, limit: int) -> str | None:
    """Free text kept as written, lines and all, without hidden characters (line breaks and
    tabs stay), trimmed; None when nothing is left or it is longer than ``limit``."""
    if text is None:
        return None
    kept = "".join(ch for ch in text if ch in "\n\t" or not _hidden(ch)).strip()
    return kept if 0 < len(kept) <= limit else None


def clean_name(text: str | None, limit: int) -> str | None:
    """A name someone typed, fit to store and show, or None: one tidy line of at most ``limit``
    characters, no line break inside, no angle brackets, not starting with "/"."""
    if text is None or any(ch in _LINE_BREAKS for ch in text.strip()):
        return None
    name = clean_line(text, limit)
    if name is None or "<" in name or ">" in name or name.startswith("/"):
        return None
    return name


def telegram_name(text: str | None, limit: int = TELEGRAM_NAME_LIMIT) -> str | None:
    """A name Telegram gives (a first name, a username), cleaned like a typed one but shortened
    to ``limit`` rather than refused (it is theirs, not an answer); None when nothing is left."""
    if text is None:
        return None
    line = _one_line(text)
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "\u2026"
    return line or None
