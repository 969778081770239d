"""gateway processes on this database (who shares live state with whom)

Revision ID: 0006
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_processes",
        sa.Column("process_id", sa.String(length=32), nullable=False),
        sa.Column("live_state", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("process_id"),
    )


def downgrade() -> None:
    op.drop_table("gateway_processes")
