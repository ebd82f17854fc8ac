"""Partner-facing messages are plain English: Flesch reading ease averages >= 70, none < 50."""

from __future__ import annotations

from bench.readability import AVERAGE_BUDGET, FLOOR, partner_facing, score_all


def test_partner_facing_messages_are_easy_to_read() -> None:
    scores = score_all("en-GB")
    assert len(scores) == len(partner_facing("en-GB")) > 0
    average = sum(s.ease for s in scores) / len(scores)
    hard = [f"{s.template} ({s.ease:.0f})" for s in scores if s.ease < FLOOR]
    assert not hard, f"too hard to read: {hard}"
    assert average >= AVERAGE_BUDGET, f"average reading ease {average:.1f}"


def test_staff_templates_are_marked_and_left_out() -> None:
    names = partner_facing("en-GB")
    assert "errors/staff_alert" not in names
    assert "start/outsider" in names
