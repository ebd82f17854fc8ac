"""Two-way messages, alerts, invites and menus end to end through the sandbox: a partner's
message reaches their connector, the connector answers by replying (also after a restart),
office hours, safeguarding on relayed messages, /alerts, /invite, per-chat command menus, and
staff buttons forged by partners and outsiders."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from sqlalchemy import select

from bot.protocol import OfficeHours
from prompts import Prompts
from storage.clock import utcnow
from storage.models import (
    AuditEvent,
    Invite,
    OutboxMessage,
    OutboxStatus,
    PartnerProfile,
    Person,
    PersonStatus,
    RelayedMessage,
    SafeguardingAlert,
    StaffDraft,
    StaffNotice,
    TelegramIdentity,
)
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import always_open_protocol as protocol
from tests.support import buttons, count, data_for, running_companion, settle

SAM, ALI = 8601, 8602
NEVER_OPEN_TODAY = OfficeHours(days=[(utcnow().weekday() + 3) % 7], start="09:00", end="17:00")


async def partner(database, sandbox, user_id: int, name: str):
    person = await enrol(database, user_id, name=name, checkin_weekday=None)
    async with database.transaction() as session:
        profile = await session.get_one(PartnerProfile, person.id)
        profile.quiet_start = profile.quiet_end = "00:00"
    return sandbox.user(user_id, name)


def texts(sandbox, chat_id: int) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in sandbox.sent_to(chat_id)]


async def test_a_partner_writes_and_the_connector_answers_even_after_a_restart(
    sandbox, database, database_url, tmp_path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    sam = await partner(database, sandbox, SAM, "Sam")
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    data = tmp_path / "data"
    async with running_companion(sandbox, database_url, data, protocol=protocol()) as bot:
        connector.send_command("help")  # enrols the allow-listed connector
        await settle(bot, sandbox)
        sam.send_text("Could we meet somewhere with step-free access?")
        await settle(bot, sandbox)
        relayed = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert relayed["text"].startswith("💬 Sam (North West):")
        assert "step-free access" in relayed["text"] and "Reply to this message" in relayed["text"]
        assert texts(sandbox, SAM) == ["Sent to Priya. They will answer you here."]
        sam.send_voice(duration=3)
        await settle(bot, sandbox)
        voice = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert voice.get("voice") and "Sam (North West) sent a voice note" in voice["caption"]

    # A new process: the reply is matched through the stored Telegram message id.
    async with running_companion(sandbox, database_url, data, protocol=protocol()) as bot:
        connector.send_text("Yes, the back door has a ramp.", reply_to=relayed["message_id"])
        await settle(bot, sandbox)
        assert texts(sandbox, SAM)[-1] == "Priya, your connector:\nYes, the back door has a ramp."
        assert texts(sandbox, CONNECTOR_ID)[-1] == "Sent to Sam."
        connector.send_text("hello", reply_to=texts_id(sandbox, CONNECTOR_ID, "Sent to Sam."))
        await settle(bot, sandbox)
        assert "reply to their message" in texts(sandbox, CONNECTOR_ID)[-1]

    async with database.sessions() as session:
        kept = (await session.execute(select(RelayedMessage))).scalars().all()
    assert [(m.direction, m.content_kind) for m in kept] == [
        ("in", "text"),
        ("in", "voice"),
        ("out", "text"),
    ]
    assert kept[0].text_encrypted and "step-free" not in (kept[0].text or "")
    assert "step-free" not in caplog.text and "ramp" not in caplog.text, "never logged"
    async with database.sessions() as session:
        copies = (
            (await session.execute(select(OutboxMessage).where(OutboxMessage.kind == "relay")))
            .scalars()
            .all()
        )
    assert len(copies) == 3 and all(c.status == OutboxStatus.SENT for c in copies)
    assert all("text" not in c.payload and "caption" not in c.payload for c in copies)
    assert not any("step-free" in str(c.payload) or "ramp" in str(c.payload) for c in copies), (
        "no copy of their words in clear once sent"
    )
    assert copies[1].method == "sendVoice" and copies[1].payload.get("voice"), "still a record"


async def open_card(bot, sandbox, connector, name: str) -> dict:
    """/partners, then the partner's name: their card (the last message sent)."""
    connector.send_command("partners")
    await settle(bot, sandbox)
    roster = sandbox.sent_to(CONNECTOR_ID)[-1]
    connector.press(roster, data_for(roster, name))
    await settle(bot, sandbox)
    return sandbox.sent_to(CONNECTOR_ID)[-1]


