"""Safeguarding: the crisis reply to a partner, and the alert and "picked up" to connectors."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.protocol import StudyProtocol
from bot.transport.view import View, render_view
from prompts import Prompts

ACK_PREFIX = "sg:ack:"


def staff_time(moment: datetime, zone: ZoneInfo) -> str:
    """A short local time for staff, such as "Tue 3 Jun, 14:05"."""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"


def ack_callback(alert_id: int) -> str:
    """Callback data of the "I'm on it" button."""
    return f"{ACK_PREFIX}{alert_id}"


def ack_keyboard(prompts: Prompts, alert_id: int) -> InlineKeyboardMarkup:
    """The alert's one button, "I'm on it" (``sg:ack:<alert id>``)."""
    button = InlineKeyboardButton(
        prompts.label("safeguarding.on_it"), callback_data=ack_callback(alert_id)
    )
    return InlineKeyboardMarkup([[button]])


def crisis(prompts: Prompts, protocol: StudyProtocol, *, name: str) -> View:
    """The immediate reply to worrying words: crisis resources, and when the team is around."""
    return render_view(
        prompts,
        "safeguarding/crisis",
        name=name,
        resources=protocol.crisis_resources,
        monitored_hours=protocol.study.monitored_hours,
    )


def alert(
    prompts: Prompts,
    *,
    alert_id: int,
    name: str,
    pseudonym: str,
    rule: str,
    source: str,
    raised_at: datetime,
    zone: ZoneInfo,
    crisis_sent: bool,
) -> View:
    """To the connectors: who, which rule, when (their local time), with "I'm on it".

    Deliberately no excerpt of what they wrote (see :func:`bot.partners.safeguarding.raise_alert`).
    """
    kind, _, detail = rule.partition(":")
    return render_view(
        prompts,
        "safeguarding/alert",
        ack_keyboard(prompts, alert_id),
        name=name,
        pseudonym=pseudonym,
        kind=kind,
        detail=detail,
        source=source,
        when=staff_time(raised_at, zone),
        crisis_sent=crisis_sent,
    )


def picked_up(prompts: Prompts, *, by: str, name: str, pseudonym: str) -> View:
    """To the other connectors: ``by`` has picked the alert about ``name`` up."""
    return render_view(prompts, "safeguarding/picked_up", by=by, name=name, pseudonym=pseudonym)
