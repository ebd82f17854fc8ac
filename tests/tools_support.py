"""Helpers for the partners' own tools tests: a bot with a data folder and a secret key,
history rows made directly, and waiting for the bot to settle."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bot.protocol import StudyProtocol, Withdrawal, load_protocol
from bot.research import parts
from prompts import DEFAULT_STUDY_PATH
from storage.crypto import TextCipher
from storage.db import Database
from storage.models import Answer, Checkin, CheckinStatus
from storage.queries import research as research_queries
from tests.support import SECRET, running_companion, settle

CIPHER = TextCipher(SECRET)
__all__ = ["CIPHER", "SECRET", "running_companion", "settle"]


def protocol_with(data: str = "keep") -> StudyProtocol:
    """The shipped protocol with the given withdrawal data policy."""
    protocol = load_protocol(DEFAULT_STUDY_PATH)
    return protocol.model_copy(update={"withdrawal": Withdrawal(data=data)})


@dataclass
class Given:
    """One answer to put in a check-in: (question, number | choice | text), when."""

    question: str
    value: int | str | None
    at: datetime
    superseded: bool = False
    skipped: bool = False
    voice_path: str | None = None


async def add_checkin(
    db: Database,
    person_id: int,
    answers: Iterable[Given],
    *,
    key: str = "weekly",
    status: CheckinStatus = CheckinStatus.COMPLETED,
    when: datetime | None = None,
    encrypt: bool = True,
) -> int:
    """A check-in with ``answers`` written straight to the database; returns its id."""
    given = list(answers)
    due = when or (given[0].at if given else datetime.now(UTC))
    async with db.transaction() as session:
        checkin = Checkin(
            occurrence_key=f"{key}:{person_id}:{due.isoformat()}",
            person_id=person_id,
            checkin_key=key,
            status=status,
            due_at=due,
            opened_at=due,
            closes_at=due + timedelta(hours=48),
            completed_at=due if status == CheckinStatus.COMPLETED else None,
        )
        session.add(checkin)
        await session.flush()
        for item in given:
            answer = Answer(
                checkin_id=checkin.id,
                person_id=person_id,
                question_key=item.question,
                answered_at=item.at,
                superseded_at=item.at + timedelta(minutes=1) if item.superseded else None,
                skipped=item.skipped,
                voice_path=item.voice_path,
            )
            if item.voice_path:
                answer.voice_file_id = "VOICE-FILE-ID"
                answer.voice_duration = 4
            if isinstance(item.value, int):
                answer.value_number = item.value
            elif isinstance(item.value, str) and item.question in (
                "relationships",
                "meeting_felt",
            ):
                answer.value_choice = item.value
            elif isinstance(item.value, str):
                if encrypt:
                    answer.value_text, answer.text_encrypted = CIPHER.encrypt(item.value)
                else:
                    answer.value_text = item.value
            session.add(answer)
        return checkin.id


def day(month: int, dom: int, hour: int = 12) -> datetime:
    """A moment in 2025 (UTC)."""
    return datetime(2025, month, dom, hour, tzinfo=UTC)


def force_export_parts(monkeypatch: pytest.MonkeyPatch, cores: int) -> list[list[tuple[int, int]]]:
    """Every export counts as big on ``cores`` cores; returns each export's planned parts."""
    planned: list[list[tuple[int, int]]] = []
    real_plan = parts.plan

    def plan(
        span: research_queries.AnswerSpan, *, cores: int, **shares: float
    ) -> list[tuple[int, int]]:
        planned.append(real_plan(span, cores=cores, **shares))
        return planned[-1]

    monkeypatch.setattr(parts, "PART_MIN_ANSWERS", 1)
    monkeypatch.setattr(parts, "usable_cores", lambda: cores)
    monkeypatch.setattr(parts, "plan", plan)
    return planned
