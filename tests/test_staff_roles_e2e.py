"""Staff roles follow the settings, end to end through the sandbox: an id taken off the
allow-list loses the role at the next start (and, without a restart, at its next update when
the settings changed), with an audit line; its old buttons and commands give no study content,
its draft and waiting notices end and relayed messages no longer reach it. `companion staff
list|revoke` takes away a role that came from an invite, with one clear sentence for each
refusal."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from bot.partners.invites import create_invites
from bot.protocol import load_protocol
from bot.tools.cli import app
from prompts import DEFAULT_STUDY_PATH, Prompts
from storage.clock import utcnow
from storage.models import (
    FORMER_STAFF,
    AuditEvent,
    OutboxMessage,
    OutboxStatus,
    Person,
    Role,
    RoleSource,
    SafeguardingAlert,
    StaffDraft,
)
from storage.queries.people import connector_chat_ids, person_for_telegram_user
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import data_for, running_companion, settle

LEA, TOM, SAM = 900_010, 900_011, 8801
OUTSIDER_TEXT = Prompts().render("start/outsider")
NOT_FOR_YOU = Prompts().render("guards/not_for_you")


def texts_since(sandbox, chat_id: int, seen: int) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in sandbox.sent_to(chat_id)[seen:]]


async def audit(database, action: str) -> list[AuditEvent]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return list(rows.scalars())


async def person(database, telegram_user_id: int) -> Person:
    async with database.sessions() as session:
        found = await person_for_telegram_user(session, telegram_user_id)
        assert found is not None
        return found


async def test_an_id_taken_off_the_allow_list_loses_the_role_at_start(
    sandbox, database, database_url, tmp_path
) -> None:
    sam = await enrol(database, SAM, name="Sam")
    priya, lea = sandbox.user(CONNECTOR_ID, "Priya"), sandbox.user(LEA, "Lea")
    sandbox.user(SAM, "Sam")
    both = [CONNECTOR_ID, LEA]
    async with running_companion(
        sandbox, database_url, tmp_path / "data", companion_connector_ids=both
    ) as bot:
        priya.send_command("help")
        lea.send_command("broadcast")
        await settle(bot, sandbox)
        menu = sandbox.sent_to(LEA)[-1]
        lea.press(menu, data_for(menu, "New broadcast"))  # a draft left open
        await settle(bot, sandbox)
        assert "who is it for" in sandbox.sent_to(LEA)[-1]["text"]
        lea_id = (await person(database, LEA)).id
        async with database.transaction() as session:
            assert await session.get(StaffDraft, lea_id) is not None
            assert await connector_chat_ids(session) == sorted(both)
            # A notice to her that has not left yet (due tomorrow).
            session.add(
                OutboxMessage(
                    idempotency_key="notice-for-lea",
                    chat_id=LEA,
                    kind="staff_alert",
                    payload={"text": "A partner needs you"},
                    next_attempt_at=utcnow() + timedelta(days=1),
                )
            )
            # An alert she said "I'm on it" to, not resolved yet.
            session.add(
                SafeguardingAlert(
                    person_id=sam.id,
                    rule="self_harm",
                    source="message",
                    acknowledged_by_person_id=lea_id,
                    acknowledged_at=utcnow(),
                )
            )
    assert (await person(database, LEA)).role_source == RoleSource.ALLOW_LIST

    # The study takes Lea off COMPANION_CONNECTOR_IDS and restarts the bot.
    async with running_companion(
        sandbox, database_url, tmp_path / "data", companion_connector_ids=[CONNECTOR_ID]
    ) as bot:
        former = await person(database, LEA)
        assert former.role == FORMER_STAFF
        [line] = await audit(database, "role.revoked")
        assert line.detail["role"] == "connector"
        assert (line.detail["source"], line.detail["by"]) == ("allow-list", "settings")
        assert line.detail["person_id"] == former.id
        assert (line.detail["cancelled_messages"], line.detail["reopened_alerts"]) == (1, 1)
        async with database.sessions() as session:
            assert await session.get(StaffDraft, former.id) is None
            notice = (
                await session.execute(
                    select(OutboxMessage).where(OutboxMessage.idempotency_key == "notice-for-lea")
                )
            ).scalar_one()
            assert notice.status == OutboxStatus.CANCELLED
            alert = (await session.execute(select(SafeguardingAlert))).scalar_one()
            assert alert.acknowledged_by_person_id is None  # open again for the others
            assert await connector_chat_ids(session) == [CONNECTOR_ID]
        deleted = sandbox.requests_for("deleteMyCommands")
        assert any(r.params.get("scope", {}).get("chat_id") == LEA for r in deleted)

        # Her old /broadcast button and /partners give her nothing of the study.
        seen = len(sandbox.sent_to(LEA))
        lea.press(menu, data_for(menu, "New broadcast"))
        await settle(bot, sandbox)
        lea.send_command("partners")
        await settle(bot, sandbox)
        assert texts_since(sandbox, LEA, seen) == [OUTSIDER_TEXT]
        lea.send_command("broadcast")
        await settle(bot, sandbox)
        assert texts_since(sandbox, LEA, seen) == [OUTSIDER_TEXT]  # at most once in a while
        async with database.sessions() as session:
            assert await session.get(StaffDraft, former.id) is None
        priya.send_command("partners")
        await settle(bot, sandbox)
        assert "Sam" in sandbox.sent_to(CONNECTOR_ID)[-1]["text"]

    # Put back on the list (as a researcher this time), the role returns at the next start.
    async with running_companion(
        sandbox, database_url, tmp_path / "data", companion_researcher_ids=[LEA]
    ):
        back = await person(database, LEA)
        assert (back.role, back.role_source) == (Role.RESEARCHER, RoleSource.ALLOW_LIST)
        [granted] = [a for a in await audit(database, "role.granted") if a.detail.get("by")]
        assert granted.detail == {"role": "researcher", "source": "allow-list", "by": "settings"}


async def test_the_settings_are_read_again_on_each_staff_update(companion, sandbox, database):
    await enrol(database, SAM, name="Sam")
    lea = sandbox.user(LEA, "Lea")
    ids = companion.settings.companion_connector_ids
    ids.append(LEA)
    lea.send_command("partners")
    await settle(companion, sandbox)
    assert "Sam" in sandbox.sent_to(LEA)[-1]["text"]

    # Moved to the researcher list while the bot runs: a researcher at her next update.
    ids.remove(LEA)
    companion.settings.companion_researcher_ids.append(LEA)
    seen = len(sandbox.sent_to(LEA))
    lea.send_command("partners")
    await settle(companion, sandbox)
    assert texts_since(sandbox, LEA, seen) == [NOT_FOR_YOU]
    assert (await person(database, LEA)).role == Role.RESEARCHER
    [revoked] = await audit(database, "role.revoked")
    assert (revoked.detail["role"], revoked.detail["by"]) == ("connector", "settings")

    # Off both lists: someone not enrolled, with an audit line.
    companion.settings.companion_researcher_ids.remove(LEA)
    lea.send_command("partners")
    await settle(companion, sandbox)
    assert texts_since(sandbox, LEA, seen)[1:] == [OUTSIDER_TEXT]
    assert (await person(database, LEA)).role == FORMER_STAFF
    assert [a.detail["role"] for a in await audit(database, "role.revoked")] == [
        "connector",
        "researcher",
    ]


async def cli(*args: str, env: dict[str, str], input: str | None = None):
    """``companion ...`` through typer's CliRunner, in a thread (the bot runs on this loop)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env, input=input)


