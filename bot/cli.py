"""The ``companion`` command line (typer). Sentences it prints come from ``prompts/``."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from telegram.error import TelegramError

from bot.invites import (
    DEFAULT_EXPIRES_DAYS,
    MAX_COUNT,
    MAX_EXPIRES_DAYS,
    NewInvite,
    create_invites,
    deep_link,
    hash_code,
)
from bot.logs import configure_logging
from bot.protocol import ProtocolError, StudyProtocol, load_protocol
from bot.qr import qr_filename, write_qr_png
from bot.settings import Settings
from prompts import default_prompts
from storage import migrate
from storage.db import is_sqlite
from storage.models import Role

app = typer.Typer(help="Involvement Companion: a Telegram companion for research partners.")
db_app = typer.Typer(help="Database migrations.")
app.add_typer(db_app, name="db")
invite_app = typer.Typer(help="Invite links for partners and staff.")
app.add_typer(invite_app, name="invite")
log = logging.getLogger(__name__)


def _say(key: str, **values: object) -> str:
    return default_prompts().label(f"cli.{key}", **values)


def _settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "a setting"
            typer.echo(_say("setting_bad", name=name, reason=error["msg"].lower()), err=True)
        raise typer.Exit(2) from exc


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@dataclass
class _Item:
    ok: bool
    text: str
    warning: bool = False


async def _database_items(settings: Settings) -> list[_Item]:
    url = settings.database_url
    shown = _safe_url(url)
    try:
        current = await asyncio.wait_for(migrate.current_revision(url), timeout=10)
    except Exception as exc:
        reason = type(exc).__name__ if not str(exc) else str(exc).splitlines()[0][:160]
        return [_Item(False, _say("database_unreachable", url=shown, reason=reason))]
    head = migrate.head_revision()
    if current == head:
        return [_Item(True, _say("database_ok", url=shown))]
    if is_sqlite(url):
        return [_Item(True, _say("database_behind_sqlite", url=shown), warning=True)]
    return [_Item(False, _say("database_behind", url=shown, current=current or "none", head=head))]


@app.command("check-config")
def check_config() -> None:
    """Check every setting and explain each problem in one plain sentence."""
    settings = _settings_or_exit()
    items: list[_Item] = []
    token = settings.telegram_bot_token
    if token is None or not token.get_secret_value().strip():
        items.append(_Item(False, _say("token_missing")))
    else:
        items.append(_Item(True, _say("token_ok")))
    base = settings.telegram_api_base_url
    if base.startswith(("http://", "https://")):
        items.append(_Item(True, _say("api_url", url=base)))
    else:
        items.append(_Item(False, _say("api_url_bad", url=base)))
    items += asyncio.run(_database_items(settings))
    try:
        protocol = load_protocol(settings.companion_study)
        items.append(
            _Item(
                True, _say("protocol_ok", path=settings.companion_study, name=protocol.study.name)
            )
        )
    except ProtocolError as exc:
        items.append(_Item(False, _say("protocol_bad", reason=str(exc))))
    if settings.companion_secret_key is None:
        items.append(_Item(True, _say("secret_missing"), warning=True))
    else:
        items.append(_Item(True, _say("secret_ok")))
    items.append(
        _Item(
            True,
            _say(
                "staff_ids",
                count=len(settings.companion_connector_ids),
                researchers=len(settings.companion_researcher_ids),
            ),
        )
    )
    problems = sum(1 for i in items if not i.ok)
    typer.echo(default_prompts().text("cli/check_config", items=items, problems=problems))
    if problems:
        raise typer.Exit(1)


@app.command()
def run(
    webhook: Annotated[
        str | None,
        typer.Option(help="Public HTTPS base URL Telegram should POST updates to."),
    ] = None,
    listen: Annotated[
        str, typer.Option(help="host:port to listen on in webhook mode.")
    ] = "0.0.0.0:8443",
    path: Annotated[str, typer.Option(help="URL path of the webhook.")] = "/telegram",
    health_port: Annotated[
        int | None,
        typer.Option(help="Serve /healthz on 127.0.0.1:PORT in polling mode."),
    ] = None,
) -> None:
    """Run the bot: long polling through the durable inbox, or a webhook with --webhook."""
    from bot.runtime import Companion, SchemaBehindError, WebhookOptions

    settings = _settings_or_exit()
    secrets = (
        [settings.telegram_bot_token.get_secret_value()] if settings.telegram_bot_token else []
    )
    configure_logging(settings.companion_log_level, settings.companion_log_format, secrets)
    try:
        settings.token()
        companion = Companion(settings)
    except (ProtocolError, RuntimeError) as exc:
        typer.echo(_say("cannot_start", reason=str(exc)), err=True)
        raise typer.Exit(1) from exc
    options: dict[str, object] = {"health_port": health_port}
    if webhook:
        host, _, port = listen.rpartition(":")
        options = {
            "webhook": WebhookOptions(
                url=webhook,
                listen_host=host or "0.0.0.0",  # noqa: S104 - a webhook must be reachable
                listen_port=int(port),
                path=path,
                secret_token=(
                    settings.telegram_webhook_secret.get_secret_value()
                    if settings.telegram_webhook_secret
                    else None
                ),
            )
        }
    try:
        asyncio.run(companion.run_until_stopped(**options))
    except SchemaBehindError as exc:
        typer.echo(_say("cannot_start", reason=str(exc)), err=True)
        raise typer.Exit(1) from exc


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database up to the newest migration."""
    settings = _settings_or_exit()
    migrate.upgrade_sync(settings.database_url)
    typer.echo(
        _say("upgraded", url=_safe_url(settings.database_url), revision=migrate.head_revision())
    )


