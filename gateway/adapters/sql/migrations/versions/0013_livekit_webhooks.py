"""livekit webhooks: event ids seen and the newest event applied per participant or room

Revision ID: 0013
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "livekit_webhook_events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        "ix_livekit_webhook_events_received_at", "livekit_webhook_events", ["received_at"]
    )
    op.create_table(
        "livekit_webhook_marks",
        sa.Column("room", sa.String(length=128), nullable=False),
        sa.Column("mark", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.PrimaryKeyConstraint("room", "mark"),
    )


def downgrade() -> None:
    op.drop_table("livekit_webhook_marks")
    op.drop_index("ix_livekit_webhook_events_received_at", "livekit_webhook_events")
    op.drop_table("livekit_webhook_events")
