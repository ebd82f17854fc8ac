"""The running bot: inbox (polling or webhook), worker, outbox sender and health endpoint.

``Companion`` owns their lifecycles. ``start()`` recovers what a previous run left behind
(unfinished updates are processed, sends whose outcome is unknown are marked so), then starts
the loops; ``stop()`` stops taking updates first and lets the rest finish cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import signal
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import CompanionApplication, build_application, build_plain_bot, build_scheduler
from bot.connector.failure_alerts import notify_staff_of_failure
from bot.connector.progress import BroadcastProgress
from bot.context import Services
from bot.logs import quiet_http_libraries
from bot.menu import publish_chat_menu, publish_menu
from bot.partners.reachability import unreachable_handler
from bot.partners.staff_roles import RoleChange, follow_allow_lists
from bot.protocol import StudyProtocol, load_protocol
from bot.schedule.leader import Leadership
from bot.settings import Settings
from bot.transport.inbox import ALLOWED_UPDATES, InboxPoller, InboxWorker
from bot.transport.ratelimit import SendLimiter
from bot.transport.receipts import Receipts, receipts_path
from bot.transport.sender import OutboxSender
from prompts import Prompts
from storage import migrate
from storage.clock import CLOCK, Clock
from storage.db import Database
from storage.models import InboxStatus, InboxUpdate, TelegramIdentity

if TYPE_CHECKING:  # aiohttp's server is imported only to serve (see Companion._serve)
    from aiohttp import web

log = logging.getLogger(__name__)
GIL_SWITCH_INTERVAL = 0.001  # seconds; see use_short_switch_interval


def use_short_switch_interval() -> None:
    """Let worker threads hand results back to the event loop sooner, for the whole process.

    The database drivers run each statement on a worker thread and hand the result back to the
    event loop; with CPython's default 5 ms GIL switch interval every hand-back can wait that
    long under load. 1 ms measured about 1.5x the update throughput (bench/inbound.py) at no
    cost when idle. It is process-wide, so only ``companion run`` and the benchmarks set it;
    tests and the demo keep the interpreter's default.
    """
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL))


def freeze_what_is_loaded() -> None:
    """Move every object alive now (modules, classes, settings) out of the collector's sight.

    They live as long as the process anyway, yet each full collection walked all of them: about
    100 ms every second or so under load, during which nothing was sent (bench/broadcast.py
    measured 1.7 s of such pauses in a 70 s broadcast, and 0.1 s with this). Objects made
    later are collected as usual. Process-wide, so only ``companion run`` and the benchmarks
    call it, after importing and building what they run and before serving.
    """
    gc.collect()  # what is already garbage goes now, not frozen with the rest
    gc.freeze()


def prepare_to_serve() -> None:
    """Tune the interpreter for serving: what ``companion run`` does just before it starts."""
    use_short_switch_interval()
    freeze_what_is_loaded()


class SchemaBehindError(RuntimeError):
    """The PostgreSQL database needs ``companion db upgrade`` before the bot can run."""


@dataclass
class WebhookOptions:
    """Where Telegram should deliver updates, and where we listen for them."""

    url: str
    listen_host: str = "0.0.0.0"  # noqa: S104 - a webhook must be reachable from outside
    listen_port: int = 8443
    path: str = "/telegram"
    secret_token: str | None = None


async def ensure_schema(db: Database) -> None:
    """Upgrade an SQLite database in place; refuse to run on a PostgreSQL one that is behind."""
    url = db.url.render_as_string(hide_password=False)
    if await migrate.is_up_to_date(url):
        return
    if db.is_sqlite:
        log.info("bringing the SQLite database up to date")
        await migrate.upgrade(url)
        return
    current = await migrate.current_revision(url)
    raise SchemaBehindError(
        f"the PostgreSQL database is at revision {current or 'none'} but this version needs "
        f"{migrate.head_revision()}; run `companion db upgrade` first"
    )


class Companion:
    """Everything that runs while the bot is up.

    ``clock``: where the scheduler and the sender read and watch the time; the process clock
    unless a test or the demo brings its own.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        protocol: StudyProtocol | None = None,
        clock: Clock = CLOCK,
    ) -> None:
        quiet_http_libraries()  # even when embedded without configure_logging
        self.settings = settings
        self.clock = clock
        self.protocol = protocol or load_protocol(settings.companion_study)
        self.prompts = Prompts(self.protocol.study.locale)
        self.db = Database(settings.database_url)
        self.limiter = SendLimiter(
            global_rate=settings.companion_global_rate,
            chat_rate=settings.companion_chat_rate,
            group_per_minute=settings.companion_group_per_minute,
        )
        self.services = Services(
            settings=settings,
            db=self.db,
            prompts=self.prompts,
            protocol=self.protocol,
            limiter=self.limiter,
        )
        self.application: CompanionApplication = build_application(settings, self.services)
        self.sender_bot = build_plain_bot(settings, pool_size=64)
        self.sender = OutboxSender(
            self.db,
            self.sender_bot,
            self.limiter,
            on_unreachable=unreachable_handler(self.prompts),
            data_dir=settings.companion_data_dir,
            receipts=Receipts(
                receipts_path(
                    settings.companion_data_dir, self.db.url.render_as_string(hide_password=True)
                )
            ),
        )
        self.services.sender = self.sender
        self.worker = InboxWorker(
            self.db,
            self.application,
            on_committed=self.sender.wake,
            on_failed=self._on_update_failed,
        )
        self.scheduler = build_scheduler(
            self.db,
            self.protocol,
            self.prompts,
            tick=settings.companion_schedule_tick,
            horizon=timedelta(days=settings.companion_plan_horizon_days),
            on_queued=self.sender.wake,
            # Ten seconds of sending ahead: a bigger wave is opened as the sender catches up.
            queue_limit=int(settings.companion_global_rate * 10),
            clock=clock,
            daily=[self.apply_retention],
        )
        self.services.scheduler = self.scheduler
        # Edits go through the application's bot, so they wait for the same rate limits.
        self.broadcasts = BroadcastProgress(
            self.db, self.application.bot, self.prompts, on_queued=self.sender.wake
        )
        self._unsubscribe_clock = clock.subscribe(self.sender.wake)
        self.poll_bot = build_plain_bot(settings, pool_size=1, read_timeout=40.0)
        self.poller = InboxPoller(
            self.db, self.poll_bot, self.poll_bot.request, on_stored=self.worker.wake
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self.leadership = Leadership(self.db.url, retry_seconds=settings.companion_leader_retry)
        self._runners: list[web.AppRunner] = []
        self.webhook: WebhookOptions | None = None

    async def apply_retention(self) -> None:
        """The daily retention pass (the protocol's ``retention:``); a failure is logged."""
        from bot.research.retention import run_daily

        try:
            result = await run_daily(
                self.db, self.protocol.retention, self.settings.companion_data_dir
            )
        except Exception:
            log.exception("the daily retention pass failed; it runs again tomorrow")
            return
        log.info("retention: %s", result.counts)

    async def follow_allow_lists(self) -> list[RoleChange]:
        """Staff roles that came from the allow-lists follow the settings as they are now
        (an id taken off its list loses the role); the changes, each chat to get a new menu."""
        async with self.db.transaction() as session:
            changes = await follow_allow_lists(session, self.settings, now=self.clock.now())
        for change in changes:
            log.info("a staff role followed the allow-list: %s -> %s", change.old, change.new)
        return changes

    async def _on_update_failed(
        self, session: AsyncSession, update_id: int, chat_id: int | None, error: BaseException
    ) -> None:
        person_id = None
        if chat_id is not None:
            person_id = (
                await session.execute(
                    select(TelegramIdentity.person_id).where(TelegramIdentity.chat_id == chat_id)
                )
            ).scalar_one_or_none()
        await notify_staff_of_failure(
            session,
            self.prompts,
            f"update-{update_id}",
            error,
            chat_id=chat_id if person_id is not None else None,
            person_id=person_id,
        )

    async def start(
        self,
        *,
        webhook: WebhookOptions | None = None,
        health_port: int | None = None,
        health_host: str = "127.0.0.1",
    ) -> None:
        """Recover, then start receiving (polling unless ``webhook``), processing and sending."""
        self.leadership.claim_file()  # SQLite: a second process fails here, before anything
        await ensure_schema(self.db)
        await self.application.initialize()
        await self.application.start()
        await self.sender_bot.initialize()
        await self.poll_bot.initialize()
        self.webhook = webhook
        if webhook is not None:
            webhook.secret_token = webhook.secret_token or secrets.token_urlsafe(32)
        # Every replica takes webhooks (they only commit to the inbox); only the leader
        # processes, plans and sends. A standby starts the loops when it wins the lock.
        if await self.leadership.try_lead():
            await self._start_loops()
        self.leadership.watch(on_elected=self._start_loops, on_deposed=self._stop_loops)
        # /healthz stays on --health-port in both modes (the image's health check asks there);
        # the webhook's port answers it too, for a proxy that checks the public side.
        if health_port is not None:
            self._runners.append(await self._serve(health_host, health_port, with_webhook=False))
        if webhook is not None:
            self._runners.append(
                await self._serve(webhook.listen_host, webhook.listen_port, with_webhook=True)
            )
        if webhook is not None:
            await self.application.bot.set_webhook(
                url=webhook.url.rstrip("/") + webhook.path,
                secret_token=webhook.secret_token,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
        log.info(
            "companion is running (%s, %s)",
            "webhook" if webhook else "long polling",
            "leader" if self.leadership.is_leader else "standby",
        )

    async def _start_loops(self) -> None:
        """Recover what a previous run left, then start sending, processing and polling."""
        await self.sender.recover()
        changed = await self.follow_allow_lists()
        await publish_menu(self.application.bot, self.prompts)
        for change in changed:
            if change.chat_id is not None:
                await publish_chat_menu(
                    self.application.bot, self.prompts, change.chat_id, change.menu_role
                )
        self._tasks.append(asyncio.create_task(self.sender.run(), name="outbox-sender"))
        self._tasks.append(asyncio.create_task(self.worker.run(), name="inbox-worker"))
        self._tasks.append(asyncio.create_task(self.scheduler.run(), name="scheduler"))
        self._tasks.append(asyncio.create_task(self.broadcasts.run(), name="broadcasts"))
        if self.webhook is None:
            # A webhook left over from another deployment would make getUpdates fail; pending
            # updates are kept (never drop_pending_updates).
            await self.application.bot.delete_webhook(drop_pending_updates=False)
            self._tasks.append(asyncio.create_task(self.poller.run(), name="inbox-poller"))

    async def _serve(self, host: str, port: int, *, with_webhook: bool) -> web.AppRunner:
        """Listen on ``host:port`` for ``/healthz`` and, ``with_webhook``, Telegram's updates.

        aiohttp's server is imported here, not with this module: a bot that long-polls without
        a health port never loads it.
        """
        from aiohttp import web

        from bot.transport.webhook import webhook_routes

        routes = [web.get("/healthz", self._health)]
        hook = self.webhook
        if with_webhook and hook is not None and hook.secret_token is not None:
            routes += webhook_routes(hook.path, hook.secret_token, self.db, self.worker.wake)
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner

    async def _health(self, _request: web.Request) -> web.Response:
        from aiohttp import web

        async with self.db.sessions() as session:
            pending = (
                await session.execute(
                    select(func.count())
                    .select_from(InboxUpdate)
                    .where(InboxUpdate.status == InboxStatus.PENDING)
                )
            ).scalar_one()
        dead = [t.get_name() for t in self._tasks if t.done()]
        status = 503 if dead else 200
        return web.json_response(
            {
                "status": "ok" if not dead else "degraded",
                "pending_updates": pending,
                "stopped": dead,
                "leader": self.leadership.is_leader,
            },
            status=status,
        )

    async def stop(self) -> None:
        """Stop receiving, let the worker and sender settle, then close everything."""
        await self.leadership.stop_watching()
        await self._stop_loops()
        self._unsubscribe_clock()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        for closer in (self.application.stop, self.application.shutdown):
            with contextlib.suppress(Exception):
                await closer()
        # The application's bot too: when its getMe failed, the application counts as never
        # initialised and leaves the bot's connections open.
        for bot in (self.application.bot, self.sender_bot, self.poll_bot):
            with contextlib.suppress(Exception):
                await bot.shutdown()
        await self.db.dispose()
        if self.sender.receipts is not None:
            self.sender.receipts.close()
        await self.leadership.release()

    async def _stop_loops(self) -> None:
        """Stop polling, processing and sending (in-flight sends finish first).

        The scheduler is let finish the pass it is in (a pass is one short transaction at a
        time), so that stopping never cuts a database call in half.
        """
        async with self.scheduler.quiesced():
            for task in self._tasks:
                if task.get_name() == "scheduler":
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        for task in reversed(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        # Answers to buttons already committed: let them reach Telegram (the bot still works).
        await self.worker.calls_done(timeout=5.0, cancel=True)

    async def run_until_stopped(self, **start_options: Any) -> None:
        """Start, then run until SIGINT or SIGTERM, then stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start(**start_options)
        except BaseException:
            # Close what start() had opened (HTTP sessions, pools, the lock) before the error
            # is told: otherwise aiohttp reports every session left open, at length.
            await self.stop()
            raise
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await self.stop()
