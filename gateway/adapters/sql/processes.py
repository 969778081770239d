"""The gateway processes serving from one database, so that two cannot silently run with
separate live state (the rule is `domain/processes.py`).

Why a table, not an advisory lock or a lock file: one mechanism for SQLite and PostgreSQL, read
through the same `Database` (with its deadlines), that also works behind connection poolers (a
session advisory lock needs one connection held for the life of the process) and across hosts (a
lock file only within one), and that an operator can read: `SELECT * FROM gateway_processes`
names each process's host, pid and kind of live state. The cost is a lease instead of a lock: an
entry lives `ttl_seconds` (GATEWAY_LIVE_HEARTBEAT_SECONDS) unless renewed (every third of it), so
a process that crashed blocks a start for at most that long; `claim` waits that out before it
refuses. Expiry runs on the database's clock, so processes on hosts with skewed clocks agree.

A lapsed entry is kept one more lease period before any registration deletes it (it no longer
counts as alive for starts): crash recovery leaves a writer's recordings alone until its entry
lapsed that long ago (`orphaned` in adapters/sql/recordings.py), and a missing entry must mean a
writer gone at least that long. A process renewing an entry that lapsed registers again (the
start rule is checked anew), as if its entry were gone.

Registration is one serialised step: SQLite writes are (BEGIN IMMEDIATE), and on PostgreSQL the
transaction takes an advisory lock first, so two processes starting together cannot both see an
empty table.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Integer, String, Table, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.schema import ID, metadata
from gateway.domain.processes import GatewayProcess, LiveStateKind, start_conflict

log = logging.getLogger(__name__)

gateway_processes = Table(
    "gateway_processes",
    metadata,
    Column("process_id", String(ID), primary_key=True),
    Column("live_state", String(16), nullable=False),  # LiveStateKind
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # database clock, UTC microseconds
)

# Any constant: the advisory lock only serialises registrations with one another.
_REGISTRATION_LOCK = 0x5347_5750  # "SGWP"
_DATABASE_NOW = {
    "sqlite": "SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
    "postgresql": "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
}


class StartRefused(SystemExit):
    """This process may not serve beside the others on its database. A SystemExit, so that
    `gateway serve` ends with the one-line reason (exit status 1) and no traceback."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"gateway: refusing to start: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Outcome:
    conflict: str | None
    retry_in_seconds: float  # when the soonest conflicting entry expires (if it is not renewed)


class ProcessRegistry:
    def __init__(self, database: Database, me: GatewayProcess, ttl_seconds: float) -> None:
        if not ttl_seconds > 0:
            raise ValueError("ttl_seconds must be positive")
        self._database = database
        self._me = me
        self._ttl_us = round(ttl_seconds * 1_000_000)

    async def claim(self) -> None:
        """Register this process, or raise `StartRefused`. An entry that blocks the start is
        given one lease period to expire (a process that crashed); one renewed meanwhile belongs
        to a live process."""
        outcome = await self._database.write(self._register)
        if outcome.conflict is None:
            return
        await asyncio.sleep(min(outcome.retry_in_seconds, self._ttl_us / 1_000_000) + 0.1)
        outcome = await self._database.write(self._register)
        if outcome.conflict is not None:
            raise StartRefused(outcome.conflict)

    async def renew(self) -> str | None:
        """Extend this process's entry; the conflict if the entry had lapsed and another
        process has started since (this process must then stop serving)."""
        outcome = await self._database.write(self._renew)
        return outcome.conflict

    async def release(self) -> None:
        me = self._me.process_id
        await self._database.write(
            lambda conn: conn.execute(
                delete(gateway_processes).where(gateway_processes.c.process_id == me)
            )
        )

    # in the database's transaction

    def _register(self, conn: Connection) -> _Outcome:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REGISTRATION_LOCK})
        now = int(conn.execute(text(_DATABASE_NOW[conn.dialect.name])).scalar_one())
        conn.execute(
            delete(gateway_processes).where(gateway_processes.c.expires_at < now - self._ttl_us)
        )
        rows = (
            conn.execute(select(gateway_processes).where(gateway_processes.c.expires_at >= now))
            .mappings()
            .all()
        )
        alive = [
            GatewayProcess(r["process_id"], LiveStateKind(r["live_state"]), r["host"], r["pid"])
            for r in rows
        ]
        conflict = start_conflict(self._me, alive)
        if conflict is not None:
            soonest = min(r["expires_at"] for r in rows if r["process_id"] != self._me.process_id)
            return _Outcome(conflict, max(0.0, (soonest - now) / 1_000_000))
        values = {
            "process_id": self._me.process_id,
            "live_state": self._me.live_state.value,
            "host": self._me.host[:255],
            "pid": self._me.pid,
            "expires_at": now + self._ttl_us,
        }
        upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        statement = upsert(gateway_processes).values(values)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["process_id"], set_={"expires_at": values["expires_at"]}
            )
        )
        return _Outcome(None, 0.0)

    def _renew(self, conn: Connection) -> _Outcome:
        now = int(conn.execute(text(_DATABASE_NOW[conn.dialect.name])).scalar_one())
        renewed = conn.execute(
            update(gateway_processes)
            .where(
                gateway_processes.c.process_id == self._me.process_id,
                gateway_processes.c.expires_at >= now,
            )
            .values(expires_at=now + self._ttl_us)
        ).rowcount
        if renewed:
            return _Outcome(None, 0.0)
        log.warning("this process's registration had lapsed; registering again")
        return self._register(conn)
