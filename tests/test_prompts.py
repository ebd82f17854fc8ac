"""Every template renders with sample values and fits Telegram's limits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.sandbox.html import parse_html, utf16_len
from prompts import CALLBACK_DATA_LIMIT, PROMPTS_DIR, TELEGRAM_TEXT_LIMIT, Prompts

SAMPLES_DIR = Path(__file__).resolve().parent / "prompt_samples"


def load_samples() -> dict[str, dict[str, object]]:
    """Sample values for each template, one YAML file per feature in prompt_samples/.

    A new template without samples fails the test below.
    """
    samples: dict[str, dict[str, object]] = {}
    for path in sorted(SAMPLES_DIR.glob("*.yaml")):
        for name, values in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            assert name not in samples, f"{name} has samples in two files"
            samples[name] = values or {}
    return samples


SAMPLES = load_samples()


def locales() -> list[str]:
    return sorted(p.name for p in PROMPTS_DIR.iterdir() if p.is_dir() and "-" in p.name)


@pytest.mark.parametrize("locale", locales())
def test_every_message_template_renders_within_telegram_limits(locale: str) -> None:
    prompts = Prompts(locale)
    message_templates = [
        n.removesuffix(".html.j2") for n in prompts.template_names() if n.endswith(".html.j2")
    ]
    missing = sorted(set(message_templates) - set(SAMPLES))
    assert not missing, f"add sample values for {missing} to SAMPLES"
    for name in message_templates:
        html = prompts.render(name, **SAMPLES[name])
        text, _entities = parse_html(html)  # raises on markup Telegram would refuse
        assert text.strip(), f"{name} renders empty"
        assert utf16_len(text) <= TELEGRAM_TEXT_LIMIT, f"{name} is too long for one message"


def test_values_are_escaped_not_interpreted_as_html() -> None:
    html = Prompts().render("start/welcome_back", name="<b>Sam</b> & co")
    assert "&lt;b&gt;Sam&lt;/b&gt; &amp; co" in html


def test_a_missing_value_is_an_error_not_a_blank() -> None:
    with pytest.raises(Exception, match="reference"):
        Prompts().render("errors/staff_alert", error_type="X")


@pytest.mark.parametrize("locale", locales())
def test_labels_are_short_enough_for_buttons_and_menus(locale: str) -> None:
    labels = yaml.safe_load((PROMPTS_DIR / locale / "labels.yaml").read_text(encoding="utf-8"))
    for command, description in labels["commands"]["default"].items():
        assert 1 <= len(command) <= 32 and 3 <= len(description) <= 256
    for label in labels["buttons"].values():
        assert len(label) <= 200  # answerCallbackQuery text limit
    assert CALLBACK_DATA_LIMIT == 64


def test_every_text_template_renders() -> None:
    prompts = Prompts()
    item = {"ok": False, "warning": False, "text": "TELEGRAM_BOT_TOKEN is not set."}
    out = prompts.text("cli/check_config", items=[item], problems=1)
    assert "problem  TELEGRAM_BOT_TOKEN is not set." in out
    assert "1 problem found" in out