async def test_a_connector_messages_a_partner_from_their_card_and_the_answer_comes_back(
    sandbox, database, database_url, tmp_path
) -> None:
    sam = await partner(database, sandbox, SAM, "Sam")
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    async with running_companion(
        sandbox, database_url, tmp_path / "data", protocol=protocol()
    ) as bot:
        connector.send_command("help")
        await settle(bot, sandbox)
        card = await open_card(bot, sandbox, connector, "Sam")
        sam_id = await enrolled_id(database, SAM)
        assert ("Message them", f"rl:w:{sam_id}") in buttons(card)

        connector.press(card, f"rl:w:{sam_id}")
        await settle(bot, sandbox)
        ask = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert ask["text"].startswith("Write your message for Sam:")
        assert buttons(ask) == [("Cancel", "rl:x")]
        connector.send_text("Hello Sam, how did training go?")
        await settle(bot, sandbox)
        # Exactly like an answer: from the connector by name, and "Sent to Sam." for them.
        assert texts(sandbox, SAM) == ["Priya, your connector:\nHello Sam, how did training go?"]
        assert texts(sandbox, CONNECTOR_ID)[-1] == "Sent to Sam."

        # Sam's answer comes back through the relay, and the connector can reply to it.
        sam.send_text("It went well, thank you")
        await settle(bot, sandbox)
        back = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert back["text"].startswith("💬 Sam (North West):") and "went well" in back["text"]
        connector.send_text("Glad to hear it", reply_to=back["message_id"])
        await settle(bot, sandbox)
        assert texts(sandbox, SAM)[-1] == "Priya, your connector:\nGlad to hear it"

        # A photo with a caption goes the same way.
        connector.press(card, f"rl:w:{sam_id}")
        await settle(bot, sandbox)
        connector.send_photo(caption="The poster you asked about")
        await settle(bot, sandbox)
        photo = sandbox.sent_to(SAM)[-1]
        assert photo.get("photo")
        assert photo["caption"] == "Priya, your connector:\nThe poster you asked about"

        # Cancel: the next message is not sent to anyone.
        connector.press(card, f"rl:w:{sam_id}")
        await settle(bot, sandbox)
        stop = connector.press(sandbox.sent_to(CONNECTOR_ID)[-1], "rl:x")
        await settle(bot, sandbox)
        assert sandbox.callback_answers[stop["callback_query"]["id"]]["text"] == (
            "Stopped. Nothing was sent."
        )
        before = len(sandbox.sent_to(SAM))
        connector.send_text("a note to myself")
        await settle(bot, sandbox)
        assert len(sandbox.sent_to(SAM)) == before
        assert "Sent to Sam." not in texts(sandbox, CONNECTOR_ID)[-1]

        # "Message them" pressed more than a day ago: what is typed now is not sent.
        connector.press(card, f"rl:w:{sam_id}")
        await settle(bot, sandbox)
        async with database.transaction() as session:
            draft = (await session.execute(select(StaffDraft))).scalar_one()
            draft.updated_at = utcnow() - timedelta(days=2)
        connector.send_text("an old thought")
        await settle(bot, sandbox)
        assert len(sandbox.sent_to(SAM)) == before
        assert texts(sandbox, CONNECTOR_ID)[-1].startswith(
            "Your message was not sent. You pressed “Message them” more than a day ago"
        )

    async with database.sessions() as session:
        kept = (await session.execute(select(RelayedMessage))).scalars().all()
    assert [(m.direction, m.content_kind) for m in kept] == [
        ("out", "text"),
        ("in", "text"),
        ("out", "text"),
        ("out", "photo"),
    ]
    assert kept[0].text_encrypted and "training" not in (kept[0].text or "")
    assert await count(database, StaffDraft) == 0


async def enrolled_id(database, telegram_user_id: int) -> int:
    async with database.sessions() as session:
        identity = (
            await session.execute(
                select(TelegramIdentity).where(
                    TelegramIdentity.telegram_user_id == telegram_user_id
                )
            )
        ).scalar_one()
    return identity.person_id


