"""Onboarding end to end through the sandbox: from an invite made on the real command line to
an onboarded partner; resuming half-way; declining; forged and stale buttons."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.partners import onboarding as ob
from bot.partners.invites import create_invites
from bot.text import clean_name
from storage.models import (
    AuditEvent,
    ConsentDecision,
    Invite,
    PartnerProfile,
    Person,
    Role,
    TelegramIdentity,
)
from tests.conftest import CONNECTOR_ID
from tests.factories import enrol
from tests.support import buttons, data_for, settle
from tests.test_invite_cli import run_cli
from tests.test_invites import PROTOCOL, count


async def make_invite(database, group: str | None = "north") -> str:
    async with database.transaction() as session:
        [invite] = await create_invites(session, PROTOCOL, role=Role.PARTNER, group_key=group)
    return invite.code


async def state(database):
    """The partner's profile, identity and consent decisions (the only partner in the test)."""
    async with database.sessions() as session:
        profile = (await session.execute(select(PartnerProfile))).scalar_one()
        identity = (await session.execute(select(TelegramIdentity))).scalar_one()
        decisions = (
            (await session.execute(select(ConsentDecision).order_by(ConsentDecision.id)))
            .scalars()
            .all()
        )
    return profile, identity, {d.item_key: d.granted for d in decisions}, len(decisions)


async def snapshot(database) -> tuple:
    """Everything onboarding may change, as plain values (to prove nothing changed)."""
    profile, identity, decisions, n = await state(database)
    return (
        profile.onboarding_step,
        profile.awaiting_input,
        profile.group_key,
        profile.timezone,
        profile.checkin_weekday,
        profile.checkin_time,
        profile.onboarded_at,
        identity.preferred_name,
        decisions,
        n,
    )


class Chat:
    """A sandbox user plus the running count of bot messages, for step-by-step tests."""

    def __init__(self, sandbox, user_id: int, name: str = "Sam", **kwargs) -> None:
        self.sandbox = sandbox
        self.user = sandbox.user(user_id, name, **kwargs)
        self.id = user_id
        self.seen = 0

    async def next(self, n: int = 1) -> list[dict]:
        messages = await self.sandbox.wait_for_messages(self.id, self.seen + n)
        new = messages[self.seen : self.seen + n]
        self.seen += n
        return new

    def press(self, message, data: str) -> str:
        """Press a button; returns the callback query id."""
        return self.user.press(message, data)["callback_query"]["id"]

    def answer(self, query_id: str) -> str | None:
        return self.sandbox.callback_answers.get(query_id, {}).get("text")


