"""Migration 0013 goes up, down and up again on both databases; it and the Table definitions
agree on the columns."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import make_engines
from gateway.adapters.sql.livekit_webhooks import livekit_webhook_events, livekit_webhook_marks
from gateway.adapters.sql.migrate import alembic_config, migrate

TABLES = (livekit_webhook_events, livekit_webhook_marks)


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _columns(conn: Connection, table: str) -> list[str]:
    return [column["name"] for column in inspect(conn).get_columns(table)]


async def test_webhook_tables_come_and_go(database_url: str) -> None:
    writer, reader = make_engines(database_url)
    names = {t.name for t in TABLES}
    try:
        await migrate(writer)
        async with writer.connect() as conn:
            assert names <= await conn.run_sync(_tables)
            for table in TABLES:
                assert await conn.run_sync(_columns, table.name) == [c.name for c in table.c]
        async with writer.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0012"))
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