@db_app.command("status")
def db_status() -> None:
    """Show which migration the database is on."""
    settings = _settings_or_exit()
    current = asyncio.run(migrate.current_revision(settings.database_url))
    typer.echo(
        _say(
            "status",
            url=_safe_url(settings.database_url),
            current=current or "none",
            head=migrate.head_revision(),
        )
    )


async def _bot_username(settings: Settings) -> str:
    """Ask Telegram (getMe, through TELEGRAM_API_BASE_URL) for the bot's username."""
    from telegram import Bot
    from telegram.request import HTTPXRequest

    bot = Bot(
        token=settings.token(),
        base_url=settings.api_base_url,
        request=HTTPXRequest(connection_pool_size=1, read_timeout=15.0),
    )
    async with bot:  # initialize() calls getMe
        return bot.username


class _SchemaBehindError(RuntimeError):
    """The PostgreSQL database needs ``companion db upgrade``."""


async def _store_invites(
    settings: Settings,
    protocol: StudyProtocol,
    *,
    role: Role,
    group: str | None,
    count: int,
    expires_days: int,
) -> list[NewInvite]:
    from storage.db import Database

    url = settings.database_url
    if not await migrate.is_up_to_date(url):
        if not is_sqlite(url):
            raise _SchemaBehindError(
                _say(
                    "database_behind",
                    url=_safe_url(url),
                    current=await migrate.current_revision(url) or "none",
                    head=migrate.head_revision(),
                )
            )
        await migrate.upgrade(url)
    db = Database(url)
    try:
        async with db.transaction() as session:
            return await create_invites(
                session,
                protocol,
                role=role,
                group_key=group,
                count=count,
                expires_days=expires_days,
            )
    finally:
        await db.dispose()


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return text or type(exc).__name__


def _invite_usage_problem(role: str, count: int, expires_days: int) -> str | None:
    """The sentence explaining a bad option, or None when the options are fine."""
    prompts = default_prompts()
    roles = [str(r) for r in Role]
    if role not in roles:
        return prompts.label("invite.bad_role", choices=", ".join(roles), role=role)
    if not 1 <= count <= MAX_COUNT:
        return prompts.label("invite.bad_count", most=MAX_COUNT, count=count)
    if not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        return prompts.label("invite.bad_expiry", most=MAX_EXPIRES_DAYS, days=expires_days)
    return None