async def test_no_message_button_for_a_partner_who_cannot_be_written_to(
    sandbox, database, database_url, tmp_path
) -> None:
    await partner(database, sandbox, SAM, "Sam")
    ali = await enrol(database, ALI, name="Ali", status=PersonStatus.WITHDRAWN)
    noor = await enrol(database, 8603, name="Noor", status=PersonStatus.UNREACHABLE)
    bea = await enrol(database, 8604, name="Bea")
    tess = await enrol(database, 8605, name="Tess", onboarded=False)
    async with database.transaction() as session:
        profile = await session.get_one(PartnerProfile, bea.id)
        profile.paused_until = utcnow() + timedelta(days=10)
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    why = {
        "Ali": "They have left the study, so the bot will not write to them.",
        "Noor": "The bot cannot reach them just now (they may have blocked it).",
        "Bea": "They are on a break until ",
        "Tess": "You can message them here once they have finished setting up.",
    }
    async with running_companion(
        sandbox, database_url, tmp_path / "data", protocol=protocol()
    ) as bot:
        connector.send_command("help")
        await settle(bot, sandbox)
        for name, reason in why.items():
            card = await open_card(bot, sandbox, connector, name)
            assert reason in card["text"], name
            assert not any(data.startswith("rl:") for _, data in buttons(card)), name
            assert any(data.startswith("lc:new:") for _, data in buttons(card)), name

        # A button kept from before they withdrew (or forged) says why, and starts nothing.
        for person, name in ((ali, "Ali"), (noor, "Noor"), (bea, "Bea"), (tess, "Tess")):
            pressed = connector.press(1, f"rl:w:{person.id}")
            await settle(bot, sandbox)
            answer = sandbox.callback_answers[pressed["callback_query"]["id"]]
            assert answer.get("show_alert") and answer["text"].startswith(why[name]), name
        assert await count(database, StaffDraft) == 0

        # Sam withdraws between "Message them" and the message: it is not sent.
        sam_id = await enrolled_id(database, SAM)
        card = await open_card(bot, sandbox, connector, "Sam")
        connector.press(card, f"rl:w:{sam_id}")
        await settle(bot, sandbox)
        async with database.transaction() as session:
            (await session.get_one(Person, sam_id)).status = PersonStatus.WITHDRAWN
        connector.send_text("Are you coming on Thursday?")
        await settle(bot, sandbox)
        assert texts(sandbox, CONNECTOR_ID)[-1] == (
            "Your message was not sent. They have left the study, so the bot will not write "
            "to them."
        )
    assert texts(sandbox, SAM) == [] and texts(sandbox, ALI) == []
    assert await count(database, RelayedMessage) == 0


def texts_id(sandbox, chat_id: int, text: str) -> int:
    return next(m["message_id"] for m in sandbox.sent_to(chat_id) if m.get("text") == text)


async def test_outside_office_hours_one_kind_note_a_day_and_contact_goes_first(
    sandbox, database, database_url, tmp_path
) -> None:
    sam = await partner(database, sandbox, SAM, "Sam")
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    hours = protocol(NEVER_OPEN_TODAY)
    async with running_companion(sandbox, database_url, tmp_path / "data", protocol=hours) as bot:
        connector.send_command("help")
        await settle(bot, sandbox)
        sam.send_text("Are we still on for Thursday?")
        sam.send_text("Also, can I bring my daughter?")
        await settle(bot, sandbox)
        first, second = texts(sandbox, SAM)
        assert "Nobody is reading messages just now" in first
        assert "116 123" in first, "where to get help now"
        assert second == "Sent to Priya. They will answer you here."
        assert sum("💬 Sam" in t for t in texts(sandbox, CONNECTOR_ID)) == 2
        sam.send_command("contact")
        await settle(bot, sandbox)
        assert texts(sandbox, SAM)[-1].startswith("Write your message for Priya")
        sam.send_text("One more thing")
        await settle(bot, sandbox)
        assert "One more thing" in texts(sandbox, CONNECTOR_ID)[-1]


