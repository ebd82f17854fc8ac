"""The typed context every handler receives, and the per-update unit of work.

Handlers reach the database, settings and prompts through ``context`` instead of indexing
``bot_data`` by string. While the inbox worker processes an update, ``context.session`` is the
one transaction that also marks the update done, so an update's effects commit exactly once.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackContext, ExtBot

from bot.outbox import add_reply
from bot.protocol import StudyProtocol
from bot.settings import Settings
from prompts import Prompts
from storage.db import Database
from storage.models import PartnerProfile, Person

if TYPE_CHECKING:
    from bot.outbox import OutboxSender
    from bot.ratelimit import SendLimiter
    from bot.scheduler import Scheduler

SERVICES_KEY = "companion.services"


@dataclass
class Services:
    """Long-lived objects the handlers use; kept out of any persistence."""

    settings: Settings
    db: Database
    prompts: Prompts
    protocol: StudyProtocol
    limiter: SendLimiter
    sender: OutboxSender | None = None
    scheduler: Scheduler | None = None


@dataclass
class UpdateScope:
    """What belongs to one update while it is processed."""

    update_id: int
    session: AsyncSession
    person: Person | None = None
    profile: PartnerProfile | None = None
    error: BaseException | None = None
    replies: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


current_scope: ContextVar[UpdateScope | None] = ContextVar("companion_update_scope", default=None)


class NoUpdateScopeError(RuntimeError):
    """A handler asked for the update's session outside inbox processing."""


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """CallbackContext with typed access to our services and the update's transaction."""

    @property
    def services(self) -> Services:
        """The shared services placed on the application at build time."""
        services: Services = self.application.bot_data[SERVICES_KEY]
        return services

    @property
    def settings(self) -> Settings:
        """The validated settings."""
        return self.services.settings

    @property
    def prompts(self) -> Prompts:
        """The wording, for rendering replies."""
        return self.services.prompts

    @property
    def protocol(self) -> StudyProtocol:
        """The study protocol."""
        return self.services.protocol

    @property
    def scope(self) -> UpdateScope:
        """The update being processed; raises outside inbox processing."""
        scope = current_scope.get()
        if scope is None:
            raise NoUpdateScopeError("no update is being processed in this task")
        return scope

    @property
    def session(self) -> AsyncSession:
        """The update's own transaction (committed with the inbox row)."""
        return self.scope.session

    @property
    def person(self) -> Person | None:
        """The enrolled person who sent the update, or None for an outsider."""
        return self.scope.person

    @property
    def profile(self) -> PartnerProfile | None:
        """The sender's partner profile (None for staff and outsiders)."""
        return self.scope.profile

    async def reply(
        self,
        update: Update,
        template: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        **values: Any,
    ) -> None:
        """Queue a reply to the update's chat, rendered from ``template``, in this transaction.

        The reply is sent by the outbox sender right after the transaction commits; its key is
        derived from the update id, so processing the same update twice can never reply twice.
        """
        chat = update.effective_chat
        if chat is None:
            return
        scope = self.scope
        scope.replies += 1
        person = scope.person
        await add_reply(
            scope.session,
            key=f"reply:{scope.update_id}:{scope.replies}",
            chat_id=chat.id,
            text=self.prompts.render(template, **values),
            reply_markup=reply_markup,
            person_id=person.id if person is not None else None,
        )


def services_of(application: Application[Any, Any, Any, Any, Any, Any]) -> Services:
    """The services stored on an application."""
    services: Services = application.bot_data[SERVICES_KEY]
    return services
