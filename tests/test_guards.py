"""Every staff command and staff button is guarded, in one place (handlers/guards.py), and a
partner who tries one gets the kind "not for you" reply and nothing happens."""

from __future__ import annotations

from typing import Any

from telegram.ext import CallbackQueryHandler, CommandHandler

from handlers.guards import roles_of
from prompts import Prompts
from storage.models import Role, StaffDraft
from tests.factories import enrol
from tests.support import count, settle

# DESIGN.md's staff commands, and whatever the connectors' menu lists today.
DESIGN_STAFF_COMMANDS = {"broadcast", "meeting", "invite", "partners", "stats", "alerts", "export"}
MENU_STAFF_COMMANDS = set(Prompts().labels("commands.connector")) | (
    set(Prompts().labels("commands.staff")) - {"help"}
)
STAFF_COMMANDS = DESIGN_STAFF_COMMANDS | MENU_STAFF_COMMANDS
PARTNER = 9501


# The staff buttons' callback-data prefixes (pt: /partners, st: /stats, inv: /invite, lc: /log
# for a partner, iv: reviewing time, export: /export, ys: /yousaid, sg: "I'm on it", mc:
# /meeting, bc: /broadcast, al: /alerts, rl: "Message them").
STAFF_BUTTONS = {"pt", "st", "inv", "lc", "iv", "export", "ys", "sg", "mc", "bc", "al", "rl"}
# Buttons anyone enrolled may press, each checking the person itself: onboarding's steps and
# check-in answers (they belong to the person's own open onboarding or check-in).
UNGUARDED_BUTTONS = {"ob", "ci"}


def button_handlers(application: Any) -> dict[str | None, CallbackQueryHandler[Any, Any]]:
    """Every button handler registered, by its prefix (None: the catch-all fallback)."""
    found: dict[str | None, CallbackQueryHandler[Any, Any]] = {}
    for group in application.handlers.values():
        for handler in group:
            if isinstance(handler, CallbackQueryHandler):
                pattern = getattr(handler.pattern, "pattern", None)
                prefix = pattern.removeprefix("^").removesuffix(":") if pattern else None
                found[prefix] = handler
    return found


def command_handlers(application: Any) -> list[CommandHandler[Any, Any]]:
    """Every command handler registered, in every group."""
    return [
        handler
        for group in application.handlers.values()
        for handler in group
        if isinstance(handler, CommandHandler)
    ]


async def test_every_registered_staff_command_is_guarded_for_staff_only(companion) -> None:
    handlers = command_handlers(companion.application)
    registered = {command for handler in handlers for command in handler.commands}
    staff_here = STAFF_COMMANDS & registered
    assert "meeting" in staff_here, "the test must see at least the commands that exist"
    assert registered >= MENU_STAFF_COMMANDS, "every command in the staff menu is handled"
    for handler in handlers:
        if not handler.commands & STAFF_COMMANDS:
            continue
        roles = roles_of(handler.callback)
        assert roles is not None, f"/{sorted(handler.commands)} is not guarded"
        assert Role.PARTNER not in roles, f"/{sorted(handler.commands)} lets partners in"


async def test_every_registered_button_is_guarded_and_staff_buttons_for_staff_only(
    companion,
) -> None:
    found = button_handlers(companion.application)
    assert set(found) >= STAFF_BUTTONS, (
        f"staff buttons not registered: {STAFF_BUTTONS - set(found)}"
    )
    for prefix, handler in found.items():
        roles = roles_of(handler.callback)
        if prefix in STAFF_BUTTONS:
            assert roles is not None, f"{prefix}: is not guarded"
            assert Role.PARTNER not in roles, f"{prefix}: lets partners in"
        elif prefix is not None and prefix not in UNGUARDED_BUTTONS:
            # A new button must be guarded for its roles, or listed above with its reason.
            assert roles is not None, f"{prefix}: is not guarded and not listed"


async def test_a_partner_who_tries_a_staff_command_is_told_kindly_and_nothing_happens(
    companion, sandbox, database
) -> None:
    await enrol(database, PARTNER)
    user = sandbox.user(PARTNER, "Sam")
    registered = {c for h in command_handlers(companion.application) for c in h.commands}
    for command in sorted(STAFF_COMMANDS & registered):
        before = len(sandbox.sent_to(PARTNER))
        user.send_command(command)
        await settle(companion, sandbox)
        replies = [m["text"] for m in sandbox.sent_to(PARTNER)[before:]]
        assert replies == [Prompts().render("guards/not_for_you")], (command, replies)
    assert await count(database, StaffDraft) == 0


async def test_export_is_guarded_by_researcher_only(companion) -> None:
    [handler] = [h for h in command_handlers(companion.application) if "export" in h.commands]
    # Connectors pass the role check only to meet the protocol's connectors_may_export
    # (off by default; tests/test_export_telegram_e2e.py shows them refused).
    assert roles_of(handler.callback) == {Role.RESEARCHER, Role.CONNECTOR}
