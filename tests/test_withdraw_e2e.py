"""/withdraw through the sandbox: one confirmation, all contact stops at once, and what was
given is kept or deleted as the protocol says. Afterwards nothing reaches the person."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import JSON, String, Text, func, select

from bot.privacy.withdrawal import forget_names, goodbye_key, withdraw
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.clock import utcnow
from storage.models import (
    Answer,
    AuditEvent,
    Base,
    Checkin,
    CheckinStatus,
    ConsentDecision,
    OutboxMessage,
    OutboxStatus,
    PartnerProfile,
    Person,
    PersonStatus,
    SafeguardingAlert,
    TelegramIdentity,
)
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import buttons, data_for
from tests.tools_support import (
    Given,
    add_checkin,
    day,
    protocol_with,
    running_companion,
    settle,
)

USER = 8301


async def count(database, model, *where) -> int:
    async with database.sessions() as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)
        return int((await session.execute(query)).scalar_one())


async def partner_with_history(database, tmp_path):
    sam = await enrol(database, USER, name="Sam")
    voice = tmp_path / "voice" / f"{sam.pseudonym}-1.oga"
    voice.parent.mkdir(parents=True)
    voice.write_bytes(b"OggS")
    done = await add_checkin(
        database,
        sam.id,
        [
            Given("confidence", 3, day(3, 3)),
            Given("reflection", None, day(3, 3), voice_path=f"voice/{voice.name}"),
        ],
    )
    await add_checkin(
        database,
        sam.id,
        [Given("confidence", 2, utcnow())],
        status=CheckinStatus.OPEN,
        when=utcnow(),
    )
    async with database.transaction() as session:
        answer_id = (
            await session.execute(select(Answer.id).where(Answer.checkin_id == done).limit(1))
        ).scalar_one()
        session.add(
            SafeguardingAlert(
                person_id=sam.id, rule="phrase", source="answer", answer_id=answer_id
            )
        )
        profile = await session.get(PartnerProfile, sam.id)
        assert profile is not None
        profile.awaiting_input = "checkin:reflection"
    charts = tmp_path / "charts"
    charts.mkdir()
    (charts / f"{sam.pseudonym}.png").write_bytes(b"png")
    (charts / f"legacy-{sam.pseudonym}.pdf").write_bytes(b"%PDF their words")
    return sam, voice


async def add_reminder(database, person_id: int) -> None:
    """A reminder queued for later, not yet sent (it would hold back the chat's queue)."""
    async with database.transaction() as session:
        await enqueue(
            session,
            key="reminder:later",
            chat_id=USER,
            text="A reminder",
            person_id=person_id,
            not_before=utcnow() + timedelta(hours=2),
        )


async def confirm_withdrawal(sandbox, companion, person_id: int):
    user = sandbox.user(USER, "Sam")
    user.send_command("withdraw")
    [confirm] = await sandbox.wait_for_messages(USER, 1, timeout=10)
    data = [b["callback_data"] for row in confirm["reply_markup"]["inline_keyboard"] for b in row]
    assert data[0].startswith("wd:yes:") and data[1] == "wd:no"
    await add_reminder(companion.db, person_id)
    user.press(confirm, data[0])
    [_, goodbye] = await sandbox.wait_for_messages(USER, 2, timeout=10)
    await settle(companion, sandbox)
    return confirm, goodbye, data[0]


async def nothing_more_reaches_them(sandbox, companion, *, person_id, confirm, yes):
    database = companion.db
    before = len(sandbox.sent_to(USER))
    # Something queued for them afterwards (say, by the scheduler) is cancelled by the sender.
    async with database.transaction() as session:
        late = await enqueue(
            session, key="late:prompt", chat_id=USER, text="Time to check in", person_id=person_id
        )
    companion.sender.wake()
    user = sandbox.user(USER)
    user.send_text("hello? are you there")
    for command in ("help", "journey", "mydata", "settings", "pause", "checkin", "withdraw"):
        user.send_command(command)
    stale = user.press(confirm, yes)
    await settle(companion, sandbox)
    assert len(sandbox.sent_to(USER)) == before, "a withdrawn person gets no reply at all"
    assert sandbox.callback_answers[stale["callback_query"]["id"]].get("text") is None
    async with database.sessions() as session:
        row = await session.get(OutboxMessage, late)
        assert row is not None and row.status == OutboxStatus.CANCELLED
        assert row.last_error == "withdrawn"
    assert await count(database, AuditEvent, AuditEvent.action == "person.withdrawn") == 1


async def test_withdraw_keep_stops_contact_and_keeps_the_data(
    sandbox, database, database_url, tmp_path
):
    sam, voice = await partner_with_history(database, tmp_path)
    async with running_companion(
        sandbox, database_url, tmp_path, protocol=protocol_with("keep")
    ) as companion:
        confirm, goodbye, yes = await confirm_withdrawal(sandbox, companion, sam.id)
        assert "will be kept, without your name" in confirm["text"]
        assert "Priya" in confirm["text"]
        assert "You have stopped taking part" in goodbye["text"]
        assert "kept without your name" in goodbye["text"]
        assert "116 123" in goodbye["text"]

        async with database.sessions() as session:
            person = await session.get(Person, sam.id)
            profile = await session.get(PartnerProfile, sam.id)
            assert person is not None and profile is not None
            assert person.status == PersonStatus.WITHDRAWN and person.status_changed_at
            assert profile.withdrawn_at is not None and profile.awaiting_input is None
            statuses = (
                await session.execute(select(Checkin.status).order_by(Checkin.id))
            ).scalars()
            assert list(statuses) == [CheckinStatus.COMPLETED, CheckinStatus.CANCELLED]
            reminder = (
                await session.execute(
                    select(OutboxMessage).where(OutboxMessage.idempotency_key == "reminder:later")
                )
            ).scalar_one()
            assert reminder.status == OutboxStatus.CANCELLED
            bye = (
                await session.execute(
                    select(OutboxMessage).where(
                        OutboxMessage.idempotency_key == goodbye_key(sam.id)
                    )
                )
            ).scalar_one()
            assert bye.person_id is None and bye.status == OutboxStatus.SENT
            audit = (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.action == "person.withdrawn")
                )
            ).scalar_one()
            assert audit.detail["data"] == "keep" and audit.detail["cancelled_messages"] == 1
            identity = (await session.execute(select(TelegramIdentity))).scalar_one()
            assert identity.preferred_name == "Sam"
            latest_take_part = (
                await session.execute(
                    select(ConsentDecision.granted)
                    .where(ConsentDecision.item_key == "take_part")
                    .order_by(ConsentDecision.id.desc())
                    .limit(1)
                )
            ).scalar_one()
            assert latest_take_part is False
        assert await count(database, Answer) == 3, "keep: the answers stay"
        assert voice.exists(), "keep: the voice note stays"
        assert not (tmp_path / "charts" / f"{sam.pseudonym}.png").exists(), "copies go"
        await nothing_more_reaches_them(
            sandbox, companion, person_id=sam.id, confirm=confirm, yes=yes
        )


