"""Telegram HTML parsing: plain text, UTF-16 entities, Telegram's error wording."""

from __future__ import annotations

import pytest

from bot.sandbox.html import EntityParseError, detect_entities, parse_html, strip_text, utf16_len


def test_plain_and_entities() -> None:
    text, entities = parse_html("a <b>bold <i>both</i></b> &lt;tag&gt; &#128512; &amp;")
    assert text == "a bold both <tag> 😀 &"
    assert entities == [
        {"offset": 2, "length": 9, "type": "bold"},
        {"offset": 7, "length": 4, "type": "italic"},
    ]


def test_utf16_offsets() -> None:
    text, entities = parse_html("😀 <u>x</u>")
    assert utf16_len("😀") == 2
    assert entities == [{"offset": 3, "length": 1, "type": "underline"}]
    assert text == "😀 x"


def test_all_supported_tags() -> None:
    markup = (
        "<strong>a</strong><em>b</em><ins>c</ins><s>d</s><strike>e</strike><del>f</del>"
        '<span class="tg-spoiler">g</span><tg-spoiler>h</tg-spoiler><code>i</code>'
        '<pre><code class="language-python">j</code></pre><a href="https://t.me">k</a>'
        "<blockquote>l</blockquote><blockquote expandable>m</blockquote>"
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
    )
    text, entities = parse_html(markup)
    assert text == "abcdefghijklm👍"
    types = [e["type"] for e in entities]
    assert types == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "strikethrough",
        "strikethrough",
        "spoiler",
        "spoiler",
        "code",
        "pre",
        "text_link",
        "blockquote",
        "expandable_blockquote",
        "custom_emoji",
    ]
    pre = next(e for e in entities if e["type"] == "pre")
    assert pre["language"] == "python"
    link = next(e for e in entities if e["type"] == "text_link")
    assert link["url"] == "https://t.me/"


@pytest.mark.parametrize(
    ("markup", "message"),
    [
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<x>y</x>", 'Unsupported start tag "x" at byte offset 0'),
        ("é <p>", 'Unsupported start tag "p" at byte offset 3'),
        ("</b>", "Unexpected end tag at byte offset 0"),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<a href>x</a>", "Expected equal sign"),
    ],
)
def test_errors(markup: str, message: str) -> None:
    with pytest.raises(EntityParseError) as info:
        parse_html(markup)
    assert message in str(info.value)


def test_bare_ampersand_and_unknown_entity_kept() -> None:
    assert parse_html("a & b &nbsp; c")[0] == "a & b &nbsp; c"


def test_strip_text_shifts_entities() -> None:
    text, entities = parse_html("  <b>hi</b>  ")
    text, entities = strip_text(text, entities)
    assert text == "hi"
    assert entities == [{"offset": 0, "length": 2, "type": "bold"}]


def test_detect_entities() -> None:
    found = detect_entities("/start x https://a.org @someone #tag")
    assert [e["type"] for e in found] == ["bot_command", "url", "mention", "hashtag"]
