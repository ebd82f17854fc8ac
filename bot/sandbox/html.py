"""Telegram-style HTML parsing for the sandbox Bot API server.

Telegram's ``parse_mode=HTML`` accepts a small set of tags and the entities ``&lt;``, ``&gt;``,
``&amp;``, ``&quot;`` plus numeric ones (``&#123;``, ``&#x1F600;``). The parser here follows
TDLib's ``parse_html`` closely enough that markup the sandbox accepts is accepted by Telegram and
markup it rejects is rejected with a similar ``can't parse entities`` message (byte offsets are
UTF-8 byte offsets into the original text, as in Telegram's errors).

The result is the plain text plus a list of ``MessageEntity`` dicts whose offsets and lengths
are counted in UTF-16 code units, as the Bot API returns them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)

_SIMPLE_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
    "pre": "pre",
}

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class EntityParseError(ValueError):
    """Markup Telegram would refuse; ``str(exc)`` is the part after ``can't parse entities: ``."""


def utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units (how Telegram counts)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _OpenTag:
    name: str
    start: int  # UTF-16 offset in the output
    argument: str = ""
    expandable: bool = False
    attrs: dict[str, str] = field(default_factory=dict)


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _decode_entity(text: str, i: int) -> tuple[str, int] | None:
    """Decode an HTML entity starting at ``text[i] == '&'``; return (char, next index)."""
    end = text.find(";", i + 1, i + 12)
    if end == -1:
        return None
    body = text[i + 1 : end]
    if body in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[body], end + 1
    if body.startswith("#"):
        digits = body[1:]
        try:
            code = int(digits[1:], 16) if digits[:1] in ("x", "X") else int(digits, 10)
        except ValueError:
            return None
        if 0 < code < 0x110000 and not 0xD800 <= code <= 0xDFFF:
            return chr(code), end + 1
    return None


