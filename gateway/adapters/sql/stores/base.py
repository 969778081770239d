"""What every aggregate's store shares: the database, the audited writer, the clock, and the
lifecycle of the writer and the engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.clock import Clock
from gateway.domain.audit import AuditEvent


class StoreBase:
    """The fields each aggregate's store needs; `SqlStore` composes the stores over one base."""

    def __init__(self, database: Database, audit_key: bytes, clock: Clock) -> None:
        self._db = database
        self._audit_key = audit_key
        self._clock = clock
        self.writer = AuditedWriter(database, audit_key, clock)

    async def start(self) -> None:
        await self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()
        await self._db.dispose()

    async def _change(self, events: Sequence[AuditEvent], statements: Sequence[Any]) -> None:
        def job(tx: WriteTx) -> None:
            for statement in statements:
                tx.conn.execute(statement)
            for event in events:
                tx.audit(event)

        await self.writer.write(job)
