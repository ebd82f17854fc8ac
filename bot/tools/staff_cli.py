"""``companion staff list|revoke``: who holds a staff role, and taking one away.

The rules are :mod:`bot.partners.staff_roles`: a role from an invite is taken away here; one
from an allow-list is refused while the id is still on the list (it would come back at the next
start), so the id comes off the setting and the bot is restarted instead. The list names people
by pseudonym and name, never by Telegram id. Sentences come from ``prompts/`` (``staff.cli.*``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from prompts import default_prompts

staff_app = typer.Typer(help="Staff roles: who holds one, and taking one away.")


def _say(key: str, **values: object) -> str:
    return default_prompts().label(f"staff.cli.{key}", **values)


def _name(name: str) -> str:
    return name or default_prompts().label("people.unnamed")


def _fail(sentence: str, code: int = 1) -> typer.Exit:
    typer.echo(sentence, err=True)
    return typer.Exit(code)


def _run(job: Any) -> Any:
    """Run ``job(session, settings)`` in one transaction on the configured database."""
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from bot.tools.cli import _in_transaction, _reason, _SchemaBehindError, _settings_or_exit

    settings = _settings_or_exit()

    async def with_settings(session: Any) -> Any:
        return await job(session, settings)

    try:
        return asyncio.run(_in_transaction(settings, with_settings))
    except (SQLAlchemyError, _SchemaBehindError, OSError) as exc:
        raise _fail(_say("no_database", reason=_reason(exc))) from exc


@staff_app.command("list")
def staff_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Everyone with a staff role (then former staff): role, where it came from, since when."""
    from bot.partners.staff_roles import staff_members

    async def job(session: Any, _settings: Any) -> list[Any]:
        return await staff_members(session)

    members = _run(job)
    if as_json:
        typer.echo(json.dumps([m.to_json() for m in members], indent=2))
        return
    for member in members:
        source = member.source or _say("source_unknown")
        since = member.since.strftime("%Y-%m-%d")
        typer.echo(
            _say(
                "line",
                pseudonym=member.pseudonym,
                role=member.role,
                source=source,
                since=since,
                name=_name(member.name),
            )
        )
    if not members:
        typer.echo(_say("none"))


@staff_app.command("revoke")
def staff_revoke(
    who: Annotated[
        str, typer.Argument(metavar="PERSON", help="Their pseudonym, or their Telegram id.")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask first.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Take a staff role away (from an invite; an allow-listed id comes off the setting)."""
    from bot.partners.staff_roles import RevokeError, revocable, revoke
    from storage.clock import utcnow
    from storage.queries.people import name_of

    async def check(session: Any, settings: Any) -> dict[str, str]:
        person = await revocable(session, settings, who)
        name = await name_of(session, person.id)
        return {"who": person.pseudonym, "role": person.role, "name": _name(name)}

    async def job(session: Any, settings: Any) -> dict[str, Any]:
        person = await revocable(session, settings, who)
        source = person.role_source
        name = await name_of(session, person.id)
        change = await revoke(session, person, by="cli", now=utcnow())
        return {"who": person.pseudonym, "role": change.old, "source": source, "name": name}

    try:
        if not yes:
            found = _run(check)
            if not typer.confirm(_say("confirm", **found), err=True):
                raise _fail(_say("not_changed"))
        done = _run(job)
    except RevokeError as exc:
        raise _fail(_say(exc.reason, **exc.values)) from exc
    if as_json:
        result = {"pseudonym": done["who"], "role": done["role"], "source": done["source"]}
        typer.echo(json.dumps({**result, "revoked": True}, indent=2))
    else:
        typer.echo(_say("revoked", who=done["who"], name=_name(done["name"]), role=done["role"]))