async def test_withdraw_delete_removes_what_they_gave(sandbox, database, database_url, tmp_path):
    sam, voice = await partner_with_history(database, tmp_path)
    async with running_companion(
        sandbox, database_url, tmp_path, protocol=protocol_with("delete")
    ) as companion:
        confirm, goodbye, yes = await confirm_withdrawal(sandbox, companion, sam.id)
        assert "will be deleted" in confirm["text"]
        assert "has been deleted" in goodbye["text"]

        assert await count(database, Answer) == 0
        assert await count(database, Checkin) == 0
        async with database.sessions() as session:
            consents = (
                await session.execute(select(ConsentDecision.item_key, ConsentDecision.granted))
            ).all()
            assert [tuple(c) for c in consents] == [("take_part", False)], "only the withdrawal"
            identity = (await session.execute(select(TelegramIdentity))).scalar_one()
            assert identity.first_name is None and identity.preferred_name is None
            assert identity.telegram_user_id == USER, "kept, so the bot knows to stay silent"
            person = await session.get(Person, sam.id)
            assert person is not None and person.pseudonym == sam.pseudonym
            alert = (await session.execute(select(SafeguardingAlert))).scalar_one()
            assert alert.answer_id is None, "the duty-of-care record stays, unlinked"
            payloads = (
                await session.execute(
                    select(OutboxMessage.payload).where(
                        OutboxMessage.idempotency_key != goodbye_key(sam.id)
                    )
                )
            ).scalars()
            assert all("text" not in p for p in payloads), "texts sent to them are redacted"
            audit = (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.action == "person.withdrawn")
                )
            ).scalar_one()
            assert audit.detail["data"] == "delete" and audit.detail["deleted"]["answers"] == 3
        assert not voice.exists()
        assert not (tmp_path / "charts" / f"{sam.pseudonym}.png").exists()
        assert not (tmp_path / "charts" / f"legacy-{sam.pseudonym}.pdf").exists()
        await nothing_more_reaches_them(
            sandbox, companion, person_id=sam.id, confirm=confirm, yes=yes
        )


