"""Fixtures for the audit log tests: a migrated database (SQLite and PostgreSQL, through
`database_url`), a running AuditedWriter, and the means to tamper like a database admin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.audit_reader import verify_chain
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.migrate import migrate
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.clock import FrozenClock
from gateway.domain.audit import SEGMENT, AuditEvent, ChainReport

KEY = b"test-audit-key-0123456789abcdef!"
ORG_A = "a" * 32
ORG_B = "b" * 32
SESSIONS = ("5" * 32, "6" * 32)
PEOPLE = ("7" * 32, "8" * 32, "9" * 32)
APPEND_ONLY = ("audit_log", "audit_seals", "consent_records")


def event(i: int) -> AuditEvent:
    """The i-th test event: two organisations, two sessions, three people, three kinds."""
    return AuditEvent(
        kind=("admission.decided", "recording.blocked", "grant.changed")[i % 3],
        actor=f"staff:{i % 5}",
        org_id=(ORG_A, ORG_B)[i % 2],
        session_id=SESSIONS[i % 4 // 2],
        person_id=PEOPLE[i % 3],
        data={"i": i, "reasons": ["consent_ok"]},
    )


@dataclass
class AuditDb:
    url: str
    database: Database
    writer: AuditedWriter
    clock: FrozenClock

    @property
    def engine(self) -> AsyncEngine:  # the writer's
        return self.database.writer_engine

    @property
    def reader(self) -> AsyncEngine:
        return self.database.reader_engine

    @property
    def dialect(self) -> str:
        return self.database.dialect

    async def fill(self, count: int, *, group: int = 700) -> None:
        """Append events 1..count (event(i) at seq i) through the writer, `group` per job."""
        done = 0
        while done < count:
            batch = range(done + 1, min(done + group, count) + 1)

            def job(tx: WriteTx, batch: range = batch) -> None:
                for i in batch:
                    tx.audit(event(i))

            await self.writer.write(job)
            done = batch[-1]

    async def verify(self, key: bytes = KEY, **kwargs: Any) -> ChainReport:
        return await verify_chain(self.database, key, **kwargs)

    async def tamper(self, *statements: tuple[str, dict[str, Any]] | str) -> None:
        """Run SQL as an attacker with admin rights: first drop the append-only triggers."""
        if self.dialect == "postgresql":
            drops = [f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}" for t in APPEND_ONLY]
        else:
            drops = [
                f"DROP TRIGGER IF EXISTS {t}_no_{action}"
                for t in APPEND_ONLY
                for action in ("update", "delete")
            ]
        async with self.engine.begin() as conn:
            for drop in drops:
                await conn.execute(text(drop))
            for statement in statements:
                sql, params = (statement, {}) if isinstance(statement, str) else statement
                await conn.execute(text(sql), params)

    async def rows(self, sql: str, **params: Any) -> Sequence[Any]:
        async with self.reader.connect() as conn:
            return (await conn.execute(text(sql), params)).all()

    async def entry(self, seq: int) -> tuple[bytes, bytes]:
        ((entry, mac),) = await self.rows("SELECT entry, mac FROM audit_log WHERE seq = :s", s=seq)
        return bytes(entry), bytes(mac)


@pytest.fixture
async def audit_db(
    database_url: str, schema_at_head: Callable[[str], None]
) -> AsyncIterator[AuditDb]:
    schema_at_head(database_url)  # a copy of a migrated database; migrate() finds it done
    database = Database(database_url)
    await migrate(database.writer_engine)
    clock = FrozenClock(datetime(2025, 3, 1, 16, 0, tzinfo=UTC))
    writer = AuditedWriter(database, KEY, clock)
    await writer.start()
    try:
        yield AuditDb(database_url, database, writer, clock)
    finally:
        await writer.stop()
        await database.dispose()


# 3 sealed segments and an unsealed tail.
N = 3 * SEGMENT + 100


@pytest.fixture
async def filled(audit_db: AuditDb) -> AuditDb:
    await audit_db.fill(N)
    return audit_db
