"""Replies that belong to no one feature: welcome back, help, not understood, "in your own
words" (a forwarded message is no answer), not for you."""

from __future__ import annotations

from bot.menu import commands_for
from bot.protocol import StudyProtocol
from bot.transport.view import View, render_view
from prompts import Prompts


def welcome_back(prompts: Prompts, *, name: str) -> View:
    """``/start`` from someone already enrolled."""
    return render_view(prompts, "start/welcome_back", name=name)


def help_message(prompts: Prompts, protocol: StudyProtocol, role: str | None) -> View:
    """``/help``: the commands of ``role`` and where to get help at any hour."""
    return render_view(
        prompts,
        "help/member",
        commands=commands_for(prompts, role),
        crisis_resources=protocol.crisis_resources,
    )


def not_understood(prompts: Prompts) -> View:
    """Anything no feature handles: a kind pointer to /help."""
    return render_view(prompts, "fallback/not_understood")


def own_words(prompts: Prompts, *, voice: bool) -> View:
    """A forwarded message while a question waits for the partner's own answer: asked to type
    it (or, where a voice note is an answer, say it) in their own words."""
    return render_view(prompts, "fallback/own_words", voice=voice)


def not_for_you(prompts: Prompts) -> View:
    """A command or button for a role the person does not hold."""
    return render_view(prompts, "guards/not_for_you")


def finish_setup_first(prompts: Prompts) -> View:
    """A partner tool used before onboarding is finished."""
    return render_view(prompts, "settings/finish_setup_first")


def unreachable(prompts: Prompts, *, pseudonym: str) -> View:
    """To the connectors: a partner can no longer be reached (they blocked the bot)."""
    return render_view(prompts, "errors/unreachable", pseudonym=pseudonym)