async def test_no_keep_going_changes_nothing(sandbox, database, database_url, tmp_path):
    sam = await enrol(database, USER)
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        user = sandbox.user(USER, "Sam")
        user.send_command("withdraw")
        [confirm] = await sandbox.wait_for_messages(USER, 1, timeout=10)
        user.press(confirm, "wd:no")
        [_, kept] = await sandbox.wait_for_messages(USER, 2, timeout=10)
        await settle(companion, sandbox)
    assert "Nothing has changed" in kept["text"]
    async with database.sessions() as session:
        person = await session.get(Person, sam.id)
        assert person is not None and person.status == PersonStatus.ACTIVE
    assert await count(database, AuditEvent, AuditEvent.action == "person.withdrawn") == 0


async def test_old_or_forged_confirm_buttons_change_nothing(
    sandbox, database, database_url, tmp_path
):
    sam = await enrol(database, USER)
    old = int((utcnow() - timedelta(days=2)).timestamp())
    future = int((utcnow() + timedelta(days=2)).timestamp())
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        user = sandbox.user(USER, "Sam")
        user.send_command("withdraw")
        [confirm] = await sandbox.wait_for_messages(USER, 1, timeout=10)
        presses = [
            user.press(confirm, data)
            for data in (f"wd:yes:{old}", f"wd:yes:{future}", "wd:yes", "wd:yes:abc", "wd:maybe")
        ]
        await settle(companion, sandbox)
    for press in presses:
        assert "out of date" in sandbox.callback_answers[press["callback_query"]["id"]]["text"]
    assert len(sandbox.sent_to(USER)) == 1
    async with database.sessions() as session:
        person = await session.get(Person, sam.id)
        assert person is not None and person.status == PersonStatus.ACTIVE


async def test_a_double_tap_withdraws_once(sandbox, database, database_url, tmp_path):
    await enrol(database, USER)
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        user = sandbox.user(USER, "Sam")
        user.send_command("withdraw")
        [confirm] = await sandbox.wait_for_messages(USER, 1, timeout=10)
        yes = confirm["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        user.press(confirm, yes)
        user.press(confirm, yes)
        await sandbox.wait_for_messages(USER, 2, timeout=10)
        await settle(companion, sandbox)
    assert len(sandbox.sent_to(USER)) == 2, "one goodbye"
    assert await count(database, AuditEvent, AuditEvent.action == "person.withdrawn") == 1


async def test_withdraw_service_is_idempotent_and_files_wait_for_the_commit(database, tmp_path):
    sam, voice = await partner_with_history(database, tmp_path)
    await add_reminder(database, sam.id)
    protocol = protocol_with("delete")
    prompts = Prompts()

    class Boom(Exception):
        pass

    try:
        async with database.transaction() as session:
            person = await session.get(Person, sam.id)
            assert person is not None
            await withdraw(session, person, protocol=protocol, prompts=prompts, data_dir=tmp_path)
            raise Boom
    except Boom:
        pass
    assert voice.exists(), "a rolled-back withdrawal removes no file"
    assert await count(database, Answer) == 3

    # An update that failed inside a batch: its savepoint is rolled back, the batch commits.
    async with database.transaction() as session:
        savepoint = await session.begin_nested()
        person = await session.get(Person, sam.id)
        assert person is not None
        await withdraw(session, person, protocol=protocol, prompts=prompts, data_dir=tmp_path)
        await savepoint.rollback()
    assert voice.exists(), "a withdrawal rolled back to its savepoint removes no file"
    assert await count(database, Answer) == 3

    async with database.transaction() as session:
        person = await session.get(Person, sam.id)
        assert person is not None
        outcome = await withdraw(
            session, person, protocol=protocol, prompts=prompts, data_dir=tmp_path
        )
        assert outcome is not None and outcome.data == "delete"
        assert outcome.closed_checkins == 1 and outcome.cancelled_messages == 1
        assert voice.exists(), "not before the commit"
    assert not voice.exists()
    async with database.transaction() as session:
        person = await session.get(Person, sam.id)
        assert person is not None
        again = await withdraw(
            session, person, protocol=protocol, prompts=prompts, data_dir=tmp_path
        )
        assert again is None


NAME = "Zebedee"


async def rows_naming(database, name: str) -> list[str]:
    """Every (table.column) in the database that still holds ``name`` in a text or JSON value."""
    found = []
    async with database.sessions() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, (String, Text, JSON))]
            if not columns:
                continue
            for row in (await session.execute(select(*columns))).all():
                for column, value in zip(columns, row, strict=True):
                    if value is not None and name.lower() in json.dumps(value).lower():
                        found.append(f"{table.name}.{column.name}")
    return sorted(set(found))


