"""roles follow the settings: where each role came from, and since when it is held

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_person = sa.table(
    "person",
    sa.column("id", sa.Integer()),
    sa.column("role", sa.String()),
    sa.column("role_source", sa.String()),
    sa.column("role_since", sa.DateTime(timezone=True)),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_invite = sa.table("invite", sa.column("used_by_person_id", sa.Integer()))
_audit = sa.table(
    "audit_event",
    sa.column("actor_person_id", sa.Integer()),
    sa.column("action", sa.String()),
    sa.column("detail", sa.JSON()),
)


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role_source", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("role_since", sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    bind.execute(sa.update(_person).values(role_since=_person.c.created_at))
    # Whoever joined with an invite holds an invite's role; staff whose own role.granted line
    # says "allow-list" came from the settings. Anyone else (made by hand) stays unknown, and
    # the allow-list check leaves unknown roles alone.
    invited = sa.select(_invite.c.used_by_person_id).where(
        _invite.c.used_by_person_id.is_not(None)
    )
    bind.execute(sa.update(_person).where(_person.c.id.in_(invited)).values(role_source="invite"))
    granted = bind.execute(
        sa.select(_audit.c.actor_person_id, _audit.c.detail).where(
            _audit.c.action == "role.granted", _audit.c.actor_person_id.is_not(None)
        )
    ).all()
    allow_listed = [
        person_id
        for person_id, detail in granted
        if isinstance(detail, dict) and detail.get("source") == "allow-list"
    ]
    if allow_listed:
        bind.execute(
            sa.update(_person)
            .where(
                _person.c.id.in_(allow_listed),
                _person.c.role.in_(["connector", "researcher"]),
                _person.c.role_source.is_(None),
            )
            .values(role_source="allow-list")
        )


def downgrade() -> None:
    """Revert this migration.

    Former staff keep the role ``former``, which no guard of an older version lets through.
    """
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("role_since")
        batch_op.drop_column("role_source")
