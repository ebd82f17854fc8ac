"""Role checks, in one place: every staff command and staff button is wrapped here.

``staff_only`` marks the callback so that a test can list every registered handler and prove
that each staff command is guarded. Someone without the role gets the same kind "not for you"
reply whatever the command, and nothing runs.

:func:`partner_tool` is the wrapper every partner tool (/journey, /mydata, /settings, /pause,
/resume, /withdraw, /meetings) uses: a withdrawn person gets no reply at all (a button press is
answered silently, so Telegram stops its spinner), staff get the guard's kind "not for you",
and a partner who has not finished onboarding is asked to finish first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from telegram import Update

from bot.context import BotContext
from bot.partners.onboarding import is_onboarded
from bot.partners.views.general import finish_setup_first, not_for_you
from bot.privacy.withdrawal import is_withdrawn
from storage.models import PersonStatus, Role

Callback = Callable[[Update, BotContext], Coroutine[Any, Any, None]]
GUARD_ATTRIBUTE = "__companion_roles__"


def requires_role(roles: Iterable[Role]) -> Callable[[Callback], Callback]:
    """Let the callback run only for an active person holding one of ``roles``."""
    allowed = frozenset(roles)

    def decorate(callback: Callback) -> Callback:
        @functools.wraps(callback)
        async def guarded(update: Update, context: BotContext) -> None:
            person = context.person
            if (
                person is None
                or person.role not in allowed
                or person.status == PersonStatus.WITHDRAWN
            ):
                await _refuse(update, context)
                return
            await callback(update, context)

        setattr(guarded, GUARD_ATTRIBUTE, allowed)
        return guarded

    return decorate


async def _refuse(update: Update, context: BotContext) -> None:
    """The guard's kind "not for you": a toast on a button, a reply to a command."""
    if update.callback_query is not None:
        context.answer_button(update, context.prompts.label("guards.not_for_you"))
    elif update.effective_chat is not None:
        await context.send(update, not_for_you(context.prompts))


def researcher_only(callback: Callback) -> Callback:
    """Researchers only; connectors too when the protocol's ``research.connectors_may_export``
    says so (researchers' data is pseudonymised, but connectors know who is who)."""

    @functools.wraps(callback)
    async def checked(update: Update, context: BotContext) -> None:
        person = context.person
        if (
            person is not None
            and person.role == Role.CONNECTOR
            and not context.protocol.research.connectors_may_export
        ):
            await _refuse(update, context)
            return
        await callback(update, context)

    return requires_role([Role.RESEARCHER, Role.CONNECTOR])(checked)


staff_only = requires_role([Role.CONNECTOR, Role.RESEARCHER])
connector_only = requires_role([Role.CONNECTOR])
partner_only = requires_role([Role.PARTNER])


def roles_of(callback: object) -> frozenset[Role] | None:
    """The roles a callback is guarded for, or None when it is not guarded."""
    roles = getattr(callback, GUARD_ATTRIBUTE, None)
    return roles if isinstance(roles, frozenset) else None


def partner_tool(*, onboarded: bool) -> Callable[[Callback], Callback]:
    """Guard a partner tool: silent for the withdrawn, partners only, onboarded if asked."""

    def decorate(callback: Callback) -> Callback:
        @functools.wraps(callback)
        async def checked(update: Update, context: BotContext) -> None:
            if onboarded and not is_onboarded(context.profile):
                if update.callback_query is not None:
                    context.answer_button(update)
                await context.send(update, finish_setup_first(context.prompts))
                return
            await callback(update, context)

        guarded = partner_only(checked)

        @functools.wraps(guarded)  # keeps the guard's role marker for the guard test
        async def tool(update: Update, context: BotContext) -> None:
            if is_withdrawn(context.person):
                if update.callback_query is not None:
                    context.answer_button(update)
                return
            await guarded(update, context)

        return tool

    return decorate
