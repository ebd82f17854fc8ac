"""When handling something fails: the alert to the connectors and the apology to the person."""

from __future__ import annotations

from bot.transport.view import View, render_view
from prompts import Prompts


def failure_alert(prompts: Prompts, *, reference: str, error: BaseException) -> View:
    """To the connectors: something failed (a reference and the error's type, nothing said)."""
    return render_view(
        prompts, "errors/staff_alert", reference=reference, error_type=type(error).__name__
    )


def sorry(prompts: Prompts) -> View:
    """To the person whose message could not be handled."""
    return render_view(prompts, "errors/user_sorry")
