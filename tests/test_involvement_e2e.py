"""The involvement log end to end: a partner logs time with /log (asked once how they would
like to be paid), a connector corrects and approves it, a connector logs time for a partner,
the month's claim carries names, and the log's buttons are refused to the wrong people."""

from __future__ import annotations

from sqlalchemy import select

from prompts import Prompts
from storage.clock import utcnow
from storage.models import Involvement, InvolvementStatus, PartnerProfile, StaffDraft
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import buttons, count, data_for, settle
from tests.test_invite_cli import run_cli

SAM, ALI, OUTSIDER = 8801, 8802, 8809
NOT_FOR_YOU = Prompts().label("guards.not_for_you")


async def latest(companion, sandbox, chat_id: int) -> dict:
    await settle(companion, sandbox)
    return sandbox.sent_to(chat_id)[-1]


async def test_partner_logs_time_the_connector_corrects_it_and_the_claim_has_names(
    companion, sandbox, database, database_url, tmp_path
) -> None:
    partner = await enrol(database, SAM, name="Sam")
    sam = sandbox.user(SAM, "Sam")
    priya = sandbox.user(CONNECTOR_ID, "Priya")
    priya.send_command("help")  # the allow-listed connector opens the bot
    await settle(companion, sandbox)

    sam.send_command("log")
    ask_pay = await latest(companion, sandbox, SAM)
    assert "benefits" in ask_pay["text"], "the payment question carries the benefits note"
    sam.press(ask_pay, data_for(ask_pay, "A voucher"))
    kind = await latest(companion, sandbox, SAM)
    assert "What was the time given to" in kind["text"]
    sam.press(kind, data_for(kind, "Reading papers"))
    day = await latest(companion, sandbox, SAM)
    sam.press(day, buttons(day)[1][1])  # yesterday
    length = await latest(companion, sandbox, SAM)
    sam.press(length, data_for(length, "2 hours"))
    expenses = await latest(companion, sandbox, SAM)
    assert "expenses" in expenses["text"]
    sam.send_text("lots")
    bad = await latest(companion, sandbox, SAM)
    assert "could not read that" in bad["text"]
    sam.send_text("£4.20")
    check = await latest(companion, sandbox, SAM)
    assert "Reading papers" in check["text"] and "£4.20" in check["text"]
    sam.press(check, data_for(check, "Send it"))
    sent = await latest(companion, sandbox, SAM)
    assert "Your connector will check it" in sent["text"]

    async with database.sessions() as session:
        profile = await session.get(PartnerProfile, partner.id)
        [entry] = (await session.execute(select(Involvement))).scalars().all()
    assert profile is not None and profile.payment_preference == "voucher"
    assert (entry.status, entry.minutes, entry.expenses_pence) == ("pending", 120, 420)
    assert await count(database, StaffDraft) == 0

    # The connector is asked to review; a partner pressing the review button is refused.
    review = await latest(companion, sandbox, CONNECTOR_ID)
    assert "Sam" in review["text"] and "2 hours" in review["text"]
    forged = sam.press(review["message_id"], data_for(review, "Approve"))
    await settle(companion, sandbox)
    assert sandbox.callback_answers[forged["callback_query"]["id"]]["text"] == NOT_FOR_YOU
    priya.press(review, data_for(review, "Correct the length"))
    corrected = await latest(companion, sandbox, CONNECTOR_ID)
    priya.press(corrected, data_for(corrected, "1 hour 30 minutes"))
    approved = await latest(companion, sandbox, SAM)
    assert "has checked your time" in approved["text"] and "1 hour 30 minutes" in approved["text"]
    async with database.sessions() as session:
        entry = (await session.execute(select(Involvement))).scalar_one()
    assert (entry.status, entry.minutes) == (InvolvementStatus.APPROVED, 90)

    # A second press of an old review button changes nothing.
    priya.press(review, data_for(review, "Approve"))
    await settle(companion, sandbox)
    async with database.sessions() as session:
        assert (await session.execute(select(Involvement.minutes))).scalar_one() == 90

    # The month's claim: names, hours and expenses, and a first line that says so.
    month = entry.occurred_at.astimezone().strftime("%Y-%m")
    out = tmp_path / "claim.csv"
    done = await run_cli(
        "involvement", "export", "--month", month, "--out", str(out),
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ") and "carries names" in lines[0]
    assert lines[2].split(",") == [
        "Sam",
        partner.pseudonym,
        "north",
        "voucher",
        "0",
        "1.50",
        "4.20",
    ]
    # The payment preference can be changed in /settings, and is not asked again.
    sam.send_command("settings")
    menu = await latest(companion, sandbox, SAM)
    sam.press(menu, "set:menu:pay")
    choose = await latest(companion, sandbox, SAM)
    assert "It is now A voucher" in choose["text"] and "benefits" in choose["text"]
    sam.press(choose, data_for(choose, "Paid"))
    assert "We have noted: Paid" in (await latest(companion, sandbox, SAM))["text"]
    sam.send_command("log")
    assert "What was the time given to" in (await latest(companion, sandbox, SAM))["text"]
    async with database.sessions() as session:
        profile = await session.get(PartnerProfile, partner.id)
        assert profile is not None and profile.payment_preference == "paid"

    bad_month = await run_cli(
        "involvement", "export", "--month", "November",
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert bad_month.returncode == 2 and "YYYY-MM" in bad_month.stderr


async def test_a_connector_logs_time_for_a_partner_and_others_cannot(
    companion, sandbox, database
) -> None:
    partner = await enrol(database, ALI, name="Ali")
    await enrol(database, SAM, name="Sam")
    ali, sam = sandbox.user(ALI, "Ali"), sandbox.user(SAM, "Sam")
    outsider = sandbox.user(OUTSIDER, "Stranger")
    priya = sandbox.user(CONNECTOR_ID, "Priya")
    priya.send_command("help")
    await settle(companion, sandbox)

    # Forged connector buttons from a partner and from an outsider: refused, nothing starts.
    forged = [
        sam.press(1, f"lc:new:{partner.id}"),
        sam.press(1, "iv:ok:1"),
        outsider.press(1, f"lc:new:{partner.id}"),
    ]
    await settle(companion, sandbox)
    answers = [sandbox.callback_answers[u["callback_query"]["id"]].get("text") for u in forged]
    assert answers == [NOT_FOR_YOU, NOT_FOR_YOU, None], "outsiders get a silent answer"
    assert await count(database, StaffDraft) == 0
    assert sandbox.sent_to(OUTSIDER) == []

    priya.press(1, f"lc:new:{partner.id}")
    kind = await latest(companion, sandbox, CONNECTOR_ID)
    assert "Logging time for Ali" in kind["text"]
    priya.press(kind, data_for(kind, "Delivering training"))
    day = await latest(companion, sandbox, CONNECTOR_ID)
    priya.press(day, buttons(day)[0][1])
    length = await latest(companion, sandbox, CONNECTOR_ID)
    priya.press(length, data_for(length, "3 hours"))
    expenses = await latest(companion, sandbox, CONNECTOR_ID)
    priya.send_text("12")
    check = await latest(companion, sandbox, CONNECTOR_ID)
    assert "£12" in check["text"]
    priya.press(check, data_for(check, "Save it"))
    saved = await latest(companion, sandbox, CONNECTOR_ID)
    assert "Saved for Ali" in saved["text"]
    told = await latest(companion, sandbox, ALI)
    assert "Your connector has logged time" in told["text"] and "3 hours" in told["text"]
    async with database.sessions() as session:
        entry = (await session.execute(select(Involvement))).scalar_one()
    assert (entry.person_id, entry.status, entry.minutes, entry.expenses_pence) == (
        partner.id,
        "approved",
        180,
        1200,
    )
    assert entry.occurred_at <= utcnow()
    del ali, expenses
