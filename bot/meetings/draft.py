"""The connector's ``/meeting``, step by step, kept as a draft so a restart loses nothing.

``/meeting`` shows :func:`connector_menu`: plan a new meeting, change or cancel one coming up,
or mark who came to a recent one. A new meeting is a ``StaffDraft`` (kind "meeting") that
moves through its steps: groups (toggle buttons, then Done), title (typed), date and time
(typed, read in the first chosen group's time zone), length (buttons from the protocol),
place or video link (typed), then a summary to create or drop. Changing a meeting's time is a
draft too (typed time, then confirm).

:func:`on_button` takes every ``mc:`` button and :func:`on_text` the connector's typed text;
each returns a :class:`~bot.meetings.views.Reply` (a pop-up, new buttons, a message) built by
:mod:`bot.meetings.views`. Every button is checked against the draft or the database, so an
old or forged one answers politely and changes nothing:

* ``mc:new``: start a new meeting; ``mc:stop``: forget the draft (or just close a question);
* ``mc:g:<group key>`` / ``mc:g:*`` toggle a group / everyone; ``mc:gd``: done choosing;
* ``mc:len:<minutes>``: a length the protocol offers; ``mc:ok``: create it;
* ``mc:m:<id>``: one upcoming meeting; ``mc:t:<id>``: ask for its new time, ``mc:ty``: apply it;
  ``mc:x:<id>``: ask to cancel it, ``mc:xy:<id>``: cancel it;
* ``mc:a:<id>``: the attendance sheet of a recent meeting; ``mc:at:<id>:<person id>`` ticks or
  unticks one partner; ``mc:done`` closes the sheet.

Nothing here needs a Telegram update; every function takes the caller's session and never
commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.zones import zone_named
from bot.meetings import views
from bot.meetings.arranging import cancel_meeting, change_meeting, create_meeting
from bot.meetings.attendance import attendance_sheet, mark_attendance
from bot.meetings.callbacks import EVERYONE, parse_staff
from bot.meetings.rules import (
    PLACE_LIMIT,
    RECENT_DAYS,
    TITLE_LIMIT,
    MeetingError,
    meeting_zone,
    why_not_usable,
)
from bot.meetings.typed_dates import parse_start
from bot.protocol import StudyProtocol
from bot.text import clean_line
from bot.transport.callbacks import number
from bot.transport.view import View
from prompts import Prompts
from storage.models import Meeting, Person, Role, StaffDraft
from storage.queries import drafts
from storage.queries import meetings as queries

DRAFT_KIND = "meeting"
UPCOMING_LISTED = 8
RECENT_LISTED = 5


# -- the menu ----------------------------------------------------------------------------------


async def upcoming(
    session: AsyncSession, *, now: datetime, limit: int = UPCOMING_LISTED
) -> list[Meeting]:
    """Meetings that have not started and are not cancelled, soonest first."""
    return await queries.not_started(session, now=now, limit=limit)


async def recent(
    session: AsyncSession, *, now: datetime, days: int = RECENT_DAYS, limit: int = RECENT_LISTED
) -> list[Meeting]:
    """Meetings that started in the last ``days`` (not cancelled), latest first."""
    return await queries.started_since(session, now - timedelta(days=days), now=now, limit=limit)


async def connector_menu(session: AsyncSession, prompts: Prompts, *, now: datetime) -> View:
    """``/meeting``: the meetings coming up with their answers so far, and recent ones."""
    coming = [
        (meeting, await queries.answer_counts(session, meeting.id))
        for meeting in await upcoming(session, now=now)
    ]
    return views.connector_menu(prompts, coming, await recent(session, now=now))


# -- the connector's buttons and text ------------------------------------------------------------


@dataclass(frozen=True)
class _Turn:
    """One press or message of a connector: what every step needs."""

    session: AsyncSession
    protocol: StudyProtocol
    prompts: Prompts
    person: Person
    now: datetime

    def toast(self, key: str) -> views.Reply:
        """Only a pop-up, ``meetings.staff.<key>``."""
        return views.Reply(toast=views.staff_label(self.prompts, key))

    def out_of_date(self) -> views.Reply:
        """The pop-up for a button that no longer fits (nothing changes)."""
        return self.toast("out_of_date")

    def problem(self, reason: str) -> views.Reply:
        """The pop-up saying why a button cannot act on its meeting."""
        return views.Reply(toast=views.problem_toast(self.prompts, reason))

    async def draft_at(self, *steps: str) -> StaffDraft | None:
        """The connector's draft if it is at one of ``steps``."""
        draft = await get_draft(self.session, self.person.id, now=self.now)
        return draft if draft is not None and draft.step in steps else None

    async def meeting(self, raw_id: str) -> Meeting | None:
        """The meeting a button names, or None."""
        meeting_id = number(raw_id)
        return (
            await queries.meeting_by_id(self.session, meeting_id)
            if meeting_id is not None
            else None
        )


