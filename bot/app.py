"""Wiring: build the python-telegram-bot Application with our context, limits and handlers,
and the scheduler with the rooms' occurrence kinds.

There is no python-telegram-bot Updater: updates come through our durable inbox instead
(``bot.transport.inbox``), and everything the bot sends on its own goes through the outbox sender.
"""

from __future__ import annotations

from typing import Any

from telegram import Bot
from telegram.constants import ParseMode
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults
from telegram.request import BaseRequest

import handlers
from bot.context import SERVICES_KEY, BotContext, Services
from bot.meetings.occurrences import MeetingFollowups, MeetingReminders
from bot.partners.checkin_occurrences import CheckinNudges, ScheduledCheckins
from bot.protocol import StudyProtocol
from bot.schedule.kinds import OccurrenceKinds
from bot.schedule.scheduler import Scheduler
from bot.settings import Settings
from bot.transport.http import AiohttpRequest
from bot.transport.ratelimit import CompanionRateLimiter
from prompts import Prompts
from storage.db import Database
from storage.models import OccurrenceKind

CompanionApplication = Application[Any, BotContext, Any, Any, Any, Any]


def build_application(
    settings: Settings, services: Services, *, request: BaseRequest | None = None
) -> CompanionApplication:
    """The Application for ``settings``, with every handler registered and services attached.

    Handlers' own calls (answering a button and ticking it after the commit, downloading a
    voice note) go over aiohttp like the sender's (see :mod:`bot.transport.http`).
    """
    builder = (
        ApplicationBuilder()
        .token(settings.token())
        .base_url(settings.api_base_url)
        .base_file_url(settings.file_base_url)
        .updater(None)
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .context_types(ContextTypes(context=BotContext))
        .rate_limiter(CompanionRateLimiter(services.limiter))
        .request(request or AiohttpRequest(connection_pool_size=16, read_timeout=10.0))
        # Never used (there is no Updater), but the bot is built with one.
        .get_updates_request(AiohttpRequest())
    )
    application: CompanionApplication = builder.build()
    application.bot_data[SERVICES_KEY] = services
    handlers.register(application)
    return application


def build_plain_bot(settings: Settings, *, pool_size: int = 8, read_timeout: float = 10.0) -> Bot:
    """A Bot for one job (the sender, the poller) with its own connection pool and no limiter.

    It talks to Telegram over aiohttp (see :mod:`bot.transport.http`): the sender makes one
    call per message, and httpx costs it several times more CPU per call. Its getUpdates slot is
    filled too (never used), or python-telegram-bot would build an httpx client for it.
    """
    return Bot(
        token=settings.token(),
        base_url=settings.api_base_url,
        base_file_url=settings.file_base_url,
        request=AiohttpRequest(connection_pool_size=pool_size, read_timeout=read_timeout),
        get_updates_request=AiohttpRequest(connection_pool_size=1),
    )


def occurrence_kinds(protocol: StudyProtocol, prompts: Prompts) -> OccurrenceKinds:
    """What each kind of occurrence does when it falls due, from the room that owns it."""
    checkins = ScheduledCheckins(protocol, prompts)
    return OccurrenceKinds(
        {
            OccurrenceKind.CHECKIN: checkins,
            OccurrenceKind.CHECKIN_NUDGE: CheckinNudges(protocol, prompts),
            OccurrenceKind.MEETING_REMINDER: MeetingReminders(prompts),
            # The reflection after a meeting is opened as a scheduled check-in is, by the
            # same rules object, so both know who has one open in the batch.
            OccurrenceKind.MEETING_FOLLOWUP: MeetingFollowups(checkins),
        }
    )


def build_scheduler(
    db: Database, protocol: StudyProtocol, prompts: Prompts, **options: Any
) -> Scheduler:
    """The scheduler over ``db``, with every occurrence kind registered.

    ``options`` are :class:`~bot.schedule.scheduler.Scheduler`'s own (``tick``, ``horizon``,
    ``on_queued``, ``queue_limit``).
    """
    return Scheduler(db, protocol, occurrence_kinds(protocol, prompts), **options)
