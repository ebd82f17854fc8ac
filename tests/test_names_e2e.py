"""Names from Telegram through the sandbox: a first name carrying a right-to-left override
(U+202E), zero-width spaces (U+200B) and other invisible characters is stored clean, for a
partner enrolled by invite and for allow-listed staff, and connectors see it clean in a
safeguarding alert, a relayed message and /partners. A name with nothing visible left is no
name: staff see the neutral word from the prompts."""

from __future__ import annotations

from sqlalchemy import select

from bot.partners import onboarding as ob
from bot.partners.invites import create_invites
from prompts import Prompts
from storage.models import PartnerProfile, Role, TelegramIdentity
from tests.conftest import CONNECTOR_ID
from tests.support import settle
from tests.test_invites import PROTOCOL

SAM, KIM = 9801, 9802
HIDDEN = ("\u202e", "\u200b", "\u2066", "\x07")
UNNAMED = Prompts().label("people.unnamed")


async def join(database, sandbox, companion, user_id: int, first_name: str) -> int:
    """Enrol through an invite link, as Telegram names them, then finish setting up without
    choosing a name (the state a partner is in until they pick one); their person id."""
    async with database.transaction() as session:
        [invite] = await create_invites(session, PROTOCOL, role=Role.PARTNER, group_key="north")
    sandbox.user(user_id, first_name).send_command("start", invite.code)
    await settle(companion, sandbox)
    async with database.transaction() as session:
        identity = (
            await session.execute(
                select(TelegramIdentity).where(TelegramIdentity.telegram_user_id == user_id)
            )
        ).scalar_one()
        ob.enter_step(await session.get_one(PartnerProfile, identity.person_id), ob.DONE)
        return identity.person_id


async def first_names(database) -> dict[int, str | None]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(TelegramIdentity.telegram_user_id, TelegramIdentity.first_name)
        )
        return {user_id: name for user_id, name in rows.all()}


async def test_names_from_telegram_are_kept_and_shown_clean(companion, sandbox, database):
    priya = sandbox.user(CONNECTOR_ID, "Pri\u202eya\u200b")
    priya.send_command("help")  # enrols the allow-listed connector
    await settle(companion, sandbox)
    await join(database, sandbox, companion, SAM, "\u202eSa\u200bm\x07  \u2066")
    await join(database, sandbox, companion, KIM, "\u202e\u200b")
    assert await first_names(database) == {CONNECTOR_ID: "Priya", SAM: "Sam", KIM: None}

    sandbox.user(SAM).send_text("Some days I want to die, honestly")
    await settle(companion, sandbox)
    priya.send_command("partners")
    await settle(companion, sandbox)

    staff = sandbox.sent_to(CONNECTOR_ID)
    texts = [m.get("text") or m.get("caption") or "" for m in staff]
    alert = next(t for t in texts if "Safeguarding alert" in t)
    assert "Sam (P-" in alert
    assert any(t.startswith("💬 Sam (North West):") for t in texts), "the relayed message"
    roster = staff[-1]
    assert "• Sam:" in roster["text"] and f"• {UNNAMED}:" in roster["text"]
    labels = [b["text"] for row in roster["reply_markup"]["inline_keyboard"] for b in row]
    assert "Sam" in labels and UNNAMED in labels
    shown = "".join(texts) + "".join(labels)
    assert not any(ch in shown for ch in HIDDEN), "an invisible character reached the staff"