async def on_text(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    person: Person,
    text: str,
    *,
    now: datetime,
) -> views.Reply | None:
    """Typed text from a connector: the next step of their ``/meeting`` (None: none is open)."""
    turn = _Turn(session, protocol, prompts, person, now)
    draft = await get_draft(session, person.id, now=now)
    if draft is None:
        return None
    step = draft.step
    if step in ("title", "place"):
        limit = TITLE_LIMIT if step == "title" else PLACE_LIMIT
        cleaned = clean_line(text, limit)
        if cleaned is None:
            return views.Reply(message=views.bad_text(prompts, limit))
        if step == "title":
            save_draft(draft, "start", now=now, title=cleaned)
            return views.Reply(message=views.ask_start(prompts, draft.data["timezone"], now=now))
        save_draft(draft, "confirm", now=now, place=cleaned)
        return views.Reply(message=await _summary(turn, draft))
    if step not in ("start", "change_start"):
        return views.Reply(message=views.use_buttons(prompts))
    zone_name = draft.data["timezone"]
    try:
        starts_at = parse_start(prompts, text, zone_named(zone_name), now=now)
    except MeetingError as exc:
        return views.Reply(message=views.bad_start(prompts, exc.reason, zone_name, now=now))
    if step == "start":
        save_draft(draft, "length", now=now, start=starts_at.isoformat())
        return views.Reply(message=views.ask_length(prompts, protocol))
    meeting = await queries.meeting_by_id(session, int(draft.data["meeting_id"]))
    problem = why_not_usable(meeting, now)
    if problem is not None or meeting is None:
        await drop_draft(session, person.id)
        return views.Reply(message=views.problem(prompts, problem or "gone"))
    save_draft(draft, "change_confirm", now=now, start=starts_at.isoformat())
    told = len(await queries.told_about(session, meeting))
    return views.Reply(
        message=views.confirm_change(
            prompts, meeting, starts_at=starts_at, zone_name=zone_name, told=told
        )
    )


async def on_button(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    person: Person,
    data: str | None,
    *,
    now: datetime,
) -> views.Reply:
    """Every ``mc:`` button (see the module docstring): checked, then acted on."""
    turn = _Turn(session, protocol, prompts, person, now)
    action, args = parse_staff(data)
    act = _ACTIONS.get((action, len(args)))
    if act is None:
        return turn.out_of_date()
    return await act(turn, args)


async def _summary(turn: _Turn, draft: StaffDraft) -> View:
    data = draft.data
    groups: list[str] = [] if data.get("everyone") else list(data.get("groups", []))
    return views.summary(
        turn.prompts,
        turn.protocol,
        title=data["title"],
        starts_at=datetime.fromisoformat(data["start"]),
        zone_name=data["timezone"],
        length_minutes=int(data["length"]),
        place=data["place"],
        groups=groups,
        count=await queries.count_invitees(turn.session, groups),
    )


# -- a new meeting -------------------------------------------------------------------------------


async def _new(turn: _Turn, args: list[str]) -> views.Reply:
    zone = meeting_zone(turn.protocol, [])
    await start_draft(
        turn.session,
        turn.person.id,
        "groups",
        {"groups": [], "everyone": False, "timezone": zone},
        now=turn.now,
    )
    return views.Reply(message=views.ask_groups(turn.prompts, turn.protocol))


async def _toggle_group(turn: _Turn, args: list[str]) -> views.Reply:
    draft = await turn.draft_at("groups")
    if draft is None:
        return turn.out_of_date()
    key = args[0]
    chosen: list[str] = list(draft.data.get("groups", []))
    everyone = bool(draft.data.get("everyone"))
    if key == EVERYONE:
        everyone, chosen = not everyone, []
    elif turn.protocol.group(key) is not None:
        chosen = [k for k in chosen if k != key] if key in chosen else [*chosen, key]
        everyone = False
    else:
        return turn.out_of_date()
    save_draft(
        draft,
        "groups",
        now=turn.now,
        groups=chosen,
        everyone=everyone,
        timezone=meeting_zone(turn.protocol, chosen),  # the first one chosen
    )
    keyboard = views.groups_keyboard(turn.prompts, turn.protocol, chosen, everyone)
    return views.Reply(change_buttons=True, buttons=keyboard)


