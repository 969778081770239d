"""audit chains: several chains, one head row each, so processes commit side by side

Revision ID: 0015
Revises: 0014

Every audited commit used to lock the one head row, so all gateway processes' commits took
turns. Now each entry belongs to a chain (`chain`) at a place in it (`link`); each chain has its
own head row (audit_head.id is the chain's number) and its own seals. What was written before is
the first chain, with link = seq: it verifies exactly as before. On PostgreSQL, `audit_seq` hands
out seqs (the log's one order for reading) to the chains.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _sqlite_append_only(table: str) -> None:
    for action in ("UPDATE", "DELETE"):
        op.execute(f"""
            CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column("audit_log", sa.Column("chain", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("audit_log", sa.Column("link", sa.BigInteger(), nullable=True))
    # The rows written so far are the first chain, in seq order: link = seq. The append-only
    # guard is lifted for this one statement.
    if postgres:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        op.execute("UPDATE audit_log SET link = seq")
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        op.alter_column("audit_log", "link", nullable=False)
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("UPDATE audit_log SET link = seq")
        op.execute("""
            CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""")
    op.create_index("ix_audit_chain_link", "audit_log", ["chain", "link"], unique=True)

    # Seals: keyed by (chain, segment).
    if postgres:
        op.add_column(
            "audit_seals", sa.Column("chain", sa.Integer(), nullable=False, server_default="1")
        )
        op.execute("ALTER TABLE audit_seals DROP CONSTRAINT audit_seals_pkey")
        op.execute("ALTER TABLE audit_seals ADD PRIMARY KEY (chain, segment)")
        op.execute("CREATE SEQUENCE audit_seq")
        op.execute("SELECT setval('audit_seq', coalesce(max(seq), 0) + 1, false) FROM audit_log")
    else:
        op.execute("""
            CREATE TABLE audit_seals_chained (
                chain INTEGER NOT NULL DEFAULT 1,
                segment BIGINT NOT NULL,
                mac BLOB NOT NULL,
                PRIMARY KEY (chain, segment))""")
        op.execute(
            "INSERT INTO audit_seals_chained (chain, segment, mac) "
            "SELECT 1, segment, mac FROM audit_seals"
        )
        op.execute("DROP TABLE audit_seals")  # its triggers go with it
        op.execute("ALTER TABLE audit_seals_chained RENAME TO audit_seals")
        _sqlite_append_only("audit_seals")


def downgrade() -> None:
    # Only a log of one chain can go back: the older code knows one head row.
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP SEQUENCE audit_seq")
        op.execute("ALTER TABLE audit_seals DROP CONSTRAINT audit_seals_pkey")
        op.execute("ALTER TABLE audit_seals ADD PRIMARY KEY (segment)")
        op.drop_column("audit_seals", "chain")
    else:
        op.execute("""
            CREATE TABLE audit_seals_single (
                segment BIGINT NOT NULL PRIMARY KEY, mac BLOB NOT NULL)""")
        op.execute(
            "INSERT INTO audit_seals_single (segment, mac) "
            "SELECT segment, mac FROM audit_seals WHERE chain = 1"
        )
        op.execute("DROP TABLE audit_seals")
        op.execute("ALTER TABLE audit_seals_single RENAME TO audit_seals")
        _sqlite_append_only("audit_seals")
    op.drop_index("ix_audit_chain_link", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("link")
        batch.drop_column("chain")
    if not postgres:
        # The batch copy of audit_log leaves its append-only triggers behind: put them back.
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{action}")
        _sqlite_append_only("audit_log")
