"""``/pause`` and ``/resume``: the lengths of break offered, and what changed."""

from __future__ import annotations

from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.calendar.words import checkin_words, day_words
from bot.calendar.zones import zone_of
from bot.partners.pausing import pause_choices
from bot.protocol import StudyProtocol
from bot.transport.view import View, render_view
from prompts import Prompts
from storage.models import PartnerProfile


def length_words(prompts: Prompts, days: int) -> str:
    """A break's length as a button label: ``1 week``, ``2 weeks``, ``10 days``."""
    if days % 7 == 0:
        weeks = days // 7
        return prompts.label(
            "tools.pause.one_week" if weeks == 1 else "tools.pause.weeks", weeks=weeks
        )
    return prompts.label("tools.pause.one_day" if days == 1 else "tools.pause.days", days=days)


def pause_keyboard(prompts: Prompts, protocol: StudyProtocol) -> InlineKeyboardMarkup:
    """The ``/pause`` buttons: one per length offered (``pause:<days>``), then Cancel."""
    rows = [
        [InlineKeyboardButton(length_words(prompts, days), callback_data=f"pause:{days}")]
        for days in pause_choices(protocol)
    ]
    rows.append(
        [InlineKeyboardButton(prompts.label("tools.pause.cancel"), callback_data="pause:cancel")]
    )
    return InlineKeyboardMarkup(rows)


def choose(
    prompts: Prompts,
    protocol: StudyProtocol,
    profile: PartnerProfile,
    *,
    until: datetime | None = None,
) -> View:
    """The lengths of break offered (``until``: when the current break ends, if one is on)."""
    ends = day_words(prompts, until, zone_of(profile)) if until is not None else None
    return render_view(prompts, "pause/choose", pause_keyboard(prompts, protocol), until=ends)


def paused(prompts: Prompts, profile: PartnerProfile, *, until: datetime) -> View:
    """The break has started; nothing planned is sent until ``until``."""
    return render_view(prompts, "pause/paused", until=day_words(prompts, until, zone_of(profile)))


def not_paused(prompts: Prompts) -> View:
    """``/resume`` with no break on."""
    return render_view(prompts, "pause/not_paused")


def resumed(prompts: Prompts, protocol: StudyProtocol, profile: PartnerProfile) -> View:
    """The break is over; when their next weekly check-in is (if they chose a time)."""
    checkin = None
    if profile.checkin_weekday is not None and profile.checkin_time is not None:
        checkin = checkin_words(prompts, profile, protocol)
    return render_view(prompts, "pause/resumed", checkin=checkin)