async def test_companion_staff_revoke_takes_an_invited_role(
    companion, sandbox, database, database_url
) -> None:
    await enrol(database, SAM, name="Sam")
    priya, tom = sandbox.user(CONNECTOR_ID, "Priya"), sandbox.user(TOM, "Tom")
    protocol = load_protocol(DEFAULT_STUDY_PATH)
    async with database.transaction() as session:
        [first, second] = await create_invites(session, protocol, role=Role.CONNECTOR, count=2)
    tom.send_command("start", first.code)
    priya.send_command("help")
    await settle(companion, sandbox)
    tom.send_command("partners")
    await settle(companion, sandbox)
    assert "Sam" in sandbox.sent_to(TOM)[-1]["text"]
    tom_person = await person(database, TOM)
    assert tom_person.role_source == RoleSource.INVITE
    env = {"DATABASE_URL": database_url, "COMPANION_CONNECTOR_IDS": str(CONNECTOR_ID)}

    listed = await cli("staff", "list", "--json", env=env)
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["role"], r["source"], r["name"]) for r in rows] == [
        ("connector", "invite", "Tom"),
        ("connector", "allow-list", "Priya"),
    ]
    assert rows[0]["pseudonym"] == tom_person.pseudonym
    assert str(TOM) not in listed.stdout and str(CONNECTOR_ID) not in listed.stdout
    text = await cli("staff", "list", env=env)
    assert tom_person.pseudonym in text.stdout and "from invite" in text.stdout

    # Asked first; "no" changes nothing.
    declined = await cli("staff", "revoke", tom_person.pseudonym, env=env, input="n\n")
    assert declined.exit_code == 1
    assert "Nothing was changed." in declined.output
    assert (await person(database, TOM)).role == Role.CONNECTOR

    done = await cli("staff", "revoke", str(TOM), "--yes", "--json", env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {
        "pseudonym": tom_person.pseudonym,
        "role": "connector",
        "source": "invite",
        "revoked": True,
    }
    [line] = await audit(database, "role.revoked")
    assert (line.detail["source"], line.detail["by"]) == ("invite", "cli")
    seen = len(sandbox.sent_to(TOM))
    tom.send_command("partners")
    await settle(companion, sandbox)
    assert texts_since(sandbox, TOM, seen) == [OUTSIDER_TEXT]

    # Errors: one sentence each, and a non-zero exit.
    for who, sentence in (
        (tom_person.pseudonym, "holds no staff role any more"),
        ("P-NOBODY00", "Nobody enrolled is known as P-NOBODY00"),
        (str(SAM), "is a partner, not staff"),
        (str(CONNECTOR_ID), "is on COMPANION_CONNECTOR_IDS: take the id off that setting"),
    ):
        refused = await cli("staff", "revoke", who, "--yes", env=env)
        assert refused.exit_code == 1, (who, refused.output)
        assert sentence in refused.output
        assert "Traceback" not in refused.output
        assert len(refused.output.strip().splitlines()) == 1
    assert (await person(database, CONNECTOR_ID)).role == Role.CONNECTOR

    # A new invite makes former staff staff again: the same person, from the invite.
    tom.send_command("start", second.code)
    await settle(companion, sandbox)
    again = await person(database, TOM)
    assert (again.id, again.role, again.role_source) == (
        tom_person.id,
        Role.CONNECTOR,
        RoleSource.INVITE,
    )
    tom.send_command("partners")
    await settle(companion, sandbox)
    assert "Sam" in sandbox.sent_to(TOM)[-1]["text"]


async def test_migration_0007_records_where_existing_roles_came_from(tmp_path) -> None:
    """Staff enrolled before 0007: an invite's user is "invite", an allow-listed connector (by
    their own role.granted line) "allow-list", and anyone else stays unknown (left alone)."""
    from sqlalchemy import text

    from storage.db import Database
    from storage.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade(url, "0006")
    db = Database(url)
    when = "2026-01-05 10:00:00.000000"
    try:
        async with db.transaction() as session:
            for pid, role in (
                (1, "connector"),
                (2, "connector"),
                (3, "researcher"),
                (4, "partner"),
            ):
                await session.execute(
                    text(
                        "INSERT INTO person (id, pseudonym, role, status, created_at) "
                        "VALUES (:id, :p, :role, 'active', :at)"
                    ),
                    {"id": pid, "p": f"P-{pid}", "role": role, "at": when},
                )
            for pid in (2, 4):
                await session.execute(
                    text(
                        "INSERT INTO invite (code_hash, role, created_at, expires_at, used_at, "
                        "used_by_person_id) VALUES (:h, 'connector', :at, :at, :at, :pid)"
                    ),
                    {"h": f"{pid}" * 64, "at": when, "pid": pid},
                )
            await session.execute(
                text(
                    "INSERT INTO audit_event (at, actor_person_id, action, detail) "
                    "VALUES (:at, 1, 'role.granted', :detail)"
                ),
                {"at": when, "detail": json.dumps({"role": "connector", "source": "allow-list"})},
            )
    finally:
        await db.dispose()
    await upgrade(url)
    db = Database(url)
    try:
        async with db.sessions() as session:
            rows = await session.execute(
                select(Person.id, Person.role_source, Person.role_since).order_by(Person.id)
            )
            got = [(pid, source, since.year) for pid, source, since in rows.all()]
    finally:
        await db.dispose()
    assert got == [
        (1, "allow-list", 2026),
        (2, "invite", 2026),
        (3, None, 2026),
        (4, "invite", 2026),
    ]
