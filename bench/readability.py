"""Readability report: the Flesch reading ease of every partner-facing message.

Renders every ``*.html.j2`` template of a locale with the sample values kept for the tests
(``tests/prompt_samples/``), strips the HTML as Telegram would, and scores the text with
``bot.tools.readability`` (textstat; ``companion preview`` shows the same scores). Templates whose
first line is ``{# audience: staff #}`` are for the study team and are left out. The default
texts must average at least 70 with none below 50 (plain English for people with low literacy);
``tests/test_readability.py`` holds them to that.

Usage: python bench/readability.py [--locale en-GB]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.tools.readability import is_staff_template, score_html
from prompts import PROMPTS_DIR, Prompts

SAMPLES_DIR = ROOT / "tests" / "prompt_samples"
AVERAGE_BUDGET = 70.0
FLOOR = 50.0


@dataclass(frozen=True)
class Score:
    """One message's reading ease."""

    template: str
    ease: float
    words: int


def load_samples() -> dict[str, dict[str, object]]:
    """Sample values per template name, from every file in tests/prompt_samples/."""
    samples: dict[str, dict[str, object]] = {}
    for path in sorted(SAMPLES_DIR.glob("*.yaml")):
        for name, values in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            samples[name] = values or {}
    return samples


def partner_facing(locale: str) -> list[str]:
    """Names of the message templates partners read."""
    folder = PROMPTS_DIR / locale
    names = []
    for path in sorted(folder.rglob("*.html.j2")):
        if is_staff_template(path):
            continue
        names.append(str(path.relative_to(folder)).removesuffix(".html.j2"))
    return names


def score_all(locale: str = "en-GB") -> list[Score]:
    """Score every partner-facing template of ``locale``."""
    prompts = Prompts(locale)
    samples = load_samples()
    scores = []
    for name in partner_facing(locale):
        reading = score_html(prompts.render(name, **samples.get(name, {})))
        scores.append(Score(name, reading.ease, reading.words))
    return scores


def main() -> int:
    """Print the report; exit non-zero when the budget is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locale", default="en-GB")
    args = parser.parse_args()
    scores = score_all(args.locale)
    width = max(len(s.template) for s in scores)
    for s in sorted(scores, key=lambda s: s.ease):
        flag = "  <- below the floor" if s.ease < FLOOR else ""
        print(f"{s.template:<{width}}  {s.ease:6.1f}  {s.words:4d} words{flag}")
    average = sum(s.ease for s in scores) / len(scores)
    lowest = min(s.ease for s in scores)
    print(f"\n{len(scores)} partner-facing messages")
    print(
        f"readability: average {average:.1f} (budget >= {AVERAGE_BUDGET:.0f}), "
        f"lowest {lowest:.1f} (floor {FLOOR:.0f})"
    )
    return 0 if average >= AVERAGE_BUDGET and lowest >= FLOOR else 1


if __name__ == "__main__":
    raise SystemExit(main())