async def test_withdraw_delete_leaves_their_name_nowhere(
    sandbox, database, database_url, tmp_path
):
    """Alerts and notes about them, their card, what they wrote: after "delete", no text or
    JSON column anywhere holds their name (the pseudonym stands in for it)."""
    zeb = await enrol(database, USER, name=NAME)
    async with running_companion(
        sandbox, database_url, tmp_path, protocol=protocol_with("delete")
    ) as companion:
        jo = sandbox.user(CONNECTOR_ID, "Jo")
        jo.send_command("help")
        await settle(companion, sandbox)
        partner = sandbox.user(USER, NAME)
        partner.send_text(f"This is {NAME}. Some days I want to die")  # relayed, and an alert
        await settle(companion, sandbox)
        (alert,) = [m for m in sandbox.sent_to(CONNECTOR_ID) if "Safeguarding alert" in m["text"]]
        assert NAME in alert["text"]
        jo.press(alert, buttons(alert)[0][1])  # "I'm on it"
        jo.send_command("partners")
        await settle(companion, sandbox)
        roster = sandbox.sent_to(CONNECTOR_ID)[-1]
        jo.press(roster, data_for(roster, NAME))  # their card
        await settle(companion, sandbox)
        async with database.transaction() as session:
            (found,) = (await session.execute(select(SafeguardingAlert))).scalars()
            found.resolution_note = f"Rang {NAME.lower()}; {NAME} is safe and has support"
        assert await rows_naming(database, NAME), "the name was written down before"

        before = len(sandbox.sent_to(USER))
        partner.send_command("withdraw")
        confirm = (await sandbox.wait_for_messages(USER, before + 1, timeout=10))[-1]
        partner.press(confirm, buttons(confirm)[0][1])
        await sandbox.wait_for_messages(USER, before + 2, timeout=10)
        await settle(companion, sandbox)

        assert await rows_naming(database, NAME) == []
        async with database.sessions() as session:
            (kept,) = (await session.execute(select(SafeguardingAlert))).scalars()
        assert (
            kept.resolution_note
            == f"Rang {zeb.pseudonym}; {zeb.pseudonym} is safe and has support"
        )


async def test_forgetting_a_name_matches_whole_words_in_any_script(database):
    """The pseudonym stands in for the name as a whole word, whatever its case or script (a
    name JSON escapes is still found); other words that contain it are left alone."""
    async with database.transaction() as session:
        for key, text in (
            ("a1", "<b>Zoë</b> (P-1) wrote words that match"),
            ("a2", "Call Samaritans on 116 123"),
            ("a3", "Sam and ZOË both came; Zoey did not"),
        ):
            await enqueue(session, key=key, chat_id=1, text=text)
    async with database.transaction() as session:
        changed = await forget_names(session, ["Zoë", "Sam", None], "P-1")
    async with database.sessions() as session:
        texts = [
            p["text"]
            for p in (
                await session.execute(select(OutboxMessage.payload).order_by(OutboxMessage.id))
            ).scalars()
        ]
    assert changed == 2
    assert texts == [
        "<b>P-1</b> (P-1) wrote words that match",
        "Call Samaritans on 116 123",
        "P-1 and P-1 both came; Zoey did not",
    ]
