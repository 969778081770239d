"""Failure tallies in SQL (migration 0005): the durable truth of the abuse limits.

One row per key (an invite holder, a hashed source address, an organisation, a second device):
how many failures in the window that the first one opened, and when that window closes. A
Redis flush or restart loses nothing, every gateway process reads the same numbers, and each
failure is counted in the same transaction as its audit entry. All writes go through the one
audited writer, which serialises them (on PostgreSQL behind the audit head's row lock), so
exactly one failure sees a tally reach its limit: that one alerts, once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Column, Integer, String, Table, delete, insert, select, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.schema import metadata
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.clock import from_us, to_us
from gateway.domain.attempts import NONE, Tally
from gateway.domain.audit import AuditEvent
from gateway.domain.outbox import OutboxMessage

__all__ = ["SqlFailureLedger", "attempt_tallies"]

attempt_tallies = Table(
    "attempt_tallies",
    metadata,
    Column("key", String(96), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("closes_at", BigInteger, nullable=False),  # UTC microseconds
    Column("ref", String(64), nullable=True),  # e.g. the incident a run of concerns went to
)


SWEEP_EVERY = 256  # failures between two deletions of closed windows (keeps the table small)


class SqlFailureLedger:
    def __init__(self, writer: AuditedWriter, database: Database) -> None:
        self._writer = writer
        self._db = database
        self._since_sweep = 0

    async def tallies(self, keys: Collection[str]) -> dict[str, Tally]:
        def read(conn: Connection) -> dict[str, Tally]:
            return _read(conn, keys)

        return await self._db.read(read)

    async def fail(
        self,
        keys: Collection[str],
        window: timedelta,
        now: datetime,
        events: Callable[[Mapping[str, Tally]], Sequence[AuditEvent]],
        ref: str | None = None,
        messages: Callable[[Mapping[str, Tally]], Sequence[OutboxMessage]] | None = None,
    ) -> dict[str, Tally]:
        """Count one failure for each key; `events(tallies after)` are audited with it and
        `messages(tallies after)` queued in the outbox with it (after `events`). `ref` is kept
        with a window it opens."""
        at = to_us(now)
        closes = to_us(now + window)
        self._since_sweep += 1
        sweep = self._since_sweep >= SWEEP_EVERY
        if sweep:
            self._since_sweep = 0

        def job(tx: WriteTx) -> dict[str, Tally]:
            if sweep:  # closed windows count nothing: the table holds only open ones
                tx.conn.execute(delete(attempt_tallies).where(attempt_tallies.c.closes_at <= at))
            found = _read(tx.conn, keys)
            after: dict[str, Tally] = {}
            for key in keys:
                tally = found[key]
                if tally.failures > 0 and to_us(tally.closes_at) > at:
                    tx.conn.execute(
                        update(attempt_tallies)
                        .where(attempt_tallies.c.key == key)
                        .values(failures=attempt_tallies.c.failures + 1)
                    )
                    after[key] = Tally(tally.failures + 1, tally.closes_at, tally.ref)
                else:  # no window open: this failure opens one
                    tx.conn.execute(delete(attempt_tallies).where(attempt_tallies.c.key == key))
                    tx.conn.execute(
                        insert(attempt_tallies).values(
                            key=key, failures=1, closes_at=closes, ref=ref
                        )
                    )
                    after[key] = Tally(1, from_us(closes), ref)
            for event in events(after):
                tx.audit(event)
            if messages is not None:
                tx.notify(*messages(after))
            return after

        return await self._writer.write(job)

    async def clear(self, keys: Collection[str], events: Sequence[AuditEvent]) -> None:
        def job(tx: WriteTx) -> None:
            tx.conn.execute(delete(attempt_tallies).where(attempt_tallies.c.key.in_(list(keys))))
            for event in events:
                tx.audit(event)

        await self._writer.write(job)


def _read(conn: Connection, keys: Collection[str]) -> dict[str, Tally]:
    found = {
        row.key: Tally(row.failures, from_us(row.closes_at), row.ref)
        for row in conn.execute(
            select(attempt_tallies).where(attempt_tallies.c.key.in_(list(keys)))
        )
    }
    return {key: found.get(key, NONE) for key in keys}
