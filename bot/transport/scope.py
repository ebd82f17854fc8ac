"""What belongs to one update while the inbox worker processes it.

The worker opens one transaction per batch and gives each update an :class:`UpdateScope`:
its session, the sender as the batch loaded them, and the Bot API calls to make once the
update has committed. Handlers reach it through ``bot.context.BotContext``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PartnerProfile, Person, TelegramIdentity

#: A Bot API call to make once the update's transaction has committed.
AfterCommit = Callable[[], Awaitable[object]]


@dataclass
class UpdateScope:
    """What belongs to one update while it is processed."""

    update_id: int
    session: AsyncSession
    person: Person | None = None
    profile: PartnerProfile | None = None
    identity: TelegramIdentity | None = None  # the sender's, when the batch loaded it
    #: Whether the sender had a check-in open when the batch began (None: not known).
    had_open_checkin: bool | None = None
    error: BaseException | None = None
    replies: int = 0
    #: Calls made after the commit, in order. Not inside the transaction: the batch holds the
    #: database's write lock, and a Telegram round trip there held every other writer back
    #: (the answer to a button press took twice as long end to end). And a toast for a change
    #: that was then rolled back is never shown.
    after_commit: list[AfterCommit] = field(default_factory=list)


current_scope: ContextVar[UpdateScope | None] = ContextVar("companion_update_scope", default=None)


class NoUpdateScopeError(RuntimeError):
    """A handler asked for the update's session outside inbox processing."""
