"""When a ``companion`` command fails: one plain sentence and a non-zero exit, never a token.

Every command runs inside :class:`CompanionGroup`. An exception that no command explained
itself is told as one sentence on stderr, saying what went wrong and what to do next (the
words are ``cli.failed.*`` in ``prompts/``), and the command exits with status 1.
``companion --debug ...`` (or ``COMPANION_LOG_LEVEL=DEBUG``) prints the traceback first. The
bot token is redacted from both: python-telegram-bot puts it in the text of ``InvalidToken``,
and an HTTP library may put it in a URL.

:func:`failure_sentence` is the one home of those sentences; commands that report a failure
themselves (``check-config``, ``invite create``) use it too.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import typer
from sqlalchemy.exc import ArgumentError, InvalidRequestError, SQLAlchemyError
from typer.core import TyperGroup
from typer.exceptions import TyperException

from bot.logs import redact
from bot.protocol import ProtocolError
from bot.settings import MissingTokenError, Settings
from prompts import Prompts, default_prompts

#: Where an OSError or ImportError comes from when it is the database that failed (asyncpg
#: raises a refused connection as a plain OSError, SQLAlchemy a missing driver as ImportError).
_DATABASE_PACKAGES = frozenset({"asyncpg", "aiosqlite", "sqlite3", "sqlalchemy"})
#: At most this much of an error's own text goes into a sentence.
_REASON_LENGTH = 160


def current_settings() -> Settings | None:
    """The settings, or None when they do not load (that problem is explained elsewhere)."""
    try:
        return Settings()
    except Exception:
        return None


def token_secrets(settings: Settings | None) -> list[str]:
    """The exact strings to redact besides anything shaped like a token: the configured token."""
    token = settings.telegram_bot_token if settings is not None else None
    return [token.get_secret_value()] if token is not None else []


def reason(exc: BaseException, settings: Settings | None = None) -> str:
    """The first line of an error's text (its type when it has none), with no token in it."""
    lines = str(exc).splitlines()
    text = redact(lines[0], token_secrets(settings)) if lines else ""
    # Redacted before it is cut: a token cut in half would no longer look like one.
    return text[:_REASON_LENGTH] or type(exc).__name__


def _raised_in(exc: BaseException, packages: frozenset[str]) -> bool:
    """Whether the traceback of ``exc`` passes through a module of one of ``packages``."""
    frame = exc.__traceback__
    while frame is not None:
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] in packages:
            return True
        frame = frame.tb_next
    return False


def _safe_database_url(settings: Settings | None) -> str:
    """DATABASE_URL without its password (empty when it cannot even be parsed)."""
    from sqlalchemy.engine import make_url

    if settings is None:
        return ""
    try:
        return make_url(settings.database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return ""


def _is_telegram_error(exc: BaseException, name: str = "TelegramError") -> bool:
    """Whether ``exc`` is python-telegram-bot's error ``name`` (from ``telegram.error``).

    It is looked up, not imported: only a command that loaded python-telegram-bot can raise one,
    and importing it costs about 40 MB that commands such as ``export`` do without.
    """
    errors = sys.modules.get("telegram.error")
    return errors is not None and isinstance(exc, getattr(errors, name))


def telegram_sentence(prompts: Prompts, exc: BaseException, settings: Settings | None) -> str:
    """What a failed Bot API call means for the person at the keyboard (no token in it)."""
    url = settings.api_base_url if settings is not None else ""
    if isinstance(exc, MissingTokenError):
        return prompts.label("cli.token_missing")
    if _is_telegram_error(exc, "InvalidToken"):  # Telegram answered 401 (404: a malformed token)
        return prompts.label("cli.failed.token_rejected", url=url)
    # NetworkError covers TimedOut too: the request got no answer
    if _is_telegram_error(exc, "NetworkError") or isinstance(exc, OSError):
        return prompts.label(
            "cli.failed.telegram_unreachable", url=url, reason=reason(exc, settings)
        )
    return prompts.label("cli.failed.telegram_refused", url=url, reason=reason(exc, settings))


def failure_sentence(exc: BaseException, settings: Settings | None = None) -> str:
    """One sentence saying what went wrong and what to do next; it never holds the token."""
    prompts = default_prompts()
    if _is_telegram_error(exc) or isinstance(exc, MissingTokenError):
        return telegram_sentence(prompts, exc, settings)
    if isinstance(exc, ProtocolError):
        return prompts.label("cli.protocol_bad", reason=redact(str(exc), token_secrets(settings)))
    url = _safe_database_url(settings)
    if isinstance(exc, ArgumentError | InvalidRequestError) or (
        isinstance(exc, ImportError) and _raised_in(exc, _DATABASE_PACKAGES)
    ):  # an address SQLAlchemy cannot parse, or a driver this bot does not ship
        return prompts.label("cli.failed.database_url", reason=reason(exc, settings))
    if isinstance(exc, SQLAlchemyError) or (
        isinstance(exc, OSError) and _raised_in(exc, _DATABASE_PACKAGES)
    ):
        return prompts.label("cli.database_unreachable", url=url, reason=reason(exc, settings))
    if isinstance(exc, OSError):
        return prompts.label("cli.failed.system", reason=reason(exc, settings))
    return prompts.label(
        "cli.failed.unexpected", kind=type(exc).__name__, reason=reason(exc, settings)
    )


def wants_traceback(debug_option: bool, settings: Settings | None) -> bool:
    """Whether a failure shows its traceback: ``--debug``, or the log level is DEBUG."""
    level = settings.companion_log_level if settings is not None else ""
    return debug_option or level.strip().upper() == "DEBUG"


class CompanionGroup(TyperGroup):
    """The ``companion`` command: a failure no command explained becomes one plain sentence."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; tell an unexplained failure in one sentence and exit with 1."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # a command's own exit, Ctrl-C, or a usage error typer explains itself
        except Exception as exc:
            settings = current_settings()
            if wants_traceback(bool(ctx.params.get("debug")), settings):
                text = "".join(traceback.format_exception(exc))
                typer.echo(redact(text, token_secrets(settings)), err=True, nl=False)
            typer.echo(failure_sentence(exc, settings), err=True)
            raise typer.Exit(1) from None
