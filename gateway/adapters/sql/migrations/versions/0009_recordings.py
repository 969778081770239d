"""recordings: catalogue, participants, wrapped data keys, destruction records

Revision ID: 0009
Revises: 0008

`recording_destructions` is append-only, enforced by the database like the audit log's.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

APPEND_ONLY = "recording_destructions"


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("consent_hash", sa.String(length=64), nullable=False),
        sa.Column("consent_record_ids", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("retain_until", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("hold_by", sa.String(length=32), nullable=True),
        sa.Column("hold_at", sa.BigInteger(), nullable=True),
        sa.Column("destruction_requested", sa.String(length=32), nullable=True),
        sa.Column("destruction_requested_by", sa.String(length=64), nullable=True),
        sa.Column("destruction_started", sa.Integer(), nullable=False),
        sa.Column("writer_process", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recordings_org_session", "recordings", ["org_id", "session_id"])
    op.create_index("ix_recordings_due", "recordings", ["state", "retain_until"])
    op.create_table(
        "recording_participants",
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("person_kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"]),
        sa.PrimaryKeyConstraint("recording_id", "person_id"),
    )
    op.create_index(
        "ix_recording_participants_person", "recording_participants", ["org_id", "person_id"]
    )
    op.create_table(
        "recording_keys",
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"]),
        sa.PrimaryKeyConstraint("recording_id"),
    )
    op.create_table(
        "recording_destructions",
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("destroyed_at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("destroyed_by", sa.String(length=64), nullable=False),
        sa.Column("key_destroyed", sa.Integer(), nullable=False),
        sa.Column("file_destroyed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"]),
        sa.PrimaryKeyConstraint("recording_id"),
    )
    table = APPEND_ONLY
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{table} is append-only'; END $$ LANGUAGE plpgsql""")
        op.execute(f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
                BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")


def downgrade() -> None:
    op.drop_table("recording_destructions")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {APPEND_ONLY}_append_only()")
    op.drop_table("recording_keys")
    op.drop_index("ix_recording_participants_person", table_name="recording_participants")
    op.drop_table("recording_participants")
    op.drop_index("ix_recordings_due", table_name="recordings")
    op.drop_index("ix_recordings_org_session", table_name="recordings")
    op.drop_table("recordings")
