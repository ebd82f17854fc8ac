"""SQLAlchemy models.

Identity (who someone is on Telegram) is kept apart from the research side (a pseudonymous
person with a role), so that exports and analysis never need the identity table.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    func,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship

from storage.clock import utcnow
from storage.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with named constraints (Alembic needs names on SQLite)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), int: Integer(), dict[str, Any]: JSON()}


class Role(enum.StrEnum):
    """What someone does in the study."""

    PARTNER = "partner"
    CONNECTOR = "connector"
    RESEARCHER = "researcher"


#: The role of a connector or researcher whose staff role was taken away: kept (their drafts,
#: broadcasts and the audit log point at them) but treated as someone not enrolled.
FORMER_STAFF = "former"


class RoleSource(enum.StrEnum):
    """Where a person's role came from, so that the allow-list check knows what it may take."""

    ALLOW_LIST = "allow-list"  # COMPANION_CONNECTOR_IDS / COMPANION_RESEARCHER_IDS
    INVITE = "invite"  # an invite link (companion invite create, /invite)


class PersonStatus(enum.StrEnum):
    """Whether the bot may contact someone."""

    ACTIVE = "active"
    UNREACHABLE = "unreachable"  # Telegram answered 403: they blocked the bot or left
    WITHDRAWN = "withdrawn"


class InboxStatus(enum.StrEnum):
    """Where an incoming update is in its processing."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class OutboxStatus(enum.StrEnum):
    """Where an outgoing message is in its delivery."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the request may have reached Telegram; never resent blindly
    CANCELLED = "cancelled"


class Person(Base):
    """Someone enrolled in the study, known to the research side only by a pseudonym."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    #: Where ``role`` came from (:class:`RoleSource`); None when not known (made by hand).
    role_source: Mapped[str | None] = mapped_column(String(16), default=None)
    #: Since when they hold ``role`` (None: since ``created_at``).
    role_since: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default=PersonStatus.ACTIVE)
    status_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    identity: Mapped[TelegramIdentity | None] = relationship(
        back_populates="person", uselist=False, lazy="raise"
    )


class TelegramIdentity(Base):
    """The Telegram side of a person: numeric ids and the name Telegram gives."""

    __tablename__ = "telegram_identity"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), unique=True
    )
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    first_name: Mapped[str | None] = mapped_column(String(128), default=None)
    username: Mapped[str | None] = mapped_column(String(64), default=None)
    preferred_name: Mapped[str | None] = mapped_column(String(64), default=None)
    language_code: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship(back_populates="identity", lazy="raise")

    @hybrid_property
    def called(self) -> str:
        """The name we call them: the one they chose, else Telegram's first name, else "".

        Also a SQL expression (``select(TelegramIdentity.called)``), the same rule in a query.
        """
        return self.preferred_name or self.first_name or ""

    @called.inplace.expression
    @classmethod
    def _called_expression(cls) -> ColumnElement[str]:
        return func.coalesce(
            func.nullif(cls.preferred_name, ""), func.nullif(cls.first_name, ""), ""
        )


class InboxUpdate(Base):
    """An update from Telegram, committed before its offset is confirmed.

    The raw payload is kept only until the update is processed; afterwards only the id (for
    de-duplication) and the outcome remain, so an outsider's message is not kept.
    """

    __tablename__ = "inbox_update"
    __table_args__ = (Index("ix_inbox_update_status_update_id", "status", "update_id"),)

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default=InboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(200), default=None)


class OutboxMessage(Base):
    """A message the bot will send, written in the same transaction as the change behind it."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), default=None
    )
    kind: Mapped[str] = mapped_column(String(32), default="message")
    method: Mapped[str] = mapped_column(String(32), default="sendMessage")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    tg_message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)
    #: A step of a conversation the person is waiting on (the next question, the next setting-up
    #: step): if its outcome is unknown (a crash or a timeout mid-send) it is sent once more,
    #: so nobody is left waiting. Everything else (broadcasts, reminders, alerts) never is.
    conversation_step: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: The broadcast this row is one delivery of (its report is read from these rows).
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcast.id", ondelete="SET NULL"), default=None, index=True
    )


class AuditEvent(Base):
    """One line of the append-only audit log: exports, broadcasts, role changes, alerts."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # No foreign key: the log must outlive a withdrawn partner whose data is deleted.
    actor_person_id: Mapped[int | None] = mapped_column(default=None)
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or delete an audit event."""


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _refuse_audit_change(mapper: Mapper[Any], connection: Any, target: AuditEvent) -> None:
    raise AppendOnlyError("the audit log is append-only")


