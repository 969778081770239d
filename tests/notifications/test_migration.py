"""Migration 0007 (outbox, notification channels) goes up, down and up again on both
databases, and agrees with the Table definitions."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import make_engines
from gateway.adapters.sql.migrate import alembic_config, migrate
from gateway.adapters.sql.schema import notification_channels, outbox

NEW = {"outbox", "notification_channels"}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _columns(conn: Connection, table: str) -> list[str]:
    return [column["name"] for column in inspect(conn).get_columns(table)]


async def test_outbox_tables_come_and_go(database_url: str) -> None:
    writer, reader = make_engines(database_url)
    try:
        await migrate(writer)
        async with writer.connect() as conn:
            assert await conn.run_sync(_tables) >= NEW
            for table in (outbox, notification_channels):
                assert await conn.run_sync(_columns, table.name) == [c.name for c in table.c]
        async with writer.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0006"))
        async with writer.connect() as conn:
            tables = await conn.run_sync(_tables)
            assert not tables & NEW and "incidents" in tables
        await migrate(writer)
        async with writer.connect() as conn:
            assert await conn.run_sync(_tables) >= NEW
    finally:
        await writer.dispose()
        if reader is not writer:
            await reader.dispose()
