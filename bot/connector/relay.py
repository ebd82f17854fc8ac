"""Two-way messages between a partner and their connector, relayed by the bot.

* :func:`from_partner`: a partner's message (text, voice note, photo or document) is kept
  (free text encrypted at rest, like answers), and one copy goes to each of their connectors
  (the group's ``connectors:`` in the protocol, else every connector) with who it is from and
  how to answer. Outside office hours the partner gets one kind note a day saying when it will
  be read and where to get help now; otherwise a short "sent".
* :func:`to_partner`: a connector's Telegram reply to a relayed copy goes to that partner,
  from the connector by name. The copy is found through the Telegram message id the outbox
  recorded when it was sent, so replies to old messages work after a restart.
* A connector can also start the conversation from a partner's card ("Message them"): a
  staff draft of kind :data:`MESSAGE_DRAFT` names the partner, and the connector's next
  message goes out through :func:`to_partner`, exactly like an answer, so the partner's reply
  comes back through :func:`from_partner`. Only a partner taking part can be written to first
  (:func:`cannot_write` says why not).

Nothing here logs what anyone wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.words import date_words, day_words, time_words
from bot.calendar.zones import zone_named, zone_of
from bot.connector.roster import state_of
from bot.protocol import Group, StudyProtocol
from bot.settings import Settings
from bot.transport.callbacks import number
from bot.transport.outbox import enqueue
from prompts import Prompts
from storage.models import (
    Invite,
    OutboxMessage,
    PartnerProfile,
    Person,
    PersonStatus,
    RelayedMessage,
    Role,
    StaffDraft,
    TelegramIdentity,
)
from storage.queries import drafts
from storage.queries.people import connector_chat_ids, name_of
from storage.queries.roster import PartnerRow, partner_rows
from storage.queries.staff import looks_after

KIND = "relay"
IN, OUT = "in", "out"
CAPTION_LIMIT = 1024
METHODS = {"photo": "sendPhoto", "document": "sendDocument", "voice": "sendVoice"}
MESSAGE_DRAFT = "message"  # a connector writing to a partner from their card


@dataclass(frozen=True)
class Incoming:
    """What someone sent: its kind, its text or caption (HTML), its file, if any, and whether
    it was forwarded from elsewhere (the connector is told)."""

    kind: str  # "text", "photo", "document" or "voice"
    text: str = ""
    file_id: str | None = None
    forwarded: bool = False


def copy_key(relayed_id: int, chat_id: int) -> str:
    """The outbox key of one connector's copy of a partner's message."""
    return f"{KIND}:{relayed_id}:{chat_id}"


def _relayed_id(key: str) -> int | None:
    prefix, _, rest = key.partition(":")
    digits, _, _chat = rest.partition(":")
    return number(digits) if prefix == KIND else None


async def connector_chats(
    session: AsyncSession, protocol: StudyProtocol, group_key: str | None
) -> list[int]:
    """The chats of the connectors who read this group's messages (else every connector)."""
    group = protocol.group(group_key)
    named = list(group.connectors) if group is not None else []
    if named:
        telegram_ids = [ref for ref in named if isinstance(ref, int)]
        invite_ids = [int(ref.split(":")[1]) for ref in named if isinstance(ref, str)]
        by_invite = select(Invite.used_by_person_id).where(Invite.id.in_(invite_ids))
        rows = await session.execute(
            select(TelegramIdentity.chat_id)
            .join(Person, Person.id == TelegramIdentity.person_id)
            .where(
                Person.role == Role.CONNECTOR,
                Person.status == PersonStatus.ACTIVE,
                TelegramIdentity.telegram_user_id.in_(telegram_ids)
                | Person.id.in_(by_invite.scalar_subquery()),
            )
        )
        chats = sorted(set(rows.scalars()))
        if chats:
            return chats
    return await connector_chat_ids(session)


def in_office_hours(protocol: StudyProtocol, group: Group | None, moment: datetime) -> bool:
    """Whether someone in the team reads messages at ``moment`` (the group's local time)."""
    hours = protocol.office_hours
    local = moment.astimezone(group.zone if group is not None else zone_named(None))
    start, end = (time.fromisoformat(hours.start), time.fromisoformat(hours.end))
    return local.weekday() in hours.days and start <= local.time() < end


