"""Safeguarding rules and service: matching, no false alarms on our own words, alerts, acks."""

from __future__ import annotations

from datetime import timedelta

import pytest
import textstat
import yaml
from sqlalchemy import func, select

from bot.partners import checkins, safeguarding
from bot.partners.views import safeguarding as safeguarding_views
from bot.protocol import Safeguarding, StudyProtocol, Threshold
from bot.sandbox.html import parse_html
from prompts import DEFAULT_STUDY_PATH, PROMPTS_DIR, Prompts
from storage.clock import utcnow
from storage.models import AuditEvent, OutboxMessage, Person, Role, SafeguardingAlert
from tests.factories import enrol
from tests.test_prompts import SAMPLES, SAMPLES_DIR


@pytest.fixture(scope="module")
def protocol() -> StudyProtocol:
    from bot.protocol import load_protocol

    return load_protocol(DEFAULT_STUDY_PATH)


def with_thresholds(protocol: StudyProtocol, *thresholds: Threshold) -> StudyProtocol:
    rules = Safeguarding(phrases=list(protocol.safeguarding.phrases), thresholds=list(thresholds))
    return protocol.model_copy(update={"safeguarding": rules})


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("suicide", "suicide"),
        ("I keep thinking about SUICIDE.", "suicide"),
        ("I just can\u2019t go on like this", "can't go on"),  # curly apostrophe
        ("I cant go on", "can't go on"),  # apostrophe left out
        ("i   want    to\n die", "want to die"),  # extra spaces and a line break
        ("thinking of self harm again", "self harm"),
        ("thinking of self-harm again", "self harm"),
        ("self\u2013harm", "self harm"),  # an en dash
        ("They'd be better off without me", "better off without me"),
        ("I want to end it all.", "end it all"),
        ("(kill myself)", "kill myself"),
    ],
)
def test_risky_phrases_match_whole_words_any_case(protocol, text, phrase):
    assert safeguarding.match(protocol, text) == phrase


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "canon",
        "The canon of research",
        "suicidesquad",  # run-together words are not matched (whole words only)
        "presuicide",
        "I couldn't go on the bus after the meeting",
        "Killing time before the meeting",
        "I want to diet",
        "Harmless fun at the meeting",
    ],
)
def test_ordinary_words_do_not_match(protocol, text):
    assert safeguarding.match(protocol, text) is None


def test_thresholds_match_scale_answers_at_or_below(protocol):
    assert safeguarding.match_threshold(protocol, "confidence", 1) is None, "none by default"
    custom = with_thresholds(protocol, Threshold(question="confidence", at_most=1))
    assert safeguarding.match_threshold(custom, "confidence", 1) is not None
    assert safeguarding.match_threshold(custom, "confidence", 2) is None
    assert safeguarding.match_threshold(custom, "valued", 1) is None
    assert safeguarding.match_threshold(custom, "confidence", None) is None
    rule = safeguarding.threshold_rule(Threshold(question="confidence", at_most=1))
    assert rule == "threshold:confidence<=1"


def test_ack_callback_round_trip():
    assert safeguarding.parse_ack_callback(safeguarding_views.ack_callback(42)) == 42
    for bad in (None, "", "sg:ack:", "sg:ack:x", "sg:ack:-1", "sg:ack:" + "9" * 40, "ci:1:a:1"):
        assert safeguarding.parse_ack_callback(bad) is None


def _rendered_messages() -> list[tuple[str, str]]:
    prompts = Prompts()
    out = []
    for name in prompts.template_names():
        if name.endswith(".html.j2"):
            template = name.removesuffix(".html.j2")
            out.append((template, prompts.render(template, **SAMPLES[template])))
    return out


def _label_strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _label_strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _label_strings(value)]
    return [node] if isinstance(node, str) else []


def test_no_false_alert_on_the_shipped_texts(protocol):
    locale = PROMPTS_DIR / "en-GB"
    labels = [
        yaml.safe_load(p.read_text())
        for p in [locale / "labels.yaml", *locale.glob("labels/*.yaml")]
    ]
    samples = yaml.safe_load((SAMPLES_DIR / "checkins.yaml").read_text())["sample_answers"]
    texts = [html for _, html in _rendered_messages()] + _label_strings(labels) + samples
    assert len(texts) > 40
    hits = [(t, safeguarding.match(protocol, t)) for t in texts if safeguarding.match(protocol, t)]
    assert hits == []


PARTNER_FACING = ("checkins/", "questions/", "safeguarding/crisis")


def test_partner_facing_wording_is_easy_to_read():
    scores = {}
    for name, html in _rendered_messages():
        if name.startswith(PARTNER_FACING):
            text, _ = parse_html(html)
            scores[name] = textstat.flesch_reading_ease(text)
    assert len(scores) >= 17
    assert min(scores.values()) > 70, scores
    assert sum(scores.values()) / len(scores) > 85, scores


