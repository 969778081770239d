"""recording runs (one running per session) and children's answers on the day (R8)

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("running_session", sa.String(length=32), nullable=True),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("stopped_at", sa.BigInteger(), nullable=True),
        sa.Column("stop_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("running_session"),
    )
    op.create_index("ix_recording_runs_session", "recording_runs", ["session_id"])
    op.create_table(
        "recording_day_answers",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("participant_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("answer", sa.String(length=8), nullable=False),
        sa.Column("answered_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("session_id", "participant_id"),
    )


def downgrade() -> None:
    op.drop_table("recording_day_answers")
    op.drop_index("ix_recording_runs_session", table_name="recording_runs")
    op.drop_table("recording_runs")
