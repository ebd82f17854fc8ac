"""Button (callback) data read back, in one place.

A button carries ``<prefix>:<field>[:<field>...]``, at most 64 bytes. Any client can press a
button with any data, so nothing read back is trusted: a number is ASCII digits and nothing
else (``"²".isdigit()`` is true but ``int("²")`` fails; ``int("-1")``, ``int(" 1")`` and
``int("1_0")`` all succeed), at most 12 of them (a database id, a Unix time). Whatever does
not read cleanly is None, and the handler answers the press as an old button: no failure, so
no staff alert, and nothing changed.
"""

from __future__ import annotations

import re

from prompts import CALLBACK_DATA_LIMIT

NUMBER_DIGITS = 12
_DIGITS = re.compile(r"[0-9]+")


def number(value: str | None, *, digits: int = NUMBER_DIGITS) -> int | None:
    """The integer written in ``value`` in ASCII digits only (``[0-9]{1,digits}``), else None."""
    if value is None or not 0 < len(value) <= digits or _DIGITS.fullmatch(value) is None:
        return None
    return int(value)


def fields(data: str | None, prefix: str) -> list[str] | None:
    """The fields of ``data`` after ``prefix:``, or None when the data is not that prefix's
    (or longer than Telegram allows). ``fields("mt:12:yes", "mt") == ["12", "yes"]``."""
    if not data or len(data.encode()) > CALLBACK_DATA_LIMIT:
        return None
    head, sep, rest = data.partition(":")
    if head != prefix or not sep:
        return None
    return rest.split(":")