def next_opening(protocol: StudyProtocol, group: Group | None, moment: datetime) -> datetime:
    """When office hours next begin after ``moment`` (in the group's zone)."""
    hours = protocol.office_hours
    zone = group.zone if group is not None else zone_named(None)
    local = moment.astimezone(zone)
    start = time.fromisoformat(hours.start)
    for days in range(8):
        day = local.date() + timedelta(days=days)
        opening = datetime.combine(day, start, tzinfo=zone)
        if day.weekday() in hours.days and opening > local:
            return opening
    return local + timedelta(days=1)


@dataclass(frozen=True)
class Relayed:
    """What :func:`from_partner` did: the kept message, and whether it was out of hours."""

    message: RelayedMessage
    copies: int
    away_note: bool


async def from_partner(
    session: AsyncSession,
    protocol: StudyProtocol,
    *,
    prompts: Prompts,
    settings: Settings,
    person: Person,
    profile: PartnerProfile,
    incoming: Incoming,
    chat_id: int,
    update_id: int,
    now: datetime,
    acknowledge: bool = True,
) -> Relayed:
    """Keep a partner's message and queue a copy to each of their connectors, and the
    partner's "sent" (or, the first time each day outside office hours, the away note).

    ``acknowledge=False``: the partner has had a reply already (the crisis reply, which says
    the connector will be in touch), so nothing more is sent to them."""
    relayed = await _keep(
        session,
        settings,
        incoming,
        person_id=person.id,
        direction=IN,
        now=now,
        update_id=update_id,
    )
    group = protocol.group(profile.group_key)
    name = await name_of(session, person.id)
    header = prompts.render(
        "relay/to_connector",
        name=name,
        group=group.name if group is not None else "",
        kind=incoming.kind,
        text=incoming.text,
        forwarded=incoming.forwarded,
    )
    chats = await connector_chats(session, protocol, profile.group_key)
    for connector_chat in chats:
        await _queue_copy(
            session, copy_key(relayed.id, connector_chat), connector_chat, incoming, header
        )
    connector = group.connector if group is not None else ""
    away = acknowledge and not in_office_hours(protocol, group, now)
    noted = False
    if away:
        opening = next_opening(protocol, group, now)
        zone = group.zone if group is not None else zone_named(None)
        noted = (
            await enqueue(
                session,
                key=f"{KIND}:away:{person.id}:{now.astimezone(zone):%Y-%m-%d}",
                chat_id=chat_id,
                person_id=person.id,
                kind="reply",
                conversation_step=True,
                text=prompts.render(
                    "relay/away",
                    connector=connector,
                    day=day_words(prompts, opening, zone),
                    time=time_words(prompts, opening.time()),
                    resources=protocol.crisis_resources,
                ),
            )
            is not None
        )
    if acknowledge and not noted:
        await enqueue(
            session,
            key=f"{KIND}:sent:{relayed.id}",
            chat_id=chat_id,
            person_id=person.id,
            kind="reply",
            conversation_step=True,
            text=prompts.render("relay/sent", connector=connector),
        )
    return Relayed(relayed, len(chats), noted)


async def _queue_copy(
    session: AsyncSession,
    key: str,
    chat_id: int,
    incoming: Incoming,
    text: str,
    *,
    person_id: int | None = None,
) -> None:
    if incoming.kind == "text" or incoming.file_id is None:
        await enqueue(
            session,
            key=key,
            chat_id=chat_id,
            text=text,
            kind=KIND,
            person_id=person_id,
            quotes=True,
        )
        return
    method = METHODS[incoming.kind]
    field = method.removeprefix("send").lower()
    await enqueue(
        session,
        key=key,
        chat_id=chat_id,
        method=method,
        payload={field: incoming.file_id},
        text=_fit_caption(text),
        kind=KIND,
        person_id=person_id,
        quotes=True,
    )


def _fit_caption(text: str) -> str:
    """A caption Telegram accepts (long ones are cut; the whole text is kept in the record)."""
    return text if len(text) <= CAPTION_LIMIT else text[: CAPTION_LIMIT - 1] + "\u2026"


async def replied_message(
    session: AsyncSession, connector_chat_id: int, tg_message_id: int
) -> RelayedMessage | None:
    """The partner's message whose copy (in the connector's chat) has this Telegram id."""
    rows = await session.execute(
        select(OutboxMessage.idempotency_key).where(
            OutboxMessage.chat_id == connector_chat_id,
            OutboxMessage.tg_message_id == tg_message_id,
            OutboxMessage.kind == KIND,
        )
    )
    key = rows.scalars().first()
    relayed_id = _relayed_id(key) if key is not None else None
    if relayed_id is None:
        return None
    relayed = await session.get(RelayedMessage, relayed_id)
    return relayed if relayed is not None and relayed.direction == IN else None


