"""The export's row making: local times an hour at a time, and CSV fields quoted by hand.

Both are shortcuts for a million rows (see ``bot.research.rows``); these tests hold them to
the slow, obvious way: ``zoneinfo`` for every time, and the ``csv`` module reading them back.
"""

from __future__ import annotations

import csv
import io
import struct
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.research.rows import LocalClock, csv_field, csv_line, local_time

ZONES = [
    "Europe/London",  # the default: summer time from the last Sunday in March, 01:00 UTC
    "America/New_York",
    "Asia/Kolkata",  # +05:30: never the hourly shortcut
    "America/St_Johns",  # -03:30 / -02:30, changing at 02:00 local: half past the UTC hour
    "Australia/Lord_Howe",  # changes by half an hour
    "Pacific/Chatham",  # +12:45 / +13:45
    "UTC",
]


def _utc_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("name", ZONES)
def test_the_clock_agrees_with_zoneinfo_all_year_round(name: str) -> None:
    zone = ZoneInfo(name)
    clock = LocalClock(zone)
    moment = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    end = datetime(2026, 1, 2, tzinfo=UTC)
    step = timedelta(minutes=17, seconds=13)  # lands on every minute of the hour in turn
    while moment < end:
        text = _utc_text(moment)
        assert clock.time(text) == local_time(text, zone), text
        assert clock.date(text) == moment.astimezone(zone).date().isoformat(), text
        moment += step


@pytest.mark.parametrize("name", ZONES)
def test_every_second_around_a_change_of_offset(name: str) -> None:
    """Each change of 2025, a minute either side of it, second by second."""
    zone = ZoneInfo(name)
    clock = LocalClock(zone)
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    changes = []
    while moment.year == 2025:
        later = moment + timedelta(minutes=15)
        if moment.astimezone(zone).utcoffset() != later.astimezone(zone).utcoffset():
            changes.append(later)
        moment = later
    for change in changes:
        for second in range(-16 * 60 - 60, 60):
            text = _utc_text(change + timedelta(seconds=second))
            assert clock.time(text) == local_time(text, zone), text
    if name not in ("Asia/Kolkata", "UTC"):
        assert len(changes) == 2, "the test saw the year's two changes"


def _zone_changing_at(moment: datetime) -> ZoneInfo:
    """A made-up zone (a TZif file) going from +01:00 to +02:00 at ``moment``."""
    types = [(3600, 0, 0), (7200, 1, 4)]
    body = b"TZif" + b"\0" * 16 + struct.pack(">6l", 0, 0, 0, 1, len(types), 8)
    body += struct.pack(">l", int(moment.timestamp())) + b"\x01"
    body += b"".join(struct.pack(">lBB", *t) for t in types) + b"AAA\0BBB\0"
    return ZoneInfo.from_file(io.BytesIO(body), key="Test/HalfPast")


def test_a_change_in_the_middle_of_a_utc_hour_between_whole_hours() -> None:
    """No zone does this today, but a rule could: the hour it happens in is read time by time."""
    change = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
    zone = _zone_changing_at(change)
    clock = LocalClock(zone)
    for second in range(-3600, 3600, 7):
        text = _utc_text(change + timedelta(seconds=second))
        assert clock.time(text) == local_time(text, zone), text
    assert clock.time("2025-06-01T12:45:00Z") == "2025-06-01T14:45:00+02:00"


def test_times_not_in_the_queries_form_and_missing_times() -> None:
    clock = LocalClock(ZoneInfo("Europe/London"))
    for text in ("2025-07-01T12:00:00+00:00", "2025-07-01T12:00:00.250000Z", "2025-07-01"):
        assert clock.time(text) == local_time(text, clock.zone)
    assert clock.time(None) == clock.time("") == clock.date(None) == ""


def test_the_clock_forgets_when_full_and_stays_right(monkeypatch) -> None:
    monkeypatch.setattr(LocalClock, "MAX_HOURS", 5)
    zone = ZoneInfo("Europe/London")
    clock = LocalClock(zone)
    for hour in range(24 * 10):
        text = _utc_text(datetime(2025, 3, 25, tzinfo=UTC) + timedelta(hours=hour, seconds=7))
        assert clock.time(text) == local_time(text, zone)
        assert len(clock._hours) <= 5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), min_size=2, max_size=6))
def test_fields_read_back_as_written(fields: list[str]) -> None:
    line = ",".join(map(csv_field, fields)) + "\n"
    assert list(csv.reader(io.StringIO(line, newline=""))) == [fields]


def test_only_fields_that_need_it_are_quoted() -> None:
    assert csv_field("plain words") == "plain words"
    assert csv_field("") == ""
    assert csv_field('say "hi", then go') == '"say ""hi"", then go"'
    assert csv_field("one\ntwo") == '"one\ntwo"'
    assert csv_field("carriage\rreturn") == '"carriage\rreturn"'


def test_a_line_of_mixed_values_reads_back_as_text() -> None:
    line = csv_line([1, None, "a, b", 2.5, "x\ry", True])
    assert line == '1,,"a, b",2.5,"x\ry",True\n'
    read = next(csv.reader(io.StringIO(line, newline="")))
    assert read == ["1", "", "a, b", "2.5", "x\ry", "True"]
