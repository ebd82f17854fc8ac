"""python-telegram-bot handlers, one module per feature, registered in one ordered list.

Order matters. Group -2: the gate, which stops updates from outsiders (an invite code is let
through to enrolment). Group -1: a forwarded message while a question waits for a partner's
own answer (it is not the answer), then onboarding, which takes over while a partner is setting
up.
Group 0: the features, first match wins; the fallback must stay last.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from handlers import (
    alerts,
    broadcast,
    checkin,
    desk,
    enrol,
    errors,
    export,
    fallback,
    forwarded,
    gate,
    help,
    invite,
    journey,
    log,
    meetings,
    membership,
    mydata,
    onboarding,
    partners,
    pause,
    preferences,
    relay,
    safeguarding,
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
    # A forwarded message is no one's answer, not even a name at onboarding's name step.
    application.add_handlers([*forwarded.HANDLERS, *onboarding.HANDLERS], group=ONBOARDING_GROUP)
    application.add_handlers(
        [
            *enrol.HANDLERS,  # /start CODE from someone already enrolled
            *start.HANDLERS,  # /start: welcome back
            *help.HANDLERS,  # /help
            *safeguarding.HANDLERS,  # connectors' "I'm on it" on an alert
            *relay.HANDLERS,  # /contact, and the partner's message after it
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
            *broadcast.HANDLERS,  # /broadcast (connectors) and its buttons
            *alerts.HANDLERS,  # /alerts (connectors) and its buttons
            *invite.HANDLERS,  # /invite (connectors) and its buttons
            # The connector's messages: answers to partners, broadcast content, alert notes,
            # the typed steps of /log and /yousaid drafts, then /meeting's (it must come
            # before meetings' own text handler)
            *desk.HANDLERS,
            # /meeting (connectors, with its typed steps: connectors' text only, so it
            # must come before the fallback), /meetings and answer buttons (partners)
            *meetings.HANDLERS,
            *export.HANDLERS,  # /export and its period buttons (researchers)
            *membership.HANDLERS,  # blocked / unblocked
            *fallback.HANDLERS,  # must stay last: anything no feature handled
        ]
    )
    application.add_error_handler(errors.on_error)
