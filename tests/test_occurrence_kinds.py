"""The composition root gives every kind of occurrence the rules of the room that owns it.

A kind without rules would be skipped as ``unknown_kind`` when it falls due: a partner would
silently never get that check-in, nudge, reminder or reflection.
"""

from __future__ import annotations

from bot.app import occurrence_kinds
from bot.protocol import load_protocol
from bot.settings import DEFAULT_STUDY_PATH
from prompts import Prompts
from storage.models import OccurrenceKind

PROTOCOL = load_protocol(DEFAULT_STUDY_PATH)
PROMPTS = Prompts(PROTOCOL.study.locale)


def test_every_kind_of_occurrence_is_handled_by_some_room() -> None:
    kinds = occurrence_kinds(PROTOCOL, PROMPTS)
    assert [k for k in OccurrenceKind if kinds.rules_for(k) is None] == []