def _normalize_url(url: str) -> str | None:
    """Normalise a link target like Telegram does (add ``http://`` and a ``/`` path)."""
    url = url.strip()
    if not url:
        return None
    if url.startswith("tg://"):
        return url
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url) and not re.match(r"^[^:]+:\d", url):
            return None  # javascript:, mailto: and friends are not links in Telegram
        url = "http://" + url
    scheme, rest = url.split("://", 1)
    if scheme.lower() not in ("http", "https", "ftp", "tonsite"):
        return None
    host_end = len(rest)
    for sep in "/?#":
        pos = rest.find(sep)
        if pos != -1:
            host_end = min(host_end, pos)
    if not rest[:host_end]:
        return None
    if host_end == len(rest) or rest[host_end] != "/":
        rest = rest[:host_end] + "/" + rest[host_end:]
    return f"{scheme.lower()}://{rest}"


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:  # noqa: PLR0915
    """Parse Telegram HTML into ``(plain_text, entities)``.

    Raises :class:`EntityParseError` with Telegram's wording for markup Telegram refuses.
    """
    out: list[str] = []
    out_len = 0  # UTF-16 units emitted so far
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    n = len(text)
    i = 0

    def emit(chunk: str) -> None:
        nonlocal out_len
        out.append(chunk)
        out_len += utf16_len(chunk)

    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                emit(decoded[0])
                i = decoded[1]
                continue
            emit(c)
            i += 1
            continue
        if c != "<":
            j = i
            while j < n and text[j] not in "&<":
                j += 1
            emit(text[i:j])
            i = j
            continue
        begin = i
        i += 1
        if i < n and text[i] == "/":
            # end tag
            i += 1
            name_begin = i
            while i < n and not text[i].isspace() and text[i] != ">":
                i += 1
            end_name = text[name_begin:i].lower()
            while i < n and text[i].isspace():
                i += 1
            if i >= n or text[i] != ">":
                raise EntityParseError(
                    f"Unclosed end tag at byte offset {_byte_offset(text, begin)}"
                )
            i += 1
            if not stack:
                raise EntityParseError(
                    f"Unexpected end tag at byte offset {_byte_offset(text, begin)}"
                )
            top = stack[-1]
            if end_name and end_name != top.name:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{top.name}>", found "</{end_name}>"'
                )
            stack.pop()
            _close_tag(top, out_len, stack, entities)
            continue
        # start tag
        name_begin = i
        while i < n and not text[i].isspace() and text[i] not in ">/":
            i += 1
        if i >= n:
            raise EntityParseError(
                f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
            )
        name = text[name_begin:i].lower()
        if name not in SUPPORTED_TAGS:
            raise EntityParseError(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, begin)}'
            )
        tag = _OpenTag(name=name, start=out_len)
        while True:
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            if text[i] == ">":
                i += 1
                break
            if text[i] == "/" and i + 1 < n and text[i + 1] == ">":
                i += 2
                break
            attr_begin = i
            while i < n and not text[i].isspace() and text[i] not in "=>":
                i += 1
            attr_name = text[attr_begin:i].lower()
            if not attr_name:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset '
                    f"{_byte_offset(text, begin)}"
                )
            while i < n and text[i].isspace():
                i += 1
            if i < n and text[i] != "=":
                if name == "blockquote" and attr_name == "expandable":
                    tag.expandable = True
                    continue
                raise EntityParseError(
                    f'Expected equal sign in declaration of an attribute of the tag "{name}" '
                    f"at byte offset {_byte_offset(text, begin)}"
                )
            if i >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            i += 1
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            value_chars: list[str] = []
            if text[i] in "\"'":
                quote = text[i]
                i += 1
                while i < n and text[i] != quote:
                    if text[i] == "&":
                        decoded = _decode_entity(text, i)
                        if decoded is not None:
                            value_chars.append(decoded[0])
                            i = decoded[1]
                            continue
                    value_chars.append(text[i])
                    i += 1
                if i >= n:
                    raise EntityParseError(
                        f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                    )
                i += 1
            else:
                while i < n and (text[i].isalnum() or text[i] in "-_.:/?#&=%+~"):
                    value_chars.append(text[i])
                    i += 1
                if not value_chars:
                    raise EntityParseError(
                        f'Expected quote in declaration of an attribute of the tag "{name}" '
                        f"at byte offset {_byte_offset(text, begin)}"
                    )
            tag.attrs[attr_name] = "".join(value_chars)
        if name == "span" and tag.attrs.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        if name == "tg-emoji" and not tag.attrs.get("emoji-id", "").isdigit():
            raise EntityParseError(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        stack.append(tag)
    if stack:
        raise EntityParseError(
            f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"'
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_tag(
    tag: _OpenTag, end: int, stack: list[_OpenTag], entities: list[dict[str, Any]]
) -> None:
    length = end - tag.start
    if length <= 0:
        return
    entity: dict[str, Any] = {"offset": tag.start, "length": length}
    if tag.name == "a":
        url = _normalize_url(tag.attrs.get("href", ""))
        if url is None:
            return
        entity["type"] = "text_link"
        entity["url"] = url
    elif tag.name == "tg-emoji":
        entity["type"] = "custom_emoji"
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    elif tag.name == "blockquote":
        entity["type"] = "expandable_blockquote" if tag.expandable else "blockquote"
    elif tag.name == "code":
        cls = tag.attrs.get("class", "")
        if stack and stack[-1].name == "pre" and cls.startswith("language-"):
            stack[-1].argument = cls.removeprefix("language-")
            return
        entity["type"] = "code"
    elif tag.name == "pre":
        entity["type"] = "pre"
        if tag.argument:
            entity["language"] = tag.argument
    else:
        entity["type"] = _SIMPLE_TYPES[tag.name]
    entities.append(entity)


def strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim leading/trailing whitespace like Telegram, shifting and clipping ``entities``."""
    stripped_left = text.lstrip()
    lead = utf16_len(text) - utf16_len(stripped_left)
    result = stripped_left.rstrip()
    total = utf16_len(result)
    fixed: list[dict[str, Any]] = []
    for entity in entities:
        start = max(0, int(entity["offset"]) - lead)
        end = min(total, int(entity["offset"]) + int(entity["length"]) - lead)
        if end <= start:
            continue
        fixed.append({**entity, "offset": start, "length": end - start})
    return result, fixed


def check_entities(text: str, entities: Any) -> list[dict[str, Any]]:
    """Validate an explicit ``entities`` list against ``text``; return clean entity dicts."""
    if not isinstance(entities, list):
        raise EntityParseError("entities must be an array")
    total = utf16_len(text)
    clean: list[dict[str, Any]] = []
    for entity in entities:
        if not isinstance(entity, dict) or not isinstance(entity.get("type"), str):
            raise EntityParseError("entity type must be a string")
        try:
            offset = int(entity["offset"])
            length = int(entity["length"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EntityParseError("entity offset and length must be integers") from exc
        if offset < 0 or length <= 0 or offset + length > total:
            continue
        clean.append({**entity, "offset": offset, "length": length})
    clean.sort(key=lambda e: (e["offset"], -e["length"]))
    return clean


_AUTO_PATTERNS = [
    ("bot_command", re.compile(r"(?<![\w/])/[a-zA-Z0-9_]{1,32}(?:@[a-zA-Z0-9_]{5,32})?(?!\w)")),
    ("url", re.compile(r"\bhttps?://[^\s<>\"]+")),
    ("mention", re.compile(r"(?<!\w)@[a-zA-Z][a-zA-Z0-9_]{4,31}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#[^\W\d][\w]*")),
]


def detect_entities(text: str) -> list[dict[str, Any]]:
    """Find the entities Telegram detects on its own in a user's text.

    Covers ``bot_command``, ``url``, ``mention`` and ``hashtag``; overlapping matches keep the
    first found.
    """
    found: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _AUTO_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            found.append(
                {
                    "type": kind,
                    "offset": utf16_len(text[:start]),
                    "length": utf16_len(text[start:end]),
                }
            )
    found.sort(key=lambda e: (e["offset"], -e["length"]))
    return found
