"""Migration 0002 goes up, down and up again on both databases."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import make_engines
from gateway.adapters.sql.incident_schema import incident_notes, incidents
from gateway.adapters.sql.migrate import alembic_config, migrate


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _columns(conn: Connection, table: str) -> list[str]:
    return [column["name"] for column in inspect(conn).get_columns(table)]


async def test_incident_tables_come_and_go(database_url: str) -> None:
    writer, reader = make_engines(database_url)
    try:
        await migrate(writer)
        async with writer.connect() as conn:
            assert {"incidents", "incident_notes"} <= await conn.run_sync(_tables)
            # The migration and the Table definitions agree on the columns.
            for table in (incidents, incident_notes):
                assert await conn.run_sync(_columns, table.name) == [c.name for c in table.c]
        async with writer.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0001"))
        async with writer.connect() as conn:
            tables = await conn.run_sync(_tables)
            assert "incidents" not in tables and "incident_notes" not in tables
            assert "audit_log" in tables
        await migrate(writer)
        async with writer.connect() as conn:
            assert {"incidents", "incident_notes"} <= await conn.run_sync(_tables)
    finally:
        await writer.dispose()
        if reader is not writer:
            await reader.dispose()