async def test_invited_on_the_command_line_to_onboarded(
    companion, sandbox, database, database_url, tmp_path
):
    result = await run_cli(
        "invite", "create", "--role", "partner", "--group", "north", "--json",
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [invite] = json.loads(result.stdout)
    sam = Chat(sandbox, 7001, "Sam", username="sam_t")
    sam.user.send_command("start", invite["code"])

    welcome, safety = await sam.next(2)
    assert "DeStress Involvement" in welcome["text"] and "Priya" in welcome["text"]
    assert "nobody reads this chat all the time" in safety["text"]
    assert "weekdays, 9am to 5pm" in safety["text"] and "116 123" in safety["text"]
    sam.press(safety, data_for(safety, "start"))

    [take_part] = await sam.next()
    assert "take part" in take_part["text"] and "/withdraw" in take_part["text"]
    assert [d for _, d in buttons(take_part)] == [
        "ob:consent:take_part:yes",
        "ob:consent:take_part:no",
    ]
    sam.press(take_part, "ob:consent:take_part:yes")
    [quote] = await sam.next()
    assert "quote" in quote["text"]
    sam.press(quote, "ob:consent:quote_anonymously:yes")
    [credit] = await sam.next()
    assert "by name" in credit["text"]
    sam.press(credit, "ob:consent:credit_by_name:no")

    [ask_name] = await sam.next()
    assert "call you" in ask_name["text"] and buttons(ask_name)[0][0] == "Call me Sam"
    sam.user.send_text("  Sammy   Jo ")
    [ask_slot] = await sam.next()  # the invite fixed the group: no group question
    assert "weekly check-in" in ask_slot["text"]
    assert [t for t, _ in buttons(ask_slot)][-1] == "I'll choose later"
    sam.press(ask_slot, data_for(ask_slot, "Thursday"))

    [done] = await sam.next()
    assert "Sammy Jo" in done["text"] and "Thursday evening, 6pm" in done["text"]
    assert "21:00" in done["text"] and "/help" in done["text"]
    await settle(companion, sandbox)

    profile, identity, decisions, n = await state(database)
    assert decisions == {"take_part": True, "quote_anonymously": True, "credit_by_name": False}
    assert n == 3
    assert identity.preferred_name == "Sammy Jo" and identity.username == "sam_t"
    assert (profile.group_key, profile.timezone) == ("north", "Europe/London")
    assert (profile.checkin_weekday, profile.checkin_time) == (3, "18:00")
    assert (profile.quiet_start, profile.quiet_end) == ("21:00", "08:00")
    assert profile.onboarding_step == "done" and profile.onboarded_at is not None
    assert profile.awaiting_input is None
    async with database.sessions() as session:
        stored = (await session.execute(select(Invite))).scalar_one()
        person = (await session.execute(select(Person))).scalar_one()
        actions = (await session.execute(select(AuditEvent.action))).scalars().all()
    assert stored.used_at is not None and stored.used_by_person_id == person.id
    assert sorted(actions) == ["invite.created", "role.granted"]

    # Onboarded: updates now pass through to the features; the code cannot be used again.
    sam.user.send_command("help")
    [help_reply] = await sam.next()
    assert help_reply["text"].startswith("Here is what you can do")
    sam.user.send_command("start", invite["code"])
    [again] = await sam.next()
    assert "already set up" in again["text"] and "Sammy Jo" in again["text"]
    query = sam.press(ask_slot, data_for(ask_slot, "Monday"))
    await settle(companion, sandbox)
    assert "already" in (sam.answer(query) or "")
    profile, *_ = await state(database)
    assert (profile.checkin_weekday, profile.checkin_time) == (3, "18:00")


async def test_leaving_half_way_and_coming_back(companion, sandbox, database):
    code = await make_invite(database, group=None)
    ann = Chat(sandbox, 7002, "Ann")
    ann.user.send_command("start", code)
    welcome, safety = await ann.next(2)
    assert "the DeStress research team" in welcome["text"], "no group yet: the study team"
    ann.user.send_text("hello?")  # any message re-sends the current step
    _, again_safety = await ann.next(2)
    assert again_safety["text"] == safety["text"]
    ann.press(again_safety, "ob:welcome:ok")
    [take_part] = await ann.next()
    ann.press(take_part, "ob:consent:take_part:yes")
    [quote] = await ann.next()

    ann.user.send_command("start")  # comes back later: the same step again
    [resumed] = await ann.next()
    assert resumed["text"] == quote["text"] and buttons(resumed) == buttons(quote)
    ann.user.send_command("checkin")  # features wait until onboarding is finished
    [resumed_again] = await ann.next()
    assert resumed_again["text"] == quote["text"]
    ann.press(resumed, "ob:consent:quote_anonymously:no")
    [credit] = await ann.next()
    ann.press(credit, "ob:consent:credit_by_name:no")
    [ask_name] = await ann.next()

    ann.user.send_sticker()
    [name_again] = await ann.next()
    assert name_again["text"] == ask_name["text"]
    ann.user.send_text("<b>Ann</b>")
    [invalid] = await ann.next()
    assert "up to 40" in invalid["text"]
    ann.user.send_text("A" * 41)
    await ann.next()
    ann.press(ask_name, "ob:name:tg")  # "Call me Ann"
    [ask_group] = await ann.next()
    assert [d for _, d in buttons(ask_group)] == [
        "ob:group:north",
        "ob:group:south",
        "ob:group:online",
    ]
    ann.user.send_command("start")
    [group_again] = await ann.next()
    assert group_again["text"] == ask_group["text"]
    ann.press(group_again, "ob:group:south")
    [ask_slot] = await ann.next()
    ann.press(ask_slot, "ob:slot:later")
    [done] = await ann.next()
    assert "/settings" in done["text"] and "Tom" in done["text"]
    await settle(companion, sandbox)

    profile, identity, decisions, _ = await state(database)
    assert identity.preferred_name == "Ann"
    assert (profile.group_key, profile.timezone) == ("south", "Europe/London")
    assert profile.checkin_weekday is None and profile.checkin_time is None
    assert profile.onboarded_at is not None
    assert decisions == {"take_part": True, "quote_anonymously": False, "credit_by_name": False}


async def test_declining_the_required_item_ends_kindly(companion, sandbox, database):
    code = await make_invite(database)
    bo = Chat(sandbox, 7003, "Bo")
    bo.user.send_command("start", code)
    _, safety = await bo.next(2)
    bo.press(safety, "ob:welcome:ok")
    [take_part] = await bo.next()
    bo.press(take_part, "ob:consent:take_part:no")
    [declined] = await bo.next()
    assert "change your mind" in declined["text"] and "/start" in declined["text"]
    assert buttons(declined) == []
    bo.user.send_text("sorry, what now?")
    bo.user.send_command("checkin")
    reminders = await bo.next(2)
    assert all("said no" in m["text"] and buttons(m) == [] for m in reminders)
    query = bo.press(take_part, "ob:consent:take_part:no")  # a double tap
    forged = bo.press(take_part, "ob:slot:mon_morning")
    await settle(companion, sandbox)
    assert bo.answer(query) and bo.answer(forged)
    assert len(sandbox.sent_to(7003)) == bo.seen, "no further questions"

    profile, identity, decisions, n = await state(database)
    assert decisions == {"take_part": False} and n == 1, "nothing beyond the decision"
    assert identity.preferred_name is None
    assert profile.onboarding_step == "declined" and profile.onboarded_at is None
    assert profile.checkin_weekday is None and profile.awaiting_input is None

    bo.user.send_command("start")  # they changed their mind
    welcome, safety = await bo.next(2)
    assert "welcome" in welcome["text"]
    bo.press(safety, "ob:welcome:ok")
    [take_part_again] = await bo.next()
    bo.press(take_part_again, "ob:consent:take_part:yes")
    [quote] = await bo.next()
    assert "quote" in quote["text"]
    _, _, decisions, n = await state(database)
    assert decisions == {"take_part": True} and n == 2, "the latest decision is in force"


async def test_forged_and_stale_onboarding_buttons_change_nothing(companion, sandbox, database):
    code = await make_invite(database)
    cy = Chat(sandbox, 7004, "Cy")
    cy.user.send_command("start", code)
    _, safety = await cy.next(2)
    cy.press(safety, "ob:welcome:ok")
    [take_part] = await cy.next()
    before = await snapshot(database)
    forged = {
        "ob:slot:thu_evening": "not for now",  # a later step
        "ob:group:south": "not for now",
        "ob:name:tg": "not for now",
        "ob:consent:take_part:maybe": "did not work",  # a value the protocol lacks
        "ob:consent:nothing:yes": "did not work",  # an item the protocol lacks
        "ob:welcome:ok": "done that step",  # an earlier step
        "ob:nonsense": "did not work",
        "ob:consent:credit_by_name:yes": "not for now",  # skipping ahead
    }
    queries = {cy.press(take_part, data): expected for data, expected in forged.items()}
    await settle(companion, sandbox)
    for query, expected in queries.items():
        assert expected in (cy.answer(query) or "")
    assert len(sandbox.sent_to(7004)) == cy.seen, "no message for a forged button"
    assert await snapshot(database) == before

    # Double tap: the second press of the same button is answered, changes nothing.
    first = cy.press(take_part, "ob:consent:take_part:yes")
    second = cy.press(take_part, "ob:consent:take_part:yes")
    await cy.next()
    await settle(companion, sandbox)
    assert cy.answer(first) == "Thank you!"
    assert "done that step" in (cy.answer(second) or "")
    _, _, decisions, n = await state(database)
    assert decisions == {"take_part": True} and n == 1
    assert len(sandbox.sent_to(7004)) == cy.seen

    # Someone else (staff, or an onboarded partner) pressing onboarding buttons: nothing.
    staff = sandbox.user(CONNECTOR_ID, "Jo")
    staff.send_command("help")
    [help_message] = await sandbox.wait_for_messages(CONNECTOR_ID, 1)
    staff_query = staff.press(help_message, "ob:consent:take_part:yes")["callback_query"]["id"]
    await enrol(database, 7005, name="Di")
    di = sandbox.user(7005, "Di")
    di.send_command("help")
    [di_help] = await sandbox.wait_for_messages(7005, 1)
    di_query = di.press(di_help, "ob:slot:mon_morning")["callback_query"]["id"]
    await settle(companion, sandbox)
    assert sandbox.callback_answers[staff_query].get("text")
    assert sandbox.callback_answers[di_query].get("text")
    assert len(sandbox.sent_to(CONNECTOR_ID)) == 1 and len(sandbox.sent_to(7005)) == 1
    async with database.sessions() as session:
        di_profile = (
            (await session.execute(select(PartnerProfile).where(PartnerProfile.person_id != 1)))
            .scalars()
            .all()
        )
    assert all((p.checkin_weekday, p.checkin_time) != (0, "10:00") for p in di_profile)
    assert await count(database, ConsentDecision) == 1 + 3, "Cy's one, and Di's factory three"


# --- the onboarding service on its own --------------------------------------------------------


def test_names_are_trimmed_and_checked() -> None:
    assert clean_name("  Sam   Jo \n", ob.NAME_MAX) == "Sam Jo"
    assert clean_name("Zoë", ob.NAME_MAX) == "Zoë"
    assert clean_name("Sam\u200b", ob.NAME_MAX) == "Sam", "invisible format characters are dropped"
    assert clean_name("A" * 40, ob.NAME_MAX) == "A" * 40
    for bad in ("", "   ", "A" * 41, "<b>Sam</b>", "Sam > Tom", "/start", None):
        assert clean_name(bad, ob.NAME_MAX) is None


def test_callback_data_round_trips_and_fits() -> None:
    for item in PROTOCOL.consent:
        step = ob.consent_step(item)
        data = ob.callback_data(step, ob.YES)
        assert ob.parse_callback(data) == (step, ob.YES)
        assert len(data.encode()) <= 64
    assert ob.parse_callback("ob:slot:later") == ("slot", "later")
    for bad in ("ob:", "ob:slot", "ob::x", "ob:slot:", "ci:1:2:3", ""):
        assert ob.parse_callback(bad) is None


def test_the_required_item_is_asked_first_and_steps_are_ordered() -> None:
    reordered = PROTOCOL.model_copy(update={"consent": list(reversed(PROTOCOL.consent))})
    assert ob.consent_items(reordered)[0].key == "take_part"
    ranks = [
        ob.step_rank(PROTOCOL, s)
        for s in (
            ob.WELCOME,
            *(ob.consent_step(i) for i in ob.consent_items(PROTOCOL)),
            ob.NAME,
            ob.GROUP,
            ob.SLOT,
            ob.DONE,
        )
    ]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert ob.step_rank(PROTOCOL, "consent:unknown") is None
    assert ob.step_rank(PROTOCOL, ob.DECLINED) is None
    assert not ob.is_onboarded(None)
