"""recording playback links; the desk's list of recordings by organisation and start; the
retention job's destructions started or asked for, found by index

Revision ID: 0012
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_recordings_org_started", "recordings", ["org_id", "started_at"])
    op.create_index(
        "ix_recordings_destruction",
        "recordings",
        ["state", "destruction_started", "destruction_requested"],
    )
    op.create_table(
        "recording_playbacks",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"]),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(
        op.f("ix_recording_playbacks_recording_id"), "recording_playbacks", ["recording_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_recording_playbacks_recording_id"), table_name="recording_playbacks")
    op.drop_table("recording_playbacks")
    op.drop_index("ix_recordings_destruction", table_name="recordings")
    op.drop_index("ix_recordings_org_started", table_name="recordings")
