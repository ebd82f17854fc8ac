"""The typed context every handler receives, and the per-update unit of work.

Handlers reach the database, settings and prompts through ``context`` instead of indexing
``bot_data`` by string. While the inbox worker processes an update, ``context.session`` is the
one transaction that also marks the update done, so an update's effects commit exactly once.

Answering a pressed button and changing the buttons under a message are Telegram calls that
nothing waits for: handlers ask for them with :meth:`BotContext.answer_button` and
:meth:`BotContext.edit_buttons`, and the inbox worker makes them once the update's transaction
has committed (see :class:`UpdateScope`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import CallbackContext, ExtBot

from bot.partners.outsiders import OutsiderThrottle
from bot.protocol import StudyProtocol
from bot.settings import Settings
from bot.transport.outbox import add_reply
from bot.transport.scope import AfterCommit, NoUpdateScopeError, UpdateScope, current_scope
from bot.transport.view import View, render_view
from prompts import Prompts
from storage.db import Database
from storage.models import PartnerProfile, Person, TelegramIdentity
from storage.queries.people import identity_of

if TYPE_CHECKING:
    from bot.schedule.scheduler import Scheduler
    from bot.transport.ratelimit import SendLimiter
    from bot.transport.sender import OutboxSender

SERVICES_KEY = "companion.services"

log = logging.getLogger(__name__)


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
    #: When each outsider last got the neutral reply (see :mod:`bot.partners.outsiders`).
    outsider_replies: OutsiderThrottle = field(default_factory=OutsiderThrottle)


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

    async def identity(self) -> TelegramIdentity | None:
        """The sender's Telegram identity: the one the batch loaded, else read now."""
        scope = self.scope
        if scope.identity is None and scope.person is not None:
            scope.identity = await identity_of(scope.session, scope.person.id)
        return scope.identity

    async def sender_name(self) -> str:
        """The name we call the sender ("" for someone with no identity)."""
        identity = await self.identity()
        return identity.called if identity is not None else ""

    async def reply(
        self,
        update: Update,
        template: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        **values: Any,
    ) -> None:
        """Queue a reply rendered from ``template`` (see :meth:`send`)."""
        await self.send(update, render_view(self.prompts, template, reply_markup, **values))

    async def ask(
        self,
        update: Update,
        template: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        **values: Any,
    ) -> None:
        """Like :meth:`reply`, for a step of a conversation (see :meth:`send`)."""
        view = render_view(self.prompts, template, reply_markup, **values)
        await self.send(update, view, conversation_step=True)

    async def send(
        self, update: Update, view: View, *, conversation_step: bool = False, quotes: bool = False
    ) -> None:
        """Queue ``view`` as a reply to the update's chat, in this transaction.

        The reply is sent by the outbox sender right after the transaction commits; its key is
        derived from the update id, so processing the same update twice can never reply twice.
        ``conversation_step``: the person must answer it to go on, so if a crash or a timeout
        leaves its delivery unknown it is sent once more (see
        ``OutboxMessage.conversation_step``), and nobody is left waiting for the bot.
        ``quotes``: the text quotes someone's own words, cleared once sent (see
        :func:`bot.transport.outbox.enqueue`).
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
            text=view.text,
            reply_markup=view.markup,
            person_id=person.id if person is not None else None,
            conversation_step=conversation_step,
            quotes=quotes,
        )

    def after_commit(self, call: AfterCommit) -> None:
        """Make ``call`` once this update's transaction has committed (see
        :class:`UpdateScope`); it must handle its own errors."""
        self.scope.after_commit.append(call)

    def answer_button(
        self, update: Update, text: str | None = None, *, show_alert: bool = False
    ) -> None:
        """Answer the pressed button (``text``: its toast) once this update has committed."""
        query = update.callback_query
        if query is not None:
            self.scope.after_commit.append(partial(_answer, query, text, show_alert))

    def edit_buttons(self, update: Update, markup: InlineKeyboardMarkup | None) -> None:
        """Replace the buttons under the pressed message (None removes them) after the commit.

        A message too old to be changed (Telegram sends it as inaccessible) is left alone.
        """
        query = update.callback_query
        message = query.message if query is not None else None
        if query is None or message is None or not message.is_accessible:
            return
        self.scope.after_commit.append(partial(_replace_buttons, query, markup))

    def send_unstored(self, chat_id: int, view: View) -> None:
        """After the commit, send ``view`` (its text) to someone not enrolled, storing nothing.

        Not through the outbox, which would keep their chat id; not worth a failure if lost.
        """
        self.scope.after_commit.append(partial(_send_unstored, self.bot, chat_id, view.text))


async def _answer(query: CallbackQuery, text: str | None, show_alert: bool) -> None:
    try:
        await query.answer(text, show_alert=show_alert)
    except TelegramError as exc:  # too late (Telegram gives about 15 s), or gone
        log.info("could not answer a button (%s)", type(exc).__name__)


async def _send_unstored(bot: ExtBot[None], chat_id: int, text: str) -> None:
    try:
        await bot.send_message(chat_id=chat_id, text=text)
    except TelegramError as exc:
        log.info("could not answer someone not enrolled (%s)", type(exc).__name__)


async def _replace_buttons(query: CallbackQuery, markup: InlineKeyboardMarkup | None) -> None:
    """``parse_mode=None``: python-telegram-bot would otherwise add the default ``parse_mode``
    to a method that has none. "Message is not modified" (a repeat) is fine."""
    try:
        await query.edit_message_reply_markup(reply_markup=markup, api_kwargs={"parse_mode": None})
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            log.info("could not update the buttons (%s)", type(exc).__name__)
    except TelegramError as exc:
        log.info("could not update the buttons (%s)", type(exc).__name__)