class Invite(Base):
    """A single-use, expiring invite; only a hash of its code is kept."""

    __tablename__ = "invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    group_key: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    used_by_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), default=None
    )


class PartnerProfile(Base):
    """How a partner takes part: group, time zone, check-in time, quiet hours, pause.

    Research side: no names here (the name they chose is on the identity table).
    """

    __tablename__ = "partner_profile"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    group_key: Mapped[str | None] = mapped_column(String(64), default=None)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    checkin_weekday: Mapped[int | None] = mapped_column(default=None)  # 0 = Monday
    checkin_time: Mapped[str | None] = mapped_column(String(5), default=None)  # "18:00" local
    quiet_start: Mapped[str | None] = mapped_column(String(5), default=None)
    quiet_end: Mapped[str | None] = mapped_column(String(5), default=None)
    paused_until: Mapped[datetime | None] = mapped_column(default=None)
    onboarding_step: Mapped[str] = mapped_column(String(32), default="welcome")
    # What the next free text from this partner answers, e.g. "settings:name" (None: nothing).
    awaiting_input: Mapped[str | None] = mapped_column(String(64), default=None)
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    onboarded_at: Mapped[datetime | None] = mapped_column(default=None)
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)
    #: How they would like to be thanked for their time (None: not asked yet).
    payment_preference: Mapped[str | None] = mapped_column(String(16), default=None)


