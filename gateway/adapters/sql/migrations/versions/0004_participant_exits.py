"""durable exits of participants: removal for good, and a count of deliberate departures

Revision ID: 0004
Revises: 0002

A removal and a departure are written here before anything else happens, so every gateway
process learns of them from SQL (at its next reconciliation at the latest), whichever process
the host or the participant reached, and whatever the live state has lost.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("departures", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("departures")
        batch_op.drop_column("removed_at")