async def test_a_relayed_message_is_screened_for_safeguarding(
    sandbox, database, database_url, tmp_path
) -> None:
    sam = await partner(database, sandbox, SAM, "Sam")
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    async with running_companion(
        sandbox, database_url, tmp_path / "data", protocol=protocol()
    ) as bot:
        connector.send_command("help")
        await settle(bot, sandbox)
        sam.send_text("Some days I want to die, honestly")
        await settle(bot, sandbox)
        assert any("116 123" in t for t in texts(sandbox, SAM)), "the crisis reply"
        staff = texts(sandbox, CONNECTOR_ID)
        assert any("Safeguarding alert" in t for t in staff)
        assert any(t.startswith("💬 Sam") for t in staff), "the message still reaches them"
        assert await count(database, SafeguardingAlert) == 1

        # /alerts lists it; "Resolved" asks for a note, which closes it.
        connector.send_command("alerts")
        await settle(bot, sandbox)
        item = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert "Safeguarding alert" in item["text"] and "Nobody has picked this up" in item["text"]
        connector.press(item, data_for(item, "I'm on it"))
        connector.press(item, data_for(item, "Resolved"))
        await settle(bot, sandbox)
        assert "Send a short note" in texts(sandbox, CONNECTOR_ID)[-1]
        connector.send_text("Called Sam; safe, and seeing their GP tomorrow.")
        await settle(bot, sandbox)
        assert texts(sandbox, CONNECTOR_ID)[-1] == "Resolved, with your note. Thank you."
        connector.send_command("alerts")
        await settle(bot, sandbox)
        assert texts(sandbox, CONNECTOR_ID)[-1].startswith("No open alerts")
    async with database.sessions() as session:
        alert = (await session.execute(select(SafeguardingAlert))).scalar_one()
        actions = (await session.execute(select(AuditEvent.action))).scalars().all()
    assert alert.resolved_at is not None and alert.acknowledged_at is not None
    assert {"alert.raised", "alert.acknowledged", "alert.resolved"} <= set(actions)


async def test_a_blocked_partner_is_a_notice_in_alerts(
    sandbox, database, database_url, tmp_path
) -> None:
    sam = await partner(database, sandbox, SAM, "Sam")
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    async with running_companion(sandbox, database_url, tmp_path / "data") as bot:
        connector.send_command("help")
        sam.block()
        await settle(bot, sandbox)
        connector.send_command("alerts")
        await settle(bot, sandbox)
        item = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert "Not reachable" in item["text"] and "Sam" in item["text"]
        connector.press(item, data_for(item, "I'm on it"))
        await settle(bot, sandbox)
        connector.send_command("alerts")
        await settle(bot, sandbox)
        assert "Priya is on it" in texts(sandbox, CONNECTOR_ID)[-1]
    assert await count(database, StaffNotice, StaffNotice.acknowledged_at.is_not(None)) == 1


async def test_invite_makes_a_link_with_a_qr_code_lists_and_revokes(
    sandbox, database, database_url, tmp_path
) -> None:
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    async with running_companion(sandbox, database_url, tmp_path / "data") as bot:
        connector.send_command("invite")
        await settle(bot, sandbox)
        menu = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert "No unused invites" in menu["text"]
        assert "New connector invite" not in json.dumps(menu), "staff invites are off by default"
        connector.press(menu, data_for(menu, "New partner invite"))
        await settle(bot, sandbox)
        groups = sandbox.sent_to(CONNECTOR_ID)[-1]
        connector.press(groups, data_for(groups, "South West"))
        await settle(bot, sandbox)
        # The QR code is sent straight after the commit, the link through the outbox: either
        # may arrive first.
        last_two = sandbox.sent_to(CONNECTOR_ID)[-2:]
        (link_message,) = [m for m in last_two if "text" in m]
        (qr,) = [m for m in last_two if "photo" in m]
        assert "https://t.me/" in link_message["text"] and "South West" in link_message["text"]
        assert qr.get("photo") and "Scan to join" in qr["caption"]
        code = link_message["text"].split("start=")[1].split()[0]

        connector.send_command("invite")
        await settle(bot, sandbox)
        menu = sandbox.sent_to(CONNECTOR_ID)[-1]
        assert "partner, South West" in menu["text"]
        connector.press(menu, data_for(menu, "Revoke"))
        await settle(bot, sandbox)
        newcomer = sandbox.user(8699, "Newcomer")
        newcomer.send_command("start", code)
        await settle(bot, sandbox)
        assert "invite link is too old now" in texts(sandbox, 8699)[-1]
    assert await count(database, Invite, Invite.used_at.is_not(None)) == 0
    assert await count(database, AuditEvent, AuditEvent.action == "invite.revoked") == 1


