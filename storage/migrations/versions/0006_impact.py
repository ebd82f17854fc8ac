"""impact: the involvement log's review and expenses, payment preference, "you said, we did"

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("involvement", schema=None) as batch_op:
        # Rows made so far are meeting attendance, marked by a connector: approved.
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="approved", nullable=False)
        )
        batch_op.add_column(sa.Column("expenses_pence", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by_person_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_involvement_person_status", ["person_id", "status"], unique=False
        )
    with op.batch_alter_table("partner_profile", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_preference", sa.String(length=16), nullable=True))
    op.create_table(
        "impact_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("created_by_person_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_impact_event")),
    )
    op.create_table(
        "impact_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("answer_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["impact_event.id"],
            name=op.f("fk_impact_recipient_event_id_impact_event"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_impact_recipient_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
            name=op.f("fk_impact_recipient_meeting_id_meeting"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["answer_id"],
            ["answer.id"],
            name=op.f("fk_impact_recipient_answer_id_answer"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_impact_recipient")),
        sa.UniqueConstraint("event_id", "person_id", name=op.f("uq_impact_recipient_event_id")),
    )
    with op.batch_alter_table("impact_recipient", schema=None) as batch_op:
        batch_op.create_index("ix_impact_recipient_person", ["person_id"], unique=False)


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("impact_recipient", schema=None) as batch_op:
        batch_op.drop_index("ix_impact_recipient_person")
    op.drop_table("impact_recipient")
    op.drop_table("impact_event")
    with op.batch_alter_table("partner_profile", schema=None) as batch_op:
        batch_op.drop_column("payment_preference")
    with op.batch_alter_table("involvement", schema=None) as batch_op:
        batch_op.drop_index("ix_involvement_person_status")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by_person_id")
        batch_op.drop_column("expenses_pence")
        batch_op.drop_column("status")
