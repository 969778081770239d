"""incident log

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Columns an incident keeps for ever once written; closing sets status, closed_at, closed_by.
FIXED = (
    "id",
    "org_id",
    "session_id",
    "reported_by_kind",
    "reporter_identity",
    "reporter_participant_id",
    "kind",
    "summary",
    "what_gateway_did",
    "created_at",
)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=True),
        sa.Column("reported_by_kind", sa.String(length=16), nullable=False),
        sa.Column("reporter_identity", sa.String(length=64), nullable=False),
        sa.Column("reporter_participant_id", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("what_gateway_did", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"]),
        sa.ForeignKeyConstraint(["reporter_participant_id"], ["participants.id"]),
        sa.ForeignKeyConstraint(["closed_by"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_org_created", ["org_id", "created_at"], unique=False)
        batch_op.create_index("ix_incidents_session", ["session_id"], unique=False)

    op.create_table(
        "incident_notes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("author_staff_id", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["author_staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incident_notes", schema=None) as batch_op:
        batch_op.create_index("ix_incident_notes_incident", ["incident_id"], unique=False)

    # Evidence is kept (R14): the database refuses to delete an incident, to change what was
    # reported, to reopen one, or to edit or delete a note. As in 0001, whoever can drop these
    # triggers can still tamper; the audit chain records every legitimate change.
    if op.get_bind().dialect.name == "postgresql":
        unchanged = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FIXED)
        op.execute(f"""
            CREATE FUNCTION incidents_close_only() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    RAISE EXCEPTION 'incidents are kept';
                END IF;
                IF OLD.status <> 'open' OR NEW.status <> 'closed'
                   OR NEW.closed_at IS NULL OR NEW.closed_by IS NULL OR {unchanged} THEN
                    RAISE EXCEPTION 'an incident can only be closed, once';
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql""")
        op.execute("""
            CREATE TRIGGER incidents_close_only BEFORE UPDATE OR DELETE ON incidents
            FOR EACH ROW EXECUTE FUNCTION incidents_close_only()""")
        op.execute("""
            CREATE FUNCTION incident_notes_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'incident_notes is append-only'; END $$ LANGUAGE plpgsql""")
        op.execute("""
            CREATE TRIGGER incident_notes_append_only BEFORE UPDATE OR DELETE ON incident_notes
            FOR EACH ROW EXECUTE FUNCTION incident_notes_append_only()""")
    else:
        unchanged = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FIXED)
        op.execute("""
            CREATE TRIGGER incidents_no_delete BEFORE DELETE ON incidents
            BEGIN SELECT RAISE(ABORT, 'incidents are kept'); END""")
        op.execute(f"""
            CREATE TRIGGER incidents_close_only BEFORE UPDATE ON incidents
            WHEN OLD.status <> 'open' OR NEW.status <> 'closed'
                 OR NEW.closed_at IS NULL OR NEW.closed_by IS NULL OR {unchanged}
            BEGIN SELECT RAISE(ABORT, 'an incident can only be closed, once'); END""")
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER incident_notes_no_{action.lower()} BEFORE {action}
                ON incident_notes
                BEGIN SELECT RAISE(ABORT, 'incident_notes is append-only'); END""")


def downgrade() -> None:
    # Dropping a table drops its triggers; PostgreSQL's trigger functions go separately.
    with op.batch_alter_table("incident_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_notes_incident")
    op.drop_table("incident_notes")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_session")
        batch_op.drop_index("ix_incidents_org_created")
    op.drop_table("incidents")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION incident_notes_append_only()")
        op.execute("DROP FUNCTION incidents_close_only()")
