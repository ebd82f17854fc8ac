"""The ``companion`` command line (typer). Sentences it prints come from ``prompts/``."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot.logs import configure_logging
from bot.partners.invites import (
    DEFAULT_EXPIRES_DAYS,
    MAX_COUNT,
    MAX_EXPIRES_DAYS,
    NewInvite,
    create_invites,
    deep_link,
    hash_code,
)
from bot.protocol import ProtocolError, StudyProtocol, load_protocol
from bot.settings import MAKE_SECRET_KEY, MIN_SECRET_KEY_LENGTH, Settings, secret_key_problem
from bot.tools.broadcast_cli import broadcast_app
from bot.tools.cli_errors import CompanionGroup, failure_sentence, telegram_sentence
from bot.tools.cli_errors import reason as _reason
from bot.tools.staff_cli import staff_app
from prompts import default_prompts
from storage import migrate
from storage.db import is_sqlite, sqlite_path
from storage.models import Role

app = typer.Typer(
    help="Involvement Companion: a Telegram companion for research partners.",
    cls=CompanionGroup,  # a failure no command explains becomes one sentence (cli_errors)
)
db_app = typer.Typer(help="Database migrations.")
app.add_typer(db_app, name="db")
invite_app = typer.Typer(help="Invite links for partners and staff.")
app.add_typer(invite_app, name="invite")
log = logging.getLogger(__name__)


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="When a command fails, show the whole error (the token stays hidden)."
        ),
    ] = False,
) -> None:
    """Options for every command (``--debug`` is read by :class:`CompanionGroup`)."""


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
    """Whether the database can be reached and is up to date, creating nothing.

    A missing SQLite file is not a problem (``companion run`` creates it); an existing one is
    read without writing to it (:func:`storage.migrate.sqlite_revision_read_only`).
    """
    url = settings.database_url
    try:
        shown = _safe_url(url)
        path = sqlite_path(url)
        if path is not None and not path.exists():
            return [_Item(True, _say("database_not_created", path=path))]
        if path is not None:
            current = await asyncio.to_thread(migrate.sqlite_revision_read_only, path)
        else:
            current = await asyncio.wait_for(migrate.current_revision(url), timeout=10)
    except Exception as exc:
        return [_Item(False, failure_sentence(exc, settings))]
    head = migrate.head_revision()
    if current == head:
        return [_Item(True, _say("database_ok", url=shown))]
    if is_sqlite(url):
        return [_Item(True, _say("database_behind_sqlite", url=shown), warning=True)]
    return [_Item(False, _say("database_behind", url=shown, current=current or "none", head=head))]


def _telegram_items(settings: Settings) -> list[_Item]:
    """The token and the API address, and whether Telegram answers getMe with them."""
    token = settings.telegram_bot_token
    has_token = token is not None and bool(token.get_secret_value().strip())
    items = [_Item(True, _say("token_ok")) if has_token else _Item(False, _say("token_missing"))]
    base = settings.telegram_api_base_url
    if not base.startswith(("http://", "https://")):
        return [*items, _Item(False, _say("api_url_bad", url=base))]
    if not has_token:
        return items
    try:  # "reachable" only once Telegram has answered, with the bot it knows the token as
        username = asyncio.run(_bot_username(settings))
    except Exception as exc:
        return [*items, _Item(False, failure_sentence(exc, settings))]
    return [*items, _Item(True, _say("telegram_ok", url=base, username=username))]


def _secret_item(settings: Settings) -> _Item:
    """COMPANION_SECRET_KEY: missing is a warning, weak is a problem (with the fix)."""
    key = settings.companion_secret_key
    if key is None:
        return _Item(True, _say("secret_missing", command=MAKE_SECRET_KEY), warning=True)
    problem = secret_key_problem(key.get_secret_value())
    if problem is None:
        return _Item(True, _say("secret_ok"))
    why = _say(f"secret_why.{problem}", length=MIN_SECRET_KEY_LENGTH)
    return _Item(False, _say("secret_weak", why=why, command=MAKE_SECRET_KEY))


@app.command("check-config")
def check_config() -> None:
    """Check every setting and explain each problem in one plain sentence; change nothing."""
    settings = _settings_or_exit()
    items = _telegram_items(settings)
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
    items.append(_secret_item(settings))
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
    from bot.runtime import (
        Companion,
        SchemaBehindError,
        WebhookOptions,
        prepare_to_serve,
    )
    from bot.schedule.leader import AlreadyRunningError

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
    prepare_to_serve()
    try:
        asyncio.run(companion.run_until_stopped(**options))
    except AlreadyRunningError as exc:
        typer.echo(default_prompts().text("cli/already_running", path=exc.database), err=True)
        raise typer.Exit(1) from exc
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


async def _in_transaction(settings: Settings, job: Any) -> Any:
    """Run ``job(session)`` in one transaction on an up-to-date database; return its result.

    An SQLite database is brought up to date first; a PostgreSQL one that is behind raises
    ``_SchemaBehindError`` (``companion db upgrade`` is the study IT's decision).
    """
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
            return await job(session)
    finally:
        await db.dispose()


async def _store_invites(
    settings: Settings,
    protocol: StudyProtocol,
    *,
    role: Role,
    group: str | None,
    count: int,
    expires_days: int,
) -> list[NewInvite]:
    async def job(session: Any) -> list[NewInvite]:
        return await create_invites(
            session,
            protocol,
            role=role,
            group_key=group,
            count=count,
            expires_days=expires_days,
        )

    created: list[NewInvite] = await _in_transaction(settings, job)
    return created


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
    from bot.tools.qr import qr_filename, write_qr_png

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
    from telegram.error import TelegramError  # only the commands that call Telegram load it

    try:
        username = asyncio.run(_bot_username(settings))
    except (TelegramError, RuntimeError, OSError) as exc:  # no token, wrong token, offline
        problem = telegram_sentence(prompts, exc, settings)
        typer.echo(prompts.label("invite.no_telegram", problem=problem), err=True)
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
    from bot.tools.sandbox_run import run_sandbox

    configure_logging("WARNING")
    asyncio.run(run_sandbox(port=port))


@app.command("demo")
def demo(
    port: Annotated[
        int, typer.Option(help="Port of the chat page (and the sandbox) on 127.0.0.1.")
    ] = 8080,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the address; open no browser.")
    ] = False,
    more_partners: Annotated[
        int,
        typer.Option(
            min=0,
            max=200,
            help="More made-up partners with history (not played on the page), so /stats "
            "has groups big enough to show.",
        ),
    ] = 0,
) -> None:
    """Try the bot in a chat page in your browser: no token, no internet, throwaway data."""
    from bot.tools.demo import DemoPortBusyError, run_demo

    configure_logging("WARNING")
    try:
        asyncio.run(run_demo(port=port, open_browser=not no_browser, others=more_partners))
    except DemoPortBusyError as exc:
        typer.echo(
            default_prompts().text(
                "cli/demo_port_busy", port=exc.port, reason=exc.reason, suggestion=exc.port + 1
            ),
            err=True,
        )
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:  # Ctrl-C before the demo could listen for it
        raise typer.Exit(130) from None


# -- companion meeting ---------------------------------------------------------------------------

meeting_app = typer.Typer(help="Meetings: add, list, change and cancel them.")
app.add_typer(meeting_app, name="meeting")
app.add_typer(broadcast_app, name="broadcast")  # bot/tools/broadcast_cli.py
app.add_typer(staff_app, name="staff")  # bot/tools/staff_cli.py

#: Meeting problems that come from the meeting's state rather than from what was typed.
_MEETING_STATE_PROBLEMS = frozenset({"cancelled", "already_cancelled", "started"})


def _meeting_fail(problem: str, /, **values: object) -> typer.Exit:
    """Print the one-sentence problem ``meetings.cli.<problem>``; return the Exit to raise."""
    typer.echo(default_prompts().label(f"meetings.cli.{problem}", **values), err=True)
    return typer.Exit(1 if problem in _MEETING_STATE_PROBLEMS or problem == "no_database" else 2)


def _meeting_protocol(settings: Settings) -> StudyProtocol:
    try:
        return load_protocol(settings.companion_study)
    except ProtocolError as exc:
        typer.echo(_say("protocol_bad", reason=str(exc)), err=True)
        raise typer.Exit(1) from exc


def _in_meeting_transaction(settings: Settings, job: Any) -> Any:
    """Run ``job(session)`` in one transaction on an up-to-date database; return its result.

    A MeetingError raised by the job rolls everything back and is raised again here.
    """
    try:
        return asyncio.run(_in_transaction(settings, job))
    except (SQLAlchemyError, _SchemaBehindError, OSError) as exc:
        raise _meeting_fail("no_database", reason=_reason(exc)) from exc


def _meeting_row(meeting: Any, *, invitees: int | None = None, **extra: object) -> dict[str, Any]:
    """A meeting as plain values, for --json and for the text templates."""
    from bot.calendar.zones import zone_named

    local = meeting.starts_at.astimezone(zone_named(meeting.timezone))
    row: dict[str, Any] = {
        "id": meeting.id,
        "title": meeting.title,
        "starts_at": meeting.starts_at.isoformat(),
        "local_start": local.strftime("%Y-%m-%d %H:%M"),
        "timezone": meeting.timezone,
        "length_minutes": meeting.length_minutes,
        "place": meeting.place,
        "groups": list(meeting.groups),
        "version": meeting.version,
        "cancelled": meeting.cancelled_at is not None,
        "cancelled_at": meeting.cancelled_at.isoformat() if meeting.cancelled_at else None,
        **extra,
    }
    if invitees is not None:
        row["invitees"] = invitees
    return row


def _groups_text(protocol: StudyProtocol, groups: list[str]) -> str:
    from bot.meetings.words import group_words

    if not groups:
        return default_prompts().label("meetings.cli.everyone")
    return ", ".join(group_words(default_prompts(), protocol, groups))


@meeting_app.command("add")
def meeting_add(
    *,
    title: Annotated[str, typer.Option(help="What the meeting is called.")],
    start: Annotated[
        str, typer.Option(help='Local date and time, e.g. "2026-12-03 18:00" or "3 Dec 18:00".')
    ],
    place: Annotated[str, typer.Option(help="The address, or the video link.")],
    timezone: Annotated[
        str | None,
        typer.Option(help="IANA time zone of --start (default: the first group's zone)."),
    ] = None,
    length: Annotated[
        int | None, typer.Option(help="Length in minutes (default: 90, or the protocol's first).")
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(help="A group from the study protocol; repeat for more. None: everyone."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the meeting as JSON instead of text.")
    ] = False,
) -> None:
    """Add a meeting; partners in its groups get reminders with answer buttons."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from bot import meetings
    from storage.clock import utcnow

    prompts = default_prompts()
    settings = _settings_or_exit()
    protocol = _meeting_protocol(settings)
    try:
        groups = meetings.check_groups(protocol, group or [])
    except meetings.MeetingError as exc:
        raise _meeting_fail(exc.reason, **exc.values) from exc
    zone_name = timezone or meetings.meeting_zone(protocol, group or [])
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _meeting_fail("timezone", zone=zone_name) from exc
    choices = protocol.meetings.length_choices_minutes
    minutes = length if length is not None else (90 if 90 in choices else choices[0])
    now = utcnow()
    try:
        starts_at = meetings.parse_start(prompts, start, zone, now=now)
    except meetings.MeetingError as exc:
        raise _meeting_fail(exc.reason, start=start, zone=zone_name) from exc

    async def job(session: Any) -> dict[str, Any]:
        meeting = await meetings.create_meeting(
            session,
            protocol,
            title=title,
            starts_at=starts_at,
            length_minutes=minutes,
            place=place,
            groups=groups,
            timezone=zone_name,
            now=now,
        )
        count = len(await meetings.invitees(session, meeting))
        return _meeting_row(meeting, invitees=count)

    try:
        row = _in_meeting_transaction(settings, job)
    except meetings.MeetingError as exc:
        raise _meeting_fail(
            exc.reason, **{"start": start, "zone": zone_name, **exc.values}
        ) from exc
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    typer.echo(
        prompts.text(
            "cli/meeting_added",
            id=row["id"],
            title=row["title"],
            local_start=row["local_start"],
            timezone=row["timezone"],
            length=row["length_minutes"],
            place=row["place"],
            groups=_groups_text(protocol, row["groups"]),
            count=row["invitees"],
            offsets=" and ".join(meetings.reminder_offsets_words(prompts, protocol)),
        )
    )


@meeting_app.command("list")
def meeting_list(
    *,
    everything: Annotated[
        bool, typer.Option("--all", help="Every meeting, including past and cancelled ones.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead of text.")
    ] = False,
) -> None:
    """List upcoming meetings (or --all) with how many said yes, no or maybe."""
    from sqlalchemy import func, select

    from bot import meetings
    from storage.clock import utcnow
    from storage.models import Involvement

    prompts = default_prompts()
    settings = _settings_or_exit()
    protocol = _meeting_protocol(settings)

    async def job(session: Any) -> list[dict[str, Any]]:
        rows = []
        for meeting in await meetings.all_meetings(session, now=utcnow(), everything=everything):
            attended = await session.execute(
                select(func.count())
                .select_from(Involvement)
                .where(Involvement.meeting_id == meeting.id, Involvement.attended.is_(True))
            )
            rows.append(
                _meeting_row(
                    meeting,
                    answers=await meetings.answer_counts(session, meeting.id),
                    attended=int(attended.scalar_one()),
                )
            )
        return rows

    rows = _in_meeting_transaction(settings, job)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        row["groups_text"] = _groups_text(protocol, row["groups"])
        row["cancelled_mark"] = prompts.label("meetings.cli.cancelled_mark")
    typer.echo(prompts.text("cli/meeting_list", meetings=rows, everything=everything))


@meeting_app.command("cancel")
def meeting_cancel(
    meeting_id: Annotated[int, typer.Argument(metavar="ID", help="The meeting's id.")],
) -> None:
    """Cancel a meeting; partners who were reminded get a kind note."""
    from bot import meetings
    from storage.clock import utcnow
    from storage.models import Meeting

    prompts = default_prompts()
    settings = _settings_or_exit()
    protocol = _meeting_protocol(settings)

    async def job(session: Any) -> tuple[str, int]:
        meeting = await session.get(Meeting, meeting_id)
        if meeting is None:
            raise meetings.MeetingError("no_meeting")
        if meeting.cancelled_at is not None:
            raise meetings.MeetingError("already_cancelled")
        notified = await meetings.cancel_meeting(session, protocol, prompts, meeting, now=utcnow())
        return meeting.title, notified

    try:
        title, notified = _in_meeting_transaction(settings, job)
    except meetings.MeetingError as exc:
        raise _meeting_fail(exc.reason, id=meeting_id) from exc
    typer.echo(
        prompts.text("cli/meeting_cancelled", id=meeting_id, title=title, notified=notified)
    )


@meeting_app.command("change")
def meeting_change(
    meeting_id: Annotated[int, typer.Argument(metavar="ID", help="The meeting's id.")],
    *,
    start: Annotated[
        str | None, typer.Option(help="New local date and time, in the meeting's time zone.")
    ] = None,
    length: Annotated[int | None, typer.Option(help="New length in minutes.")] = None,
    place: Annotated[str | None, typer.Option(help="New place or video link.")] = None,
    title: Annotated[str | None, typer.Option(help="New title.")] = None,
) -> None:
    """Change a meeting that has not started; partners who were reminded are told."""
    from bot import meetings
    from bot.calendar.zones import zone_named
    from storage.clock import utcnow
    from storage.models import Meeting

    prompts = default_prompts()
    settings = _settings_or_exit()
    protocol = _meeting_protocol(settings)
    if start is None and length is None and place is None and title is None:
        raise _meeting_fail("nothing")
    zone_used: list[str] = []

    async def job(session: Any) -> tuple[dict[str, Any], list[str], int]:
        meeting = await session.get(Meeting, meeting_id)
        if meeting is None:
            raise meetings.MeetingError("no_meeting")
        now = utcnow()
        zone_used.append(meeting.timezone)
        starts_at = None
        if start is not None:
            zone = zone_named(meeting.timezone)
            starts_at = meetings.parse_start(prompts, start, zone, now=now)
        result = await meetings.change_meeting(
            session,
            protocol,
            prompts,
            meeting,
            starts_at=starts_at,
            length_minutes=length,
            place=place,
            title=title,
            now=now,
        )
        return _meeting_row(meeting), result.changed, result.notified

    try:
        row, changed, notified = _in_meeting_transaction(settings, job)
    except meetings.MeetingError as exc:
        zone = zone_used[0] if zone_used else ""
        values = {"id": meeting_id, "start": start, "zone": zone, **exc.values}
        raise _meeting_fail(exc.reason, **values) from exc
    typer.echo(
        prompts.text(
            "cli/meeting_changed",
            id=meeting_id,
            title=row["title"],
            changed=", ".join(f"--{name}" for name in changed),
            local_start=row["local_start"],
            timezone=row["timezone"],
            length=row["length_minutes"],
            place=row["place"],
            notified=notified,
        )
    )


involvement_app = typer.Typer(help="The involvement log: time partners gave, for payment.")
app.add_typer(involvement_app, name="involvement")


@involvement_app.command("export")
def involvement_export(
    *,
    month: Annotated[str, typer.Option(help="The month, YYYY-MM (in the study's time zone).")],
    out: Annotated[
        Path | None, typer.Option(help="Write the CSV here (default: print it).")
    ] = None,
) -> None:
    """A month's approved hours and expenses per partner, WITH NAMES, for a payment claim."""
    from bot.involvement.export import claim_csv, month_rows, parse_month
    from storage.clock import utcnow
    from storage.models import AuditEvent

    prompts = default_prompts()
    settings = _settings_or_exit()
    protocol = _meeting_protocol(settings)
    period = parse_month(month, protocol.groups[0].zone)
    if period is None:
        typer.echo(prompts.label("involvement.export.bad_month"), err=True)
        raise typer.Exit(2)

    async def job(session: Any) -> str:
        rows = await month_rows(session, *period)
        session.add(
            AuditEvent(
                action="involvement.export",
                detail={"month": month, "partners": len(rows), "names": True},
                at=utcnow(),
            )
        )
        return claim_csv(prompts, month, rows)

    text = _in_meeting_transaction(settings, job)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    count = max(text.count("\n") - 2, 0)
    typer.echo(prompts.label("involvement.export.written", count=count, month=month, path=out))


@app.command("preview")
def preview(
    study: Annotated[
        Path | None,
        typer.Option(help="The study protocol (default: COMPANION_STUDY, else the shipped one)."),
    ] = None,
    locale_dir: Annotated[
        Path | None,
        typer.Option(
            help="The study's wording folder, like prompts/en-GB (default: ./prompts/<locale>"
            " in a checkout of this project, else the installed one)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the page.")] = Path("preview.html"),
    serve: Annotated[
        bool, typer.Option(help="Serve the page on 127.0.0.1, made again on every reload.")
    ] = False,
    port: Annotated[int, typer.Option(help="The port for --serve (0: any free one).")] = 8000,
) -> None:
    """One page with every message of the study as a partner sees it, to review the wording."""
    from bot.tools import preview as pv

    prompts = default_prompts()
    path = study if study is not None else _settings_or_exit().companion_study
    try:  # with --serve, a first build only checks (each reload makes the page again)
        if serve:
            shown = pv.build_preview(path, locale_dir, chart=False)
        else:
            shown = pv.write_preview(path, locale_dir, out)
    except ProtocolError as exc:
        typer.echo(_say("protocol_bad", reason=str(exc)), err=True)
        raise typer.Exit(1) from exc
    except pv.PreviewError as exc:
        typer.echo(pv.problems_text(prompts, exc), err=True)
        raise typer.Exit(1) from exc
    if not serve:
        typer.echo(prompts.text("preview/written", path=out, **pv.summary_values(shown)))
        return

    def page() -> tuple[int, str, str]:
        return pv.page_or_problems(
            path, locale_dir, prompts, lambda reason: _say("protocol_bad", reason=reason)
        )

    try:
        server = pv.make_server(page, port=port)
    except OSError as exc:  # the port is taken, or not allowed
        typer.echo(prompts.text("preview/port_busy", port=port, reason=_reason(exc)), err=True)
        raise typer.Exit(1) from exc
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    typer.echo(prompts.text("preview/serving", url=url, **pv.summary_values(shown)))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# -- companion export / report / retention ----------------------------------------------------


def _research_fail(sentence: str, code: int = 2) -> typer.Exit:
    """Print one plain sentence on stderr; return the Exit to raise."""
    typer.echo(sentence, err=True)
    return typer.Exit(code)


@app.command("export")
def export(
    *,
    out: Annotated[Path, typer.Option(help="The zip file to write.")],
    fmt: Annotated[
        str, typer.Option("--format", help="csv (one file per table) or xlsx (one workbook).")
    ] = "csv",
    since: Annotated[
        str | None, typer.Option(help="First day to include (YYYY-MM-DD, UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last day to include (YYYY-MM-DD, UTC).")
    ] = None,
    group: Annotated[
        list[str] | None, typer.Option(help="Only this group; repeat for more.")
    ] = None,
    no_free_text: Annotated[
        bool, typer.Option("--no-free-text", help="Leave out what partners wrote.")
    ] = False,
    no_voice: Annotated[bool, typer.Option("--no-voice", help="Leave out voice notes.")] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            help="Processes that write a big responses.csv side by side (default: one per "
            "core; at most 4; 1 writes it in this process, with the least memory).",
        ),
    ] = None,
) -> None:
    """Export pseudonymised answers, check-ins and meetings, with a codebook, as one zip."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bot.research import export as ex
    from storage.db import Database

    prompts = default_prompts()
    settings = _settings_or_exit()
    protocol = _meeting_protocol(settings)
    if fmt not in ("csv", "xlsx"):
        raise _research_fail(prompts.label("research.cli.bad_format", value=fmt))
    if jobs is not None and jobs < 1:
        raise _research_fail(prompts.label("research.cli.bad_jobs", value=jobs))
    secret = settings.companion_secret_key
    try:
        window = ex.make_window(
            protocol,
            since=ex.parse_day("since", since),
            until=ex.parse_day("until", until),
            groups=group or [],
        )
        if secret is None or not secret.get_secret_value().strip():
            raise ex.ExportError("no_key")
        ex.check_destination(out)
    except ex.ExportError as exc:
        raise _research_fail(exc.sentence(prompts)) from exc
    options = ex.ExportOptions(
        out=out,
        format="xlsx" if fmt == "xlsx" else "csv",
        window=window,
        free_text=not no_free_text,
        voice=not no_voice,
        jobs=jobs,
    )
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def progress(table: str, done: int, total: int | None) -> None:
        if table not in tasks:
            label = prompts.label("research.cli.progress", table=table)
            tasks[table] = bar.add_task(label, total=total)
        bar.update(tasks[table], completed=done)

    async def write() -> Any:
        db = Database(settings.database_url)
        try:
            result = await ex.write_export(
                db,
                protocol,
                prompts,
                options,
                secret=secret.get_secret_value() if secret else None,
                data_dir=settings.companion_data_dir,
                study_file=settings.companion_study,
                progress=progress,
            )
        finally:
            await db.dispose()

        async def audit(session: Any) -> None:
            ex.record_export(session, result, via="cli")

        await _in_transaction(settings, audit)
        return result

    try:
        with bar:
            result = asyncio.run(write())
    except ex.ExportError as exc:
        raise _research_fail(exc.sentence(prompts)) from exc
    except OSError as exc:
        raise _research_fail(
            prompts.label("research.cli.unwritable", path=out, reason=_reason(exc)), 1
        ) from exc
    except (SQLAlchemyError, _SchemaBehindError) as exc:
        raise _research_fail(
            prompts.label("research.cli.no_database", reason=_reason(exc)), 1
        ) from exc
    typer.echo(
        prompts.label(
            "research.cli.exported",
            path=result.path,
            rows=sum(result.rows.values()),
            tables=len(result.rows),
            sha256=result.sha256,
        )
    )


@app.command("report")
def report(
    *,
    out: Annotated[Path, typer.Option(help="The HTML page to write.")],
    pdf: Annotated[Path | None, typer.Option(help="Also write the report as a PDF.")] = None,
    since: Annotated[
        str | None, typer.Option(help="First day to include (YYYY-MM-DD, UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last day to include (YYYY-MM-DD, UTC).")
    ] = None,
) -> None:
    """Write the impact report (GRIPP2 short form, UK Standards for Public Involvement)."""
    from bot.research import export as ex
    from bot.research import report as rp
    from storage.clock import utcnow
    from storage.db import Database

    prompts = default_prompts()
    settings = _settings_or_exit()
    protocol = _meeting_protocol(settings)
    try:
        window = ex.make_window(
            protocol, since=ex.parse_day("since", since), until=ex.parse_day("until", until)
        )
        for target in (out, pdf):
            if target is not None and not target.parent.is_dir():
                raise ex.ExportError(
                    "unwritable", path=target, reason=f"the folder {target.parent} does not exist"
                )
    except ex.ExportError as exc:
        raise _research_fail(exc.sentence(prompts)) from exc

    async def build() -> Any:
        db = Database(settings.database_url)
        try:
            return await rp.make_report(db, settings, protocol, prompts, window, made=utcnow())
        finally:
            await db.dispose()

    try:
        made = asyncio.run(build())
    except (SQLAlchemyError, OSError) as exc:
        raise _research_fail(
            prompts.label("research.cli.no_database", reason=_reason(exc)), 1
        ) from exc
    try:
        out.write_text(rp.render_html(made, prompts), encoding="utf-8")
        if pdf is not None:
            rp.render_pdf(made, prompts, pdf)
    except OSError as exc:
        raise _research_fail(
            prompts.label("research.cli.unwritable", path=out, reason=_reason(exc)), 1
        ) from exc
    typer.echo(prompts.label("research.cli.reported", path=out))
    if pdf is not None:
        typer.echo(prompts.label("research.cli.reported_pdf", path=pdf))


retention_app = typer.Typer(help="Retention: delete what the study protocol keeps no longer.")
app.add_typer(retention_app, name="retention")


@retention_app.command("apply")
def retention_apply(
    *,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted; change nothing.")
    ] = False,
) -> None:
    """Apply the protocol's retention: section now (the bot also does it once a day)."""
    from bot.research.retention import KINDS, apply_retention
    from storage.clock import utcnow

    prompts = default_prompts()
    settings = _settings_or_exit()
    protocol = _meeting_protocol(settings)
    retention = protocol.retention

    async def job(session: Any) -> Any:
        return await apply_retention(
            session,
            retention,
            data_dir=settings.companion_data_dir,
            now=utcnow(),
            dry_run=dry_run,
        )

    try:
        result = asyncio.run(_in_transaction(settings, job))
    except (SQLAlchemyError, _SchemaBehindError, OSError) as exc:
        raise _research_fail(
            prompts.label("research.cli.no_database", reason=_reason(exc)), 1
        ) from exc
    days = retention.model_dump()
    items = [
        {
            "count": result.counts[kind],
            "words": prompts.label(f"research.retention.{kind}"),
            "days": days[f"{kind}_days"],
        }
        for kind in KINDS
    ]
    typer.echo(prompts.text("research/retention", dry_run=dry_run, items=items))


def main() -> None:
    """Entry point of the ``companion`` console script."""
    app()
