"""Meetings: arranging them, partners' answers and attendance, and every meeting message.

The room, module by module (each imports only those above it):

* :mod:`~bot.meetings.rules`: limits, tidy typed text, groups and zones, who a meeting is
  for, :class:`MeetingError` and what an answer button did;
* :mod:`~bot.meetings.typed_dates`: reading a date and time a connector typed;
* :mod:`~bot.meetings.words`: a meeting's values in words (length, offsets, groups, when);
* :mod:`~bot.meetings.callbacks`: what the meeting buttons carry (``mt:``, ``mc:``);
* :mod:`~bot.meetings.views`: every meeting message, text and buttons, for the bot and
  ``companion preview`` alike;
* :mod:`~bot.meetings.arranging`: create, change and cancel, telling those who knew;
* :mod:`~bot.meetings.answers`: partners' ``/meetings`` and their yes / no / maybe;
* :mod:`~bot.meetings.attendance`: who came, and the involvement log;
* :mod:`~bot.meetings.draft`: the connector's ``/meeting``, step by step.

The reads they share are in :mod:`storage.queries.meetings`. What the rest of the bot (the
command line, the due runner) and the tests use is named here, so ``from bot import
meetings`` is enough for them.
"""

from bot.meetings.answers import record_response, upcoming_for_partner
from bot.meetings.arranging import (
    ChangeResult,
    after_quiet_hours,
    all_meetings,
    cancel_meeting,
    change_meeting,
    create_meeting,
)
from bot.meetings.attendance import attendance_sheet, mark_attendance
from bot.meetings.callbacks import callback_data, parse_callback
from bot.meetings.draft import drop_draft, get_draft, save_draft, start_draft
from bot.meetings.rules import (
    MeetingError,
    ResponseOutcome,
    ResponseResult,
    check_groups,
    meeting_zone,
)
from bot.meetings.typed_dates import parse_start
from bot.meetings.views import AttendanceRow, reminder_message
from bot.meetings.words import group_words, length_words, offset_words, reminder_offsets_words
from storage.queries.meetings import answer_counts, answer_of, count_invitees, invitees

__all__ = [
    "AttendanceRow",
    "ChangeResult",
    "MeetingError",
    "ResponseOutcome",
    "ResponseResult",
    "after_quiet_hours",
    "all_meetings",
    "answer_counts",
    "answer_of",
    "attendance_sheet",
    "callback_data",
    "cancel_meeting",
    "change_meeting",
    "check_groups",
    "count_invitees",
    "create_meeting",
    "drop_draft",
    "get_draft",
    "group_words",
    "invitees",
    "length_words",
    "mark_attendance",
    "meeting_zone",
    "offset_words",
    "parse_callback",
    "parse_start",
    "record_response",
    "reminder_message",
    "reminder_offsets_words",
    "save_draft",
    "start_draft",
    "upcoming_for_partner",
]
