"""The one cleaning rule (bot.text): hidden characters dropped wherever text is kept."""

from __future__ import annotations

from bot.text import clean_line, clean_name, clean_text, telegram_name
from bot.transport.callbacks import fields, number


def test_hidden_characters_are_dropped_and_space_collapsed() -> None:
    assert clean_line("\u202eSa\u200bm\x07 \u00a0 Jo\u2066\n", 40) == "Sam Jo"
    assert clean_line("\u202e\u200b", 40) is None
    assert clean_line("abc", 2) is None


def test_free_text_keeps_its_lines() -> None:
    assert clean_text("  We heard you:\n\u202enew\u200b times\t ok \n", 100) == (
        "We heard you:\nnew times\t ok"
    )
    assert clean_text("\u200b \n", 100) is None


def test_a_typed_name_is_one_line_never_markup_or_a_command() -> None:
    assert clean_name("  Sam\u202e ", 40) == "Sam"
    for bad in ("Sam\nJo", "Sam\u2028Jo", "<b>Sam</b>", "/start", "A" * 41, "\u200b", None):
        assert clean_name(bad, 40) is None


def test_a_telegram_name_is_cleaned_and_shortened_not_refused() -> None:
    assert telegram_name("\u202eSam\u200b") == "Sam"
    assert telegram_name("\u202e\u200b") is None and telegram_name(None) is None
    long = telegram_name("A" * 300)
    assert long is not None and len(long) == 64 and long.endswith("\u2026")
    assert telegram_name("Sam <3") == "Sam <3", "kept as given; templates escape it"


def test_button_numbers_are_ascii_digits_only() -> None:
    assert number("42") == 42 and number("0") == 0
    for bad in ("\u00b2", "\u0663", "\uff11", "-1", "+1", " 1", "1_0", "", "1\n", "9" * 13, None):
        assert number(bad) is None
    assert number("12345", digits=4) is None
    assert fields("mt:12:yes", "mt") == ["12", "yes"]
    assert fields("mtx:12", "mt") is None and fields("mt", "mt") is None
    assert fields("mt:" + "1" * 70, "mt") is None, "longer than Telegram allows"
