"""Joining by invite: what someone not enrolled is told, and the welcome of staff."""

from __future__ import annotations

from bot.menu import commands_for
from bot.partners.invites import RedeemOutcome
from bot.protocol import StudyProtocol
from bot.transport.view import View, render_view
from prompts import Prompts

#: The reply to a code that enrolled no one, by outcome.
REFUSALS = {
    RedeemOutcome.UNKNOWN: "invite/unknown",
    RedeemOutcome.EXPIRED: "invite/expired",
    RedeemOutcome.USED: "invite/used",
}


def private_only(prompts: Prompts) -> View:
    """Said once in a group the bot was added to, before it leaves: no study content."""
    return render_view(prompts, "start/private_only")


def outsider(prompts: Prompts) -> View:
    """The one short neutral reply to someone not enrolled."""
    return render_view(prompts, "start/outsider")


def refused(prompts: Prompts, outcome: RedeemOutcome) -> View:
    """An invite code that was unknown, expired or used."""
    return render_view(prompts, REFUSALS[outcome])


def too_many_tries(prompts: Prompts) -> View:
    """After too many wrong codes: ask the connector (said once, then silence)."""
    return render_view(prompts, "invite/too_many")


def welcome_staff(prompts: Prompts, protocol: StudyProtocol, *, name: str, role: str) -> View:
    """A connector or researcher has just joined with their invite."""
    return render_view(
        prompts,
        "invite/welcome_staff",
        name=name,
        study=protocol.study.name,
        role=role,
        commands=commands_for(prompts, role),
    )


def already_enrolled(prompts: Prompts, *, name: str, staff: bool) -> View:
    """``/start CODE`` from someone already set up: the code stays unused."""
    return render_view(prompts, "invite/already_enrolled", name=name, staff=staff)