async def test_each_role_gets_its_own_command_menu(sandbox, database, database_url, tmp_path):
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    async with running_companion(sandbox, database_url, tmp_path / "data") as bot:
        connector.send_command("help")
        await settle(bot, sandbox)
        async with bot.db.transaction() as session:
            from bot.partners.invites import create_invites

            (made,) = await create_invites(
                session, bot.protocol, role="partner", group_key="north"
            )
        newcomer = sandbox.user(8698, "Nia")
        newcomer.send_command("start", made.code)
        await settle(bot, sandbox)

    def menu(chat_id: int) -> set[str]:
        key = (json.dumps({"chat_id": chat_id, "type": "chat"}, sort_keys=True), "")
        return {c["command"] for c in sandbox._commands.get(key, [])}

    assert {"broadcast", "alerts", "invite", "meeting"} <= menu(CONNECTOR_ID)
    assert {"contact", "checkin", "mydata"} <= menu(8698)
    assert not {"broadcast", "alerts", "invite"} & menu(8698)


async def test_partners_and_outsiders_cannot_press_staff_buttons(
    sandbox, database, database_url, tmp_path
) -> None:
    sam = await partner(database, sandbox, SAM, "Sam")
    sam_id = await enrolled_id(database, SAM)
    outsider = sandbox.user(8697, "Stranger")
    forged = [
        *("bc:new", "bc:send", "bc:x:1", "al:r:s:1", "al:a:n:1", "inv:p", "inv:g:north"),
        *(f"rl:w:{sam_id}", "rl:x"),
    ]
    async with running_companion(sandbox, database_url, tmp_path / "data") as bot:
        for data in forged:
            sam.press(1, data)
            outsider.press(1, data)
        await settle(bot, sandbox)
    not_for_you = Prompts().label("guards.not_for_you")
    sam_answers = [r for r in sandbox.requests_for("answerCallbackQuery")]
    assert sum(r.params.get("text") == not_for_you for r in sam_answers) == len(forged)
    assert sandbox.sent_to(8697) == [] and texts(sandbox, SAM) == []
    assert await count(database, StaffDraft) == 0 and await count(database, Invite) == 0
    assert await count(database, RelayedMessage) == 0


async def test_the_conversation_is_in_mydata_and_deleted_on_withdrawal_when_asked(
    sandbox, database, database_url, tmp_path
) -> None:
    from bot.privacy.mydata import collect
    from bot.privacy.withdrawal import withdraw
    from bot.protocol import Withdrawal
    from storage.models import OutboxMessage, Person

    sam = await partner(database, sandbox, SAM, "Sam")
    connector = sandbox.user(CONNECTOR_ID, "Priya")
    deleting = protocol().model_copy(update={"withdrawal": Withdrawal(data="delete")})
    async with running_companion(
        sandbox, database_url, tmp_path / "data", protocol=deleting
    ) as bot:
        connector.send_command("help")
        await settle(bot, sandbox)
        sam.send_text("My new number is on the form")
        await settle(bot, sandbox)
        relayed = sandbox.sent_to(CONNECTOR_ID)[-1]
        connector.send_text("Got it, thank you", reply_to=relayed["message_id"])
        await settle(bot, sandbox)
        async with bot.db.transaction() as session:
            person = (
                await session.execute(select(Person).where(Person.role == "partner"))
            ).scalar_one()
            tables = await collect(session, person, bot.settings.text_cipher())
            assert [(r["from"], r["text"]) for r in tables["messages_with_your_connector"]] == [
                ("you", "My new number is on the form"),
                ("your connector", "Got it, thank you"),
            ]
            await withdraw(
                session, person, protocol=deleting, prompts=bot.prompts, data_dir=tmp_path / "d"
            )
    assert await count(database, RelayedMessage) == 0
    async with database.sessions() as session:
        copies = (
            (await session.execute(select(OutboxMessage).where(OutboxMessage.kind == "relay")))
            .scalars()
            .all()
        )
    assert copies and all("new number" not in json.dumps(c.payload) for c in copies)