async def test_a_match_writes_the_alert_audit_reply_and_one_alert_per_connector(
    database, protocol
):
    partner = await enrol(database, 8001, name="Sam")
    jo = await enrol(database, 8101, role=Role.CONNECTOR, name="Jo")
    await enrol(database, 8102, role=Role.CONNECTOR, name="Kim")
    prompts = Prompts()
    now = utcnow()
    async with database.transaction() as session:
        assert (
            await safeguarding.screen_text(
                session,
                protocol,
                prompts,
                partner,
                "all fine",
                chat_id=8001,
                source="message",
                now=now,
            )
            is None
        )
        alert = await safeguarding.screen_text(
            session,
            protocol,
            prompts,
            partner,
            "I want to die",
            chat_id=8001,
            source="message",
            now=now,
        )
        assert alert is not None
        alert_id = alert.id
    async with database.sessions() as session:
        stored = await session.get(SafeguardingAlert, alert_id)
        assert stored is not None and stored.rule == "phrase:want to die"
        assert stored.source == "message" and stored.acknowledged_at is None
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        sent = {(r.chat_id, r.kind): r.payload for r in rows}
        assert set(sent) == {(8101, "alert"), (8102, "alert"), (8001, "safeguarding")}
        crisis = sent[(8001, "safeguarding")]["text"]
        assert "116 123" in crisis and "85258" in crisis and "999" in crisis
        assert "connector" in crisis and "weekdays, 9am to 5pm" in crisis
        alert_text = sent[(8101, "alert")]["text"]
        assert partner.pseudonym in alert_text and "Sam" in alert_text
        assert "want to die" in alert_text
        markup = sent[(8101, "alert")]["reply_markup"]["inline_keyboard"]
        assert markup[0][0]["callback_data"] == f"sg:ack:{alert_id}"
        audit = (await session.execute(select(AuditEvent.action, AuditEvent.detail))).all()
        assert [(a, d["alert_id"]) for a, d in audit] == [("alert.raised", alert_id)]

    # The first press wins; a second press by someone else is told who took it.
    later = now + timedelta(minutes=3)
    async with database.transaction() as session:
        me = await session.get(Person, jo.id)
        assert me is not None
        first = await safeguarding.acknowledge(session, prompts, alert_id, me, now=later)
        assert first.status == safeguarding.AckStatus.ACKNOWLEDGED
    async with database.transaction() as session:
        kim = (await session.execute(select(Person).where(Person.id == jo.id + 1))).scalar_one()
        taken = await safeguarding.acknowledge(session, prompts, alert_id, kim, now=later)
        assert taken.status == safeguarding.AckStatus.TAKEN and taken.by_name == "Jo"
        again = await safeguarding.acknowledge(
            session, prompts, alert_id, await session.get(Person, jo.id), now=later
        )  # type: ignore[arg-type]
        assert again.status == safeguarding.AckStatus.ALREADY_MINE
        unknown = await safeguarding.acknowledge(session, prompts, 999, kim, now=later)
        assert unknown.status == safeguarding.AckStatus.UNKNOWN
    async with database.sessions() as session:
        stored = await session.get(SafeguardingAlert, alert_id)
        assert stored is not None and stored.acknowledged_by_person_id == jo.id
        assert stored.acknowledged_at == later
        acks = await session.execute(
            select(func.count()).where(AuditEvent.action == "alert.acknowledged")
        )
        assert acks.scalar_one() == 1
        told = await session.execute(
            select(OutboxMessage.chat_id).where(OutboxMessage.idempotency_key.like("sg:picked:%"))
        )
        assert list(told.scalars()) == [8102], "the other connector is told who picked it up"


async def test_a_threshold_raises_one_gentle_alert_and_no_crisis_reply(database, protocol):
    custom = with_thresholds(protocol, Threshold(question="confidence", at_most=1))
    partner = await enrol(database, 8001, name="Sam")
    await enrol(database, 8101, role=Role.CONNECTOR, name="Jo")
    prompts = Prompts()
    now = utcnow()
    async with database.transaction() as session:
        checkin = await checkins.open_checkin(
            session, custom, prompts, partner, "weekly", occurrence_key="t:1", now=now
        )
        assert checkin is not None
        data = f"ci:{checkin.id}:confidence:"
        first = await checkins.record_choice(
            session, custom, prompts, partner, data + "1", now=now
        )
        assert first.alerts
        # Changed to 2, then back to 1: the same rule for the same question alerts only once.
        await checkins.record_choice(session, custom, prompts, partner, data + "2", now=now)
        again = await checkins.record_choice(
            session, custom, prompts, partner, data + "1", now=now
        )
        assert again.outcome == checkins.Outcome.CHANGED and again.alerts == []
    async with database.sessions() as session:
        [alert] = (await session.execute(select(SafeguardingAlert))).scalars().all()
        assert alert.rule == "threshold:confidence<=1" and alert.answer_id is not None
        kinds = (await session.execute(select(OutboxMessage.kind, OutboxMessage.payload))).all()
        assert "safeguarding" not in {k for k, _ in kinds}, "no crisis reply for a low score"
        [alert_text] = [p["text"] for k, p in kinds if k == "alert"]
        assert "low answer" in alert_text and "not sent anything extra" in alert_text