def _invite_rows(
    made: list[NewInvite], username: str, qr: Path | None
) -> tuple[list[dict[str, object]], OSError | None]:
    """One row per invite (with its QR file when asked), and the error if QR writing failed."""
    rows: list[dict[str, object]] = []
    qr_failed: OSError | None = None
    for invite in made:
        link = deep_link(username, invite.code)
        row: dict[str, object] = {
            "code": invite.code,
            "link": link,
            "role": str(invite.role),
            "group": invite.group_key,
            "expires_at": invite.expires_at.isoformat(),
        }
        if qr is not None and qr_failed is None:
            name = qr_filename(str(invite.role), invite.group_key, hash_code(invite.code))
            try:
                row["qr"] = str(write_qr_png(link, qr / name))
            except OSError as exc:
                qr_failed = exc
        rows.append(row)
    return rows, qr_failed


@invite_app.command("create")
def invite_create(
    *,
    role: Annotated[str, typer.Option(help="partner, connector or researcher.")],
    group: Annotated[
        str | None, typer.Option(help="The group (from the study protocol) for partners.")
    ] = None,
    count: Annotated[int, typer.Option(help="How many invites to make.")] = 1,
    expires_days: Annotated[
        int, typer.Option(help="Days until the links stop working (1 to 30).")
    ] = DEFAULT_EXPIRES_DAYS,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead of text.")
    ] = False,
    qr: Annotated[
        Path | None, typer.Option(help="Write one QR code PNG per invite into this folder.")
    ] = None,
) -> None:
    """Make single-use invite links (only a hash of each code is stored)."""
    prompts = default_prompts()
    problem = _invite_usage_problem(role, count, expires_days)
    if problem is not None:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    settings = _settings_or_exit()
    token = settings.telegram_bot_token
    configure_logging(
        settings.companion_log_level,
        settings.companion_log_format,
        [token.get_secret_value()] if token else [],
    )
    try:
        protocol = load_protocol(settings.companion_study)
    except ProtocolError as exc:
        typer.echo(_say("protocol_bad", reason=str(exc)), err=True)
        raise typer.Exit(1) from exc
    if group is not None and protocol.group(group) is None:
        known = ", ".join(g.key for g in protocol.groups)
        typer.echo(prompts.label("invite.unknown_group", group=group, known=known), err=True)
        raise typer.Exit(2)
    try:
        username = asyncio.run(_bot_username(settings))
    except (TelegramError, RuntimeError, OSError) as exc:  # no token, wrong token, offline
        typer.echo(prompts.label("invite.no_telegram", reason=_reason(exc)), err=True)
        raise typer.Exit(1) from exc
    try:
        made = asyncio.run(
            _store_invites(
                settings,
                protocol,
                role=Role(role),
                group=group,
                count=count,
                expires_days=expires_days,
            )
        )
    except (SQLAlchemyError, RuntimeError, OSError) as exc:  # unreachable or behind
        typer.echo(prompts.label("invite.no_database", reason=_reason(exc)), err=True)
        raise typer.Exit(1) from exc
    rows, qr_failed = _invite_rows(made, username, qr)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        expires = made[0].expires_at.strftime("%Y-%m-%d %H:%M") if made else ""
        typer.echo(
            prompts.text("invite/created", invites=rows, role=role, group=group, expires=expires)
        )
    if qr_failed is not None:
        typer.echo(
            prompts.label("invite.no_qr_folder", path=qr, reason=_reason(qr_failed)), err=True
        )
        raise typer.Exit(1)


@app.command("sandbox-run")
def sandbox_run(
    port: Annotated[int, typer.Option(help="Port of the sandbox Telegram on 127.0.0.1.")] = 8081,
) -> None:
    """Run the bot against the built-in sandbox Telegram: no token, no internet."""
    from bot.tryout import run_sandbox

    configure_logging("WARNING")
    asyncio.run(run_sandbox(port=port))


def main() -> None:
    """Entry point of the ``companion`` console script."""
    app()