async def _groups_done(turn: _Turn, args: list[str]) -> views.Reply:
    draft = await turn.draft_at("groups")
    if draft is None:
        return turn.out_of_date()
    if not draft.data.get("groups") and not draft.data.get("everyone"):
        return turn.toast("pick_group")
    return _ask_typed(turn, draft, "title")


def _ask_typed(turn: _Turn, draft: StaffDraft, step: str, **data: object) -> views.Reply:
    """A button moved the draft on to a typed step: close the buttons, ask for the text."""
    save_draft(draft, step, now=turn.now, **data)
    return views.Reply(change_buttons=True, message=views.ask_typed(turn.prompts, step))


async def _length(turn: _Turn, args: list[str]) -> views.Reply:
    draft = await turn.draft_at("length")
    if draft is None:
        return turn.out_of_date()
    minutes = number(args[0])
    if minutes is None or minutes not in turn.protocol.meetings.length_choices_minutes:
        return turn.out_of_date()
    return _ask_typed(turn, draft, "place", length=minutes)


async def _create(turn: _Turn, args: list[str]) -> views.Reply:
    draft = await turn.draft_at("confirm")
    if draft is None:
        return turn.out_of_date()
    data, now, prompts = draft.data, turn.now, turn.prompts
    try:
        meeting = await create_meeting(
            turn.session,
            turn.protocol,
            title=data["title"],
            starts_at=datetime.fromisoformat(data["start"]),
            length_minutes=int(data["length"]),
            place=data["place"],
            groups=[] if data.get("everyone") else list(data.get("groups", [])),
            timezone=data["timezone"],
            created_by=turn.person.id,
            now=now,
        )
    except MeetingError as exc:
        if exc.reason == "past":
            save_draft(draft, "start", now=now)
            return views.Reply(message=views.bad_start(prompts, "past", data["timezone"], now=now))
        await drop_draft(turn.session, turn.person.id)
        return views.Reply(message=views.problem(prompts, exc.reason))
    await drop_draft(turn.session, turn.person.id)
    count = len(await queries.invitees(turn.session, meeting))
    return views.Reply(
        toast=views.staff_label(prompts, "saved"),
        change_buttons=True,
        message=views.created(prompts, turn.protocol, meeting, count=count),
    )


async def _stop(turn: _Turn, args: list[str]) -> views.Reply:
    dropped = await drop_draft(turn.session, turn.person.id)
    return views.Reply(
        toast=views.staff_label(turn.prompts, "stopped"),
        change_buttons=True,
        message=views.discarded(turn.prompts) if dropped else None,
    )


# -- a meeting coming up: change its time, or cancel it ------------------------------------------


async def _usable_meeting(
    turn: _Turn, raw_id: str, *, started: bool = False
) -> Meeting | views.Reply:
    """The meeting a button names, or the pop-up saying why the button cannot act on it."""
    meeting = await turn.meeting(raw_id)
    problem = why_not_usable(meeting, turn.now, started=started)
    if problem is not None or meeting is None:
        return turn.problem(problem or "gone")
    return meeting


async def _manage(turn: _Turn, args: list[str]) -> views.Reply:
    meeting = await _usable_meeting(turn, args[0])
    if isinstance(meeting, views.Reply):
        return meeting
    counts = await queries.answer_counts(turn.session, meeting.id)
    return views.Reply(message=views.manage(turn.prompts, turn.protocol, meeting, counts))


async def _change_time(turn: _Turn, args: list[str]) -> views.Reply:
    meeting = await _usable_meeting(turn, args[0])
    if isinstance(meeting, views.Reply):
        return meeting
    await start_draft(
        turn.session,
        turn.person.id,
        "change_start",
        {"meeting_id": meeting.id, "timezone": meeting.timezone},
        now=turn.now,
    )
    return views.Reply(
        message=views.ask_start(turn.prompts, meeting.timezone, now=turn.now, meeting=meeting)
    )


async def _apply_change(turn: _Turn, args: list[str]) -> views.Reply:
    draft = await turn.draft_at("change_confirm")
    if draft is None:
        return turn.out_of_date()
    meeting = await queries.meeting_by_id(turn.session, int(draft.data["meeting_id"]))
    if meeting is None:
        await drop_draft(turn.session, turn.person.id)
        return turn.problem("gone")
    try:
        result = await change_meeting(
            turn.session,
            turn.protocol,
            turn.prompts,
            meeting,
            starts_at=datetime.fromisoformat(draft.data["start"]),
            by_person_id=turn.person.id,
            now=turn.now,
        )
    except MeetingError as exc:
        await drop_draft(turn.session, turn.person.id)
        reason = "started" if exc.reason == "nothing" else exc.reason
        return views.Reply(change_buttons=True, message=views.problem(turn.prompts, reason))
    await drop_draft(turn.session, turn.person.id)
    return views.Reply(
        toast=views.staff_label(turn.prompts, "saved"),
        change_buttons=True,
        message=views.meeting_changed(turn.prompts, meeting, notified=result.notified),
    )


