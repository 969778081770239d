"""Migration 0011 goes up, down and up again on both databases; it and the Table definitions
agree on the columns; the database itself refuses to edit or delete a signature."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from alembic import command
from sqlalchemy import delete, insert, inspect, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql.consent_link_schema import consent_links, consent_signatures
from gateway.adapters.sql.engine import make_engines
from gateway.adapters.sql.migrate import alembic_config, migrate
from gateway.adapters.sql.schema import organisations

TABLES = (consent_links, consent_signatures)


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _columns(conn: Connection, table: str) -> list[str]:
    return [column["name"] for column in inspect(conn).get_columns(table)]


async def test_consent_tables_come_and_go_and_signatures_are_append_only(
    database_url: str,
) -> None:
    writer, reader = make_engines(database_url)
    names = {t.name for t in TABLES}
    try:
        await migrate(writer)
        async with writer.connect() as conn:
            assert names <= await conn.run_sync(_tables)
            for table in TABLES:
                assert await conn.run_sync(_columns, table.name) == [c.name for c in table.c]
        async with writer.begin() as conn:
            await conn.execute(
                insert(organisations).values(
                    id="o" * 32, name="Club", policy_path=None, created_at=0
                )
            )
            await conn.execute(
                insert(consent_signatures).values(
                    id="s" * 32,
                    org_id="o" * 32,
                    consent_record_id="r" * 32,
                    signer_kind="guardian",
                    signer_id="g" * 32,
                    typed_name="Pat Parker",
                    shown_text="words",
                    shown_sha256="0" * 64,
                    policy_version="v1",
                    policy_digest="0" * 64,
                    signed_at=0,
                )
            )
        for statement in (
            update(consent_signatures).values(typed_name="Someone Else"),
            delete(consent_signatures),
        ):
            with pytest.raises(sqlalchemy.exc.DBAPIError):
                async with writer.begin() as conn:
                    await conn.execute(statement)
        async with writer.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0009"))
        async with writer.connect() as conn:
            tables = await conn.run_sync(_tables)
            assert not names & tables and "recordings" in tables
        await migrate(writer)
        async with writer.connect() as conn:
            assert names <= await conn.run_sync(_tables)
    finally:
        await writer.dispose()
        if reader is not writer:
            await reader.dispose()
