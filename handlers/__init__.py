"""python-telegram-bot handlers, one module per feature, registered in one ordered list.

Order matters. Group -2: the gate, which stops updates from outsiders (an invite code is let
through to enrolment). Group -1: onboarding, which takes over while a partner is setting up.
Group 0: the features, first match wins; the fallback must stay last.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from handlers import (
    checkin,
    enrol,
    errors,
    fallback,
    gate,
    help,
    journey,
    log,
    meetings,
    membership,
    mydata,
    onboarding,
    partners,
    pause,
    preferences,
    safeguarding,
    staff_text,
    start,
    stats,
    withdraw,
    yousaid,
)

GATE_GROUP = -2
ONBOARDING_GROUP = -1


def register(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Attach every handler, in order, and the error handler."""
    application.add_handlers(gate.HANDLERS, group=GATE_GROUP)
    application.add_handlers(onboarding.HANDLERS, group=ONBOARDING_GROUP)
    application.add_handlers(
        [
            *enrol.HANDLERS,  # /start CODE from someone already enrolled
            *start.HANDLERS,  # /start: welcome back
            *help.HANDLERS,  # /help
            *safeguarding.HANDLERS,  # connectors' "I'm on it" on an alert
            *checkin.HANDLERS,  # /checkin, answer buttons, text and voice answers
            *journey.HANDLERS,  # /journey
            *mydata.HANDLERS,  # /mydata
            *preferences.HANDLERS,  # /settings
            *pause.HANDLERS,  # /pause, /resume
            *withdraw.HANDLERS,  # /withdraw
            *partners.HANDLERS,  # /partners, the roster's pages and a partner's card (pt:)
            *stats.HANDLERS,  # /stats and its period buttons (st:)
            *yousaid.HANDLERS,  # /yousaid and its buttons (ys:)
            *log.HANDLERS,  # /log, its buttons (partners lg:, connectors lc:, review iv:)
            # connectors' typed text for an open draft (log, you said); else /meeting's
            *staff_text.HANDLERS,
            # /meeting (connectors, with its typed steps: connectors' text only, so it
            # must come before the fallback), /meetings and answer buttons (partners)
            *meetings.HANDLERS,
            *membership.HANDLERS,  # blocked / unblocked
            *fallback.HANDLERS,  # must stay last: anything no feature handled
        ]
    )
    application.add_error_handler(errors.on_error)
