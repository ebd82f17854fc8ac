"""an index on when each check-in went out, for /stats

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 17:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_index("ix_checkin_opened_at", "checkin", ["opened_at"], unique=False)


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index("ix_checkin_opened_at", table_name="checkin")
