"""How easy a message is to read: the Flesch reading ease of its text as Telegram shows it.

One function for everyone who scores wording (``companion preview`` and
``bench/readability.py``), so both give the same number for the same message. The HTML is
parsed the way Telegram parses it (tags dropped, entities decoded) before it is scored.

textstat is pinned to 0.7.8: later versions fetch a pronunciation dictionary from the internet
on first use and fail offline. It is imported only when something is scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.sandbox.html import parse_html

#: The first line of a template written for the study team rather than for partners.
STAFF_MARKER = "{# audience: staff #}"
#: Below this, the preview flags a message as hard to read (plain English scores 60 or more).
HARD_TO_READ_BELOW = 60.0
#: The scale a reading ease is given on. Flesch's formula itself runs past it (a few short
#: lines of one-syllable words score over 100), so scores are held to it, here only.
EASE_SCALE = (0.0, 100.0)


@dataclass(frozen=True)
class Reading:
    """A message's Flesch reading ease (higher is easier) and how many words it has."""

    ease: float
    words: int

    @property
    def hard(self) -> bool:
        """Whether the message is hard to read (below :data:`HARD_TO_READ_BELOW`)."""
        return self.ease < HARD_TO_READ_BELOW


def plain_text(html: str) -> str:
    """The text a person sees for a Telegram HTML message (raises on markup Telegram refuses)."""
    text, _entities = parse_html(html)
    return text


def as_sentences(text: str) -> str:
    """``text`` with each line ended as a sentence.

    A chat message is read line by line: a list of commands or crisis lines is a list of
    short items, not one long sentence, which is how Flesch would otherwise count it.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(line if line[-1] in ".!?:" else f"{line}." for line in lines)


def score_text(text: str) -> Reading:
    """The reading ease of plain ``text`` (each line counted as a sentence), on EASE_SCALE."""
    import textstat

    sentences = as_sentences(text)
    lowest, highest = EASE_SCALE
    ease = min(max(float(textstat.flesch_reading_ease(sentences)), lowest), highest)
    return Reading(ease, int(textstat.lexicon_count(sentences)))


def score_html(html: str) -> Reading:
    """The reading ease of a Telegram HTML message, as the person reads it."""
    return score_text(plain_text(html))


def is_staff_template(path: Path) -> bool:
    """Whether the template file at ``path`` is marked as written for the study team."""
    return path.read_text(encoding="utf-8").lstrip().startswith(STAFF_MARKER)
