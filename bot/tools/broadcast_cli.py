"""``companion broadcast send|list|report|cancel``: broadcasts from the command line.

The same service as ``/broadcast`` in Telegram (:mod:`bot.connector.broadcast`): the rows it
writes are sent by the running bot. The heavy modules are imported inside each command, so
``companion --help`` stays quick. Sentences come from ``prompts/`` (``broadcast.cli.*``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from prompts import default_prompts

broadcast_app = typer.Typer(help="Broadcasts: send one, list them, see a report, cancel one.")


def _say(key: str, **values: object) -> str:
    return default_prompts().label(f"broadcast.cli.{key}", **values)


def _fail(sentence: str, code: int = 2) -> typer.Exit:
    typer.echo(sentence, err=True)
    return typer.Exit(code)


def _run(job: Any) -> Any:
    """Run ``job(session)`` in one transaction on the configured database."""
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from bot.tools.cli import _in_transaction, _reason, _SchemaBehindError, _settings_or_exit

    settings = _settings_or_exit()
    try:
        return asyncio.run(_in_transaction(settings, job))
    except (SQLAlchemyError, _SchemaBehindError, OSError) as exc:
        raise _fail(_say("no_database", reason=_reason(exc)), 1) from exc


def _protocol() -> Any:
    from bot.tools.cli import _meeting_protocol, _settings_or_exit

    return _meeting_protocol(_settings_or_exit())


def _problem(exc: Any) -> typer.Exit:
    """The one clear sentence for a BroadcastError (the same words as in Telegram)."""
    import re

    html = default_prompts().render("broadcast/problem", reason=exc.reason, **exc.values)
    return _fail(re.sub(r"<[^>]+>", "", html), 1 if exc.reason == "nobody" else 2)


@broadcast_app.command("send")
def broadcast_send(
    *,
    text: Annotated[
        str | None, typer.Option(help="The message (Telegram HTML; {name} is each name).")
    ] = None,
    text_file: Annotated[
        Path | None, typer.Option(help="Read the message from this UTF-8 file instead.")
    ] = None,
    group: Annotated[
        list[str] | None, typer.Option(help="A group from the study protocol; repeat for more.")
    ] = None,
    meeting: Annotated[
        int | None, typer.Option(help="Only the partners invited to this meeting.")
    ] = None,
    said_yes: Annotated[
        bool, typer.Option("--said-yes", help="With --meeting: only those who said yes.")
    ] = False,
    urgent: Annotated[
        bool, typer.Option("--urgent", help="Send now, even in partners' quiet hours.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before sending.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Send a broadcast (without --yes it shows who it reaches and asks first)."""
    from bot.connector import broadcast as broadcasts
    from storage.clock import utcnow

    if text is None and text_file is None:
        raise _fail(_say("no_text"))
    if said_yes and meeting is None:
        raise _fail(_say("said_yes_needs_meeting"))
    if text is None and text_file is not None:
        try:
            text = text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(_say("no_file", path=text_file, reason=type(exc).__name__)) from exc
    content = broadcasts.Content("text", text or "")
    audience = broadcasts.Audience(
        groups=tuple(group or ()), meeting_id=meeting, said_yes=said_yes
    )
    protocol = _protocol()
    try:
        broadcasts.check_content(content)
    except broadcasts.BroadcastError as exc:
        raise _problem(exc) from exc

    async def planned(session: Any) -> Any:
        return await broadcasts.plan(session, protocol, audience, now=utcnow())

    try:
        plan = _run(planned)
    except broadcasts.BroadcastError as exc:
        raise _problem(exc) from exc
    if not plan.recipients:
        raise _problem(broadcasts.BroadcastError("nobody"))
    if not yes:
        left_out = sum(plan.left_out.values())
        question = _say("confirm", count=len(plan.recipients), left_out=left_out)
        if not typer.confirm(question, err=True):
            raise _fail(_say("not_sent"), 1)

    async def job(session: Any) -> dict[str, Any]:
        sent = await broadcasts.send(
            session,
            protocol,
            default_prompts(),
            audience=audience,
            content=content,
            urgent=urgent,
            by_person_id=None,
            now=utcnow(),
        )
        return {
            "id": sent.id,
            "recipients": sent.recipients,
            "left_out": dict(sent.left_out),
            "urgent": sent.urgent,
        }

    try:
        result = _run(job)
    except broadcasts.BroadcastError as exc:
        raise _problem(exc) from exc
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(_say("sent", id=result["id"], count=result["recipients"]))


def _report_line(row: dict[str, Any]) -> str:
    return _say("report", **row)


@broadcast_app.command("list")
def broadcast_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """The latest broadcasts with their reports, newest first."""
    from bot.connector import broadcast as broadcasts
    from storage.clock import utcnow
    from storage.queries.broadcasts import recent_broadcasts

    async def job(session: Any) -> list[dict[str, Any]]:
        rows = []
        for item in await recent_broadcasts(session, 50):
            current = await broadcasts.report(session, item.id, now=utcnow())
            if current is not None:
                rows.append(current.to_json())
        return rows

    rows = _run(job)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(_report_line(row))
    if not rows:
        typer.echo(_say("none"))


@broadcast_app.command("report")
def broadcast_report(
    broadcast_id: Annotated[int, typer.Argument(metavar="ID", help="The broadcast's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """How one broadcast went: delivered, waiting, not reachable, failed, unknown, cancelled."""
    from bot.connector import broadcast as broadcasts
    from storage.clock import utcnow

    async def job(session: Any) -> dict[str, Any] | None:
        current = await broadcasts.report(session, broadcast_id, now=utcnow())
        return current.to_json() if current is not None else None

    row = _run(job)
    if row is None:
        raise _fail(_say("no_broadcast", id=broadcast_id), 1)
    typer.echo(json.dumps(row, indent=2) if as_json else _report_line(row))


@broadcast_app.command("cancel")
def broadcast_cancel(
    broadcast_id: Annotated[int, typer.Argument(metavar="ID", help="The broadcast's id.")],
) -> None:
    """Cancel what has not left yet of a broadcast."""
    from bot.connector import broadcast as broadcasts
    from storage.clock import utcnow

    async def job(session: Any) -> int | None:
        return await broadcasts.cancel(session, broadcast_id, by_person_id=None, now=utcnow())

    stopped = _run(job)
    if stopped is None:
        raise _fail(_say("no_broadcast", id=broadcast_id), 1)
    typer.echo(_say("cancelled", id=broadcast_id, count=stopped))