async def to_partner(
    session: AsyncSession,
    prompts: Prompts,
    *,
    settings: Settings,
    connector: Person,
    partner_id: int,
    incoming: Incoming,
    update_id: int,
    now: datetime,
) -> str | None:
    """Send a connector's message to a partner (an answer to what they wrote, or one begun
    from their card), from the connector by name; return the partner's name, or None when
    they can no longer be written to (withdrawn, or gone)."""
    partner = await session.get(Person, partner_id)
    identity = (
        await session.execute(
            select(TelegramIdentity).where(TelegramIdentity.person_id == partner_id)
        )
    ).scalar_one_or_none()
    if partner is None or identity is None or partner.status == PersonStatus.WITHDRAWN:
        return None
    answer = await _keep(
        session,
        settings,
        incoming,
        person_id=partner.id,
        direction=OUT,
        now=now,
        update_id=update_id,
        connector_id=connector.id,
    )
    text = prompts.render(
        "relay/from_connector",
        connector=await name_of(session, connector.id),
        kind=incoming.kind,
        text=incoming.text,
    )
    await _queue_copy(
        session,
        f"{KIND}:answer:{answer.id}",
        identity.chat_id,
        incoming,
        text,
        person_id=partner.id,
    )
    return identity.called


def cannot_write(prompts: Prompts, row: PartnerRow, zone: ZoneInfo, now: datetime) -> str | None:
    """Why a connector cannot begin a message to this partner, in words (None: they can).

    Only a partner taking part: the bot never writes again to someone who withdrew, cannot
    reach someone who blocked it, has promised someone on a break to send nothing until it
    ends, and a partner still setting up would have their answer taken as a setting-up step.
    """
    state = state_of(row, now)
    if state == "taking_part":
        return None
    until = date_words(prompts, row.paused_until, zone) if row.paused_until else ""
    return prompts.label(f"relay.cannot_write.{state}", until=until)


async def writable(
    session: AsyncSession, prompts: Prompts, connector_id: int, partner_id: int, *, now: datetime
) -> tuple[str | None, str | None]:
    """The partner's name, and why (in words) the connector cannot begin a message to them
    now (None: they can). Someone who is not a partner in one of the connector's groups is
    "not available", the same answer whether they exist or not."""
    partner = await session.get(Person, partner_id)
    rows = await partner_rows(session, None, partner_id)
    if (
        partner is None
        or partner.role != Role.PARTNER
        or not rows
        or not await looks_after(session, connector_id, partner_id)
    ):
        return None, prompts.label("roster.not_available")
    zone = zone_of(await session.get(PartnerProfile, partner_id))
    return rows[0].name, cannot_write(prompts, rows[0], zone, now)


async def start_message(
    session: AsyncSession, connector_id: int, partner_id: int, *, now: datetime
) -> StaffDraft:
    """Begin a message from the connector to ``partner_id`` (replacing any other draft)."""
    return await drafts.start(
        session, connector_id, MESSAGE_DRAFT, "text", {"partner_id": partner_id}, now=now
    )


async def message_draft(
    session: AsyncSession, connector_id: int, *, now: datetime
) -> StaffDraft | None:
    """The connector's unsent message to a partner, if one is open (forgotten after a day)."""
    return await drafts.get(session, connector_id, MESSAGE_DRAFT, now=now)


async def _keep(
    session: AsyncSession,
    settings: Settings,
    incoming: Incoming,
    *,
    person_id: int,
    direction: str,
    now: datetime,
    update_id: int,
    connector_id: int | None = None,
) -> RelayedMessage:
    """Store one message of the conversation (its text encrypted at rest, like answers)."""
    stored, encrypted = (
        settings.text_cipher().encrypt(incoming.text) if incoming.text else (None, False)
    )
    kept = RelayedMessage(
        person_id=person_id,
        connector_person_id=connector_id,
        direction=direction,
        content_kind=incoming.kind,
        text=stored,
        text_encrypted=encrypted,
        file_id=incoming.file_id,
        created_at=now,
        source_update_id=update_id,
    )
    session.add(kept)
    await session.flush()
    return kept