async def _ask_cancel(turn: _Turn, args: list[str]) -> views.Reply:
    meeting = await _usable_meeting(turn, args[0])
    if isinstance(meeting, views.Reply):
        return meeting
    told = len(await queries.told_about(turn.session, meeting))
    return views.Reply(message=views.confirm_cancel(turn.prompts, meeting, told=told))


async def _cancel(turn: _Turn, args: list[str]) -> views.Reply:
    meeting = await turn.meeting(args[0])
    if meeting is None or meeting.cancelled_at is not None:
        return turn.problem("gone" if meeting is None else "cancelled")
    notified = await cancel_meeting(
        turn.session,
        turn.protocol,
        turn.prompts,
        meeting,
        by_person_id=turn.person.id,
        now=turn.now,
    )
    return views.Reply(
        toast=views.staff_label(turn.prompts, "saved"),
        change_buttons=True,
        message=views.meeting_cancelled(turn.prompts, meeting, notified=notified),
    )


# -- a recent meeting: who came ------------------------------------------------------------------


async def _attendance(turn: _Turn, args: list[str]) -> views.Reply:
    meeting = await _usable_meeting(turn, args[0], started=True)
    if isinstance(meeting, views.Reply):
        return meeting
    rows = await attendance_sheet(turn.session, meeting)
    return views.Reply(message=views.attendance(turn.prompts, meeting, rows))


async def _toggle_attended(turn: _Turn, args: list[str]) -> views.Reply:
    meeting = await turn.meeting(args[0])
    problem = why_not_usable(meeting, turn.now, started=True)
    partner_id = number(args[1])
    partner = await turn.session.get(Person, partner_id) if partner_id is not None else None
    if problem is not None or meeting is None:
        return turn.problem(problem or "gone")
    if partner is None or partner.role != Role.PARTNER:
        return turn.out_of_date()
    sheet = await attendance_sheet(turn.session, meeting)
    was = next((r.attended for r in sheet if r.person_id == partner.id), False)
    await mark_attendance(turn.session, meeting, partner, not was, turn.person.id, now=turn.now)
    rows = await attendance_sheet(turn.session, meeting)
    return views.Reply(
        toast=views.staff_label(turn.prompts, "did_not_come" if was else "came"),
        change_buttons=True,
        buttons=views.sheet_keyboard(turn.prompts, meeting, rows),
    )


async def _sheet_done(turn: _Turn, args: list[str]) -> views.Reply:
    return views.Reply(toast=views.staff_label(turn.prompts, "saved"), change_buttons=True)


_ACTIONS: dict[tuple[str, int], Callable[[_Turn, list[str]], Awaitable[views.Reply]]] = {
    ("new", 0): _new,
    ("stop", 0): _stop,
    ("g", 1): _toggle_group,
    ("gd", 0): _groups_done,
    ("len", 1): _length,
    ("ok", 0): _create,
    ("m", 1): _manage,
    ("t", 1): _change_time,
    ("ty", 0): _apply_change,
    ("x", 1): _ask_cancel,
    ("xy", 1): _cancel,
    ("a", 1): _attendance,
    ("at", 2): _toggle_attended,
    ("done", 0): _sheet_done,
}


# -- the draft itself --------------------------------------------------------------------------


async def get_draft(session: AsyncSession, person_id: int, *, now: datetime) -> StaffDraft | None:
    """The connector's unfinished ``/meeting``, if any (one left over a day is forgotten)."""
    return await drafts.get(session, person_id, DRAFT_KIND, now=now)


async def start_draft(
    session: AsyncSession, person_id: int, step: str, data: dict[str, Any], *, now: datetime
) -> StaffDraft:
    """Begin a ``/meeting`` draft at ``step`` (replacing any other draft of this person)."""
    return await drafts.start(session, person_id, DRAFT_KIND, step, data, now=now)


def save_draft(draft: StaffDraft, step: str, *, now: datetime, **values: Any) -> None:
    """Move a draft to ``step`` with ``values`` added to its data."""
    drafts.save(draft, step, now=now, **values)


async def drop_draft(session: AsyncSession, person_id: int) -> bool:
    """Forget the connector's ``/meeting`` draft; True if there was one."""
    return await drafts.drop(session, person_id, DRAFT_KIND)
