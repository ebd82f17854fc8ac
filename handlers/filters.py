"""Custom python-telegram-bot filters that look at who sent an update.

Filters run synchronously, so they read the person and profile that the inbox worker loaded
into the update's scope before processing (``bot.context.current_scope``).
"""

from __future__ import annotations

from telegram import Message
from telegram.ext.filters import MessageFilter

from bot.context import current_scope


class AwaitingInput(MessageFilter):
    """Matches a message from a partner whose next free text answers ``prefix...``."""

    def __init__(self, prefix: str) -> None:
        super().__init__(name=f"AwaitingInput({prefix})")
        self.prefix = prefix

    def filter(self, message: Message) -> bool:
        """True when the sender's profile is waiting for input starting with the prefix."""
        scope = current_scope.get()
        if scope is None or scope.profile is None:
            return False
        awaiting = scope.profile.awaiting_input
        return awaiting is not None and awaiting.startswith(self.prefix)


class Onboarding(MessageFilter):
    """Matches a message from a partner who has not finished onboarding."""

    def filter(self, message: Message) -> bool:
        """True while the sender's onboarding is unfinished."""
        scope = current_scope.get()
        return (
            scope is not None and scope.profile is not None and scope.profile.onboarded_at is None
        )


class FromRole(MessageFilter):
    """Matches a message from an enrolled person holding ``role`` (read from the scope)."""

    def __init__(self, role: str) -> None:
        super().__init__(name=f"FromRole({role})")
        self.role = role

    def filter(self, message: Message) -> bool:
        """True when the sender holds the role."""
        scope = current_scope.get()
        return scope is not None and scope.person is not None and scope.person.role == self.role
