"""Settings: what the environment may hold, and what check-config refuses."""

from __future__ import annotations


def test_a_weak_secret_key_is_recognised() -> None:
    """check-config refuses these (issue: a key checked for presence only)."""
    from bot.settings import secret_key_problem

    assert secret_key_problem("tooshort-1") == "short"
    assert secret_key_problem("correct horse battery staple and more words") == "words"
    assert secret_key_problem("Correct-Horse_Battery-Staple-Tree-Lake") == "words"
    assert secret_key_problem("ab12" * 10) == "repetitive"
    assert secret_key_problem("") == "empty"
    good = "q9Zr_Ft2Lw8-Xk4Pb7Hs1Mn6Vd3Jc0Yt5Ra"
    assert secret_key_problem(good) is None
    assert secret_key_problem(f"{good},short") == "short", "every rotated key must be strong"


def test_a_phrase_with_a_year_or_symbols_at_its_ends_is_still_words() -> None:
    import secrets

    from bot.settings import secret_key_problem

    assert secret_key_problem("correcthorsebatterystaple20262026") == "words"
    assert secret_key_problem("2026!Correct-Horse-Battery-Staple!!") == "words"
    made = [secrets.token_urlsafe(48) for _ in range(2000)]  # what MAKE_SECRET_KEY prints
    assert [key for key in made if secret_key_problem(key) is not None] == []
    # About one key in 50,000 it prints has no digit at all: still not words.
    assert (
        secret_key_problem("vkjllsDLKJKhfVkz_fT-IDfLrQvspCBeZQGBvNtFQFeXLaNbwzEjxltwXHIPxceu")
        is None
    )
    assert secret_key_problem("thequickbrownfoxjumpsoverthelazydogandthenranbackhome") == "words"