class ConsentDecision(Base):
    """One decision on one consent item; the latest per item is the one in force."""

    __tablename__ = "consent_decision"
    __table_args__ = (Index("ix_consent_decision_person_item", "person_id", "item_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(String(64))
    granted: Mapped[bool] = mapped_column()
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckinStatus(enum.StrEnum):
    """Where one check-in is."""

    PLANNED = "planned"
    OPEN = "open"
    COMPLETED = "completed"
    EXPIRED = "expired"  # its window ended before it was finished
    MISSED = "missed"  # never started (downtime, pause); the reason is kept
    CANCELLED = "cancelled"


class Checkin(Base):
    """One occurrence of a check-in for one partner."""

    __tablename__ = "checkin"
    __table_args__ = (
        Index("ix_checkin_person_status", "person_id", "status"),
        # /stats: when the study's first check-in went out, and the weeks' check-ins.
        Index("ix_checkin_opened_at", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurrence_key: Mapped[str] = mapped_column(String(200), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    checkin_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=CheckinStatus.OPEN)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column(default=None)
    closes_at: Mapped[datetime] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    current_question: Mapped[str | None] = mapped_column(String(64), default=None)
    reason: Mapped[str | None] = mapped_column(String(64), default=None)

    @staticmethod
    def asked_for_key(person_id: int, update_id: int) -> str:
        """The occurrence key of a check-in a partner asked for (``/checkin``, one update)."""
        return f"{ASKED_FOR_PREFIX}{person_id}:{update_id}"

    @hybrid_property
    def asked_for(self) -> bool:
        """Whether the partner started this check-in themselves (``/checkin``), not the
        schedule; in SQL too (``Checkin.asked_for``)."""
        return self.occurrence_key.startswith(ASKED_FOR_PREFIX)


#: The start of the occurrence key of every check-in a partner asked for.
ASKED_FOR_PREFIX = "manual:"


class Answer(Base):
    """One answer to one question; a changed answer adds a row and supersedes the old one."""

    __tablename__ = "answer"
    __table_args__ = (Index("ix_answer_checkin_question", "checkin_id", "question_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("checkin.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    question_key: Mapped[str] = mapped_column(String(64))
    value_number: Mapped[int | None] = mapped_column(default=None)
    value_choice: Mapped[str | None] = mapped_column(String(64), default=None)
    value_text: Mapped[str | None] = mapped_column(Text, default=None)  # encrypted when keyed
    text_encrypted: Mapped[bool] = mapped_column(default=False)
    voice_file_id: Mapped[str | None] = mapped_column(String(200), default=None)
    voice_duration: Mapped[int | None] = mapped_column(default=None)
    voice_path: Mapped[str | None] = mapped_column(String(300), default=None)
    skipped: Mapped[bool] = mapped_column(default=False)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(default=None)
    source_update_id: Mapped[int | None] = mapped_column(BigInteger, default=None)

    @hybrid_property
    def in_force(self) -> bool:
        """Whether this is the answer as it stands (no changed answer has superseded it)."""
        return self.superseded_at is None

    @in_force.inplace.expression
    @classmethod
    def _in_force_expression(cls) -> ColumnElement[bool]:
        return cls.superseded_at.is_(None)


class SafeguardingAlert(Base):
    """A risk signal in what a partner wrote, and who in the team picked it up."""

    __tablename__ = "safeguarding_alert"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))  # "answer" or "message"
    answer_id: Mapped[int | None] = mapped_column(
        ForeignKey("answer.id", ondelete="SET NULL"), default=None
    )
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_by_person_id: Mapped[int | None] = mapped_column(default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_by_person_id: Mapped[int | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolution_note: Mapped[str | None] = mapped_column(Text, default=None)


class OccurrenceKind(enum.StrEnum):
    """What a planned occurrence does when it falls due."""

    CHECKIN = "checkin"  # open a scheduled check-in (weekly, monthly)
    CHECKIN_NUDGE = "checkin_nudge"  # the one gentle reminder of an unanswered check-in
    MEETING_REMINDER = "meeting_reminder"
    MEETING_FOLLOWUP = "meeting_followup"  # the reflection after a meeting


class OccurrenceStatus(enum.StrEnum):
    """Where one planned occurrence is."""

    PLANNED = "planned"
    DONE = "done"  # it went out (its messages are in the outbox)
    MISSED = "missed"  # it fell due but could not go out in its window; the reason is kept
    SKIPPED = "skipped"  # nothing to do when it fell due (for example, not coming to a meeting)
    CANCELLED = "cancelled"  # withdrawn partner, cancelled meeting


class Occurrence(Base):
    """One planned thing for one person at one moment: the schedule is data, not jobs.

    ``key`` is unique and built from the local date (not the UTC instant), so planning the
    same week twice, or across a daylight-saving change, can never make a second row.
    ``window_ends_at`` is the lateness policy: after it, the occurrence is recorded as missed
    instead of going out late.
    """

    __tablename__ = "occurrence"
    __table_args__ = (
        Index("ix_occurrence_status_due", "status", "due_at"),
        Index("ix_occurrence_person_status", "person_id", "status"),
        Index("ix_occurrence_meeting", "meeting_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    checkin_key: Mapped[str | None] = mapped_column(String(64), default=None)
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting.id", ondelete="CASCADE"), default=None
    )
    checkin_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkin.id", ondelete="SET NULL"), default=None
    )
    due_at: Mapped[datetime] = mapped_column()
    window_ends_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=OccurrenceStatus.PLANNED)
    reason: Mapped[str | None] = mapped_column(String(64), default=None)
    planned_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(default=None)


class Meeting(Base):
    """A study meeting: when (UTC, with the zone it was arranged in), where, and for whom."""

    __tablename__ = "meeting"
    __table_args__ = (Index("ix_meeting_starts_at", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column()
    length_minutes: Mapped[int] = mapped_column()
    timezone: Mapped[str] = mapped_column(String(64))
    place: Mapped[str] = mapped_column(String(500))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)  # group keys; [] = everyone
    version: Mapped[int] = mapped_column(default=1)  # goes up when the time changes
    created_by_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)


class MeetingAnswer(enum.StrEnum):
    """A partner's answer to a meeting reminder."""

    YES = "yes"
    NO = "no"
    MAYBE = "maybe"


class MeetingResponse(Base):
    """What a partner said about coming to a meeting (the latest answer)."""

    __tablename__ = "meeting_response"
    __table_args__ = (UniqueConstraint("meeting_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    answer: Mapped[str] = mapped_column(String(16))
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


class InvolvementStatus(enum.StrEnum):
    """Where one entry of the involvement log is."""

    PENDING = "pending"  # logged by the partner, waiting for a connector to approve or correct
    APPROVED = "approved"  # counts as time given (meeting attendance is approved as marked)


class PaymentPreference(enum.StrEnum):
    """How a partner would like to be thanked for their time (asked once, changeable)."""

    PAID = "paid"
    VOUCHER = "voucher"
    DECLINED = "declined"


class Involvement(Base):
    """Time a partner gave to the study (the involvement log NIHR asks studies to keep).

    A meeting's attendance is one row per partner and meeting (approved as it is marked);
    other kinds (training, reading papers, ...) are logged with ``/log`` by the partner, who
    waits for a connector's approval, or by a connector for them. Expenses are in pence.
    """

    __tablename__ = "involvement"
    __table_args__ = (
        UniqueConstraint("meeting_id", "person_id"),
        Index("ix_involvement_person_status", "person_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting.id", ondelete="SET NULL"), default=None
    )
    kind: Mapped[str] = mapped_column(String(32), default="meeting")
    attended: Mapped[bool] = mapped_column(default=True)
    minutes: Mapped[int] = mapped_column(default=0)
    occurred_at: Mapped[datetime] = mapped_column()
    recorded_by_person_id: Mapped[int | None] = mapped_column(default=None)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(
        String(16), default=InvolvementStatus.APPROVED, server_default="approved"
    )
    expenses_pence: Mapped[int | None] = mapped_column(default=None)
    reviewed_by_person_id: Mapped[int | None] = mapped_column(default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(default=None)


class ImpactEvent(Base):
    """ "You said, we did": what changed because of partners' input, as a connector wrote it."""

    __tablename__ = "impact_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    #: How the partners were picked: {"by": "group"|"meeting"|"word", "value": ...}.
    selection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by_person_id: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImpactRecipient(Base):
    """One partner told about an impact event, linked to the contribution it answers."""

    __tablename__ = "impact_recipient"
    __table_args__ = (
        UniqueConstraint("event_id", "person_id"),
        Index("ix_impact_recipient_person", "person_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("impact_event.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting.id", ondelete="SET NULL"), default=None
    )
    answer_id: Mapped[int | None] = mapped_column(
        ForeignKey("answer.id", ondelete="SET NULL"), default=None
    )


class StaffDraft(Base):
    """A half-finished multi-step command (``/meeting``, ``/yousaid``, ``/log``), one a person.

    Staff use it for their commands; a partner's ``/log`` keeps its steps here too.
    """

    __tablename__ = "staff_draft"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Broadcast(Base):
    """One message a connector sent to many partners; its deliveries are outbox rows.

    The text itself is not kept here (it is in the outbox rows until they are cleared):
    the row records who sent it, to whom, and the counts its report starts from.
    """

    __tablename__ = "broadcast"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: {"groups": [...], "meeting_id": id or None, "said_yes": bool}; no groups = everyone.
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_kind: Mapped[str] = mapped_column(String(16), default="text")
    urgent: Mapped[bool] = mapped_column(default=False)
    recipients: Mapped[int] = mapped_column(default=0)
    #: Who was left out and why: {"paused": n, "withdrawn": n, "unreachable": n, ...}.
    left_out: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The connector's chat that sees its progress and report (None: sent from the CLI).
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    progress_edited_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class RelayedMessage(Base):
    """One message between a partner and their connector(s), relayed by the bot.

    ``direction`` "in" is from the partner, "out" a connector's answer. Free text is
    encrypted at rest like answers; files are kept as Telegram file ids only.
    """

    __tablename__ = "relayed_message"
    __table_args__ = (Index("ix_relayed_message_person_at", "person_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    connector_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), default=None
    )
    direction: Mapped[str] = mapped_column(String(8))
    content_kind: Mapped[str] = mapped_column(String(16), default="text")
    text: Mapped[str | None] = mapped_column(Text, default=None)
    text_encrypted: Mapped[bool] = mapped_column(default=False)
    file_id: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_update_id: Mapped[int | None] = mapped_column(BigInteger, default=None, unique=True)


class StaffNotice(Base):
    """A "not reachable" notice for the connectors, which they pick up and resolve."""

    __tablename__ = "staff_notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32), default="unreachable")
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_by_person_id: Mapped[int | None] = mapped_column(default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_by_person_id: Mapped[int | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolution_note: Mapped[str | None] = mapped_column(Text, default=None)


__all__ = [
    "Answer",
    "AppendOnlyError",
    "AuditEvent",
    "Base",
    "Broadcast",
    "Checkin",
    "CheckinStatus",
    "ConsentDecision",
    "ImpactEvent",
    "ImpactRecipient",
    "InboxStatus",
    "InboxUpdate",
    "Invite",
    "Involvement",
    "InvolvementStatus",
    "Meeting",
    "MeetingAnswer",
    "MeetingResponse",
    "Occurrence",
    "OccurrenceKind",
    "OccurrenceStatus",
    "OutboxMessage",
    "OutboxStatus",
    "PartnerProfile",
    "PaymentPreference",
    "Person",
    "PersonStatus",
    "RelayedMessage",
    "Role",
    "SafeguardingAlert",
    "StaffDraft",
    "StaffNotice",
    "TelegramIdentity",
]
