"""Every change and its audit entries commit together, or not at all ("no audit, no action").

Writes are queued to one task per process that commits them in groups: each job runs in its own
SAVEPOINT inside a shared transaction, its audit events are chained onto the log, and only after
the COMMIT does any caller get its answer. A job that raises a Refusal has its changes rolled back
and the refusal itself recorded instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.schema import audit_head, audit_log, audit_seals
from gateway.clock import Clock, to_us
from gateway.domain.audit import (
    SEGMENT,
    AuditEvent,
    encode_entry,
    entry_mac,
    seal_mac,
    segment_of,
)
from gateway.domain.errors import ErrorCode, Refusal

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class WriteTx:
    """What a write job sees: the connection (inside its savepoint), the instant, its audit."""

    conn: AsyncConnection
    at: int  # UTC microseconds shared by the whole group
    events: list[AuditEvent] = field(default_factory=list)

    def audit(self, event: AuditEvent) -> None:
        self.events.append(event)


Job = Callable[[WriteTx], Awaitable[T]]
RefusalEvent = Callable[[Refusal], AuditEvent | None]


@dataclass
class _Pending(Generic[T]):
    job: Job[T]
    on_refusal: RefusalEvent | None
    future: asyncio.Future[T]


class AuditedWriter:
    def __init__(
        self, engine: AsyncEngine, audit_key: bytes, clock: Clock, *, max_group: int = 256
    ) -> None:
        self._engine = engine
        self._key = audit_key
        self._clock = clock
        self._max_group = max_group
        self._queue: asyncio.Queue[_Pending[Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._locks_head = engine.dialect.name == "postgresql"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audited-writer")

    async def stop(self) -> None:
        # Finish what was accepted before stopping: nothing acknowledged is lost.
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def write(self, job: Job[T], on_refusal: RefusalEvent | None = None) -> T:
        if self._task is None or self._task.done():
            raise Refusal(ErrorCode.AUDIT_UNAVAILABLE, "The audit log is not available.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(job, on_refusal, future))
        return await future

    async def record(self, event: AuditEvent) -> None:
        """Append audit events that come with no other change (e.g. a refused request)."""

        async def job(tx: WriteTx) -> None:
            tx.audit(event)

        await self.write(job)

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self._max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                await self._commit(group)
            except Exception:  # the whole group is refused: fail closed
                log.exception("audit group commit failed")
                for pending in group:
                    if not pending.future.done():
                        pending.future.set_exception(
                            Refusal(ErrorCode.AUDIT_UNAVAILABLE, "The audit log is not available.")
                        )
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _commit(self, group: list[_Pending[Any]]) -> None:
        at = to_us(self._clock.now())
        outcomes: list[tuple[bool, Any]] = []
        async with self._engine.begin() as conn:
            head_query = select(audit_head.c.seq, audit_head.c.mac).where(audit_head.c.id == 1)
            if self._locks_head:
                head_query = head_query.with_for_update()
            seq, previous = (await conn.execute(head_query)).one()
            rows: list[dict[str, Any]] = []
            for pending in group:
                tx = WriteTx(conn, at)
                savepoint = await conn.begin_nested()
                try:
                    result = await pending.job(tx)
                except Refusal as refusal:
                    await savepoint.rollback()
                    outcomes.append((False, refusal))
                    event = pending.on_refusal(refusal) if pending.on_refusal else None
                    tx.events = [event] if event else []
                except Exception:  # a bug or a storage fault: nothing of this job stays
                    await savepoint.rollback()
                    log.exception("write job failed")
                    outcomes.append((False, Refusal(ErrorCode.INTERNAL, "Internal error.")))
                    tx.events = []
                else:
                    await savepoint.commit()
                    outcomes.append((True, result))
                for event in tx.events:
                    seq += 1
                    entry = encode_entry(seq, at, event)
                    previous = entry_mac(self._key, previous, entry)
                    rows.append(
                        {
                            "seq": seq,
                            "at": at,
                            "org_id": event.org_id,
                            "kind": event.kind,
                            "session_id": event.session_id,
                            "person_id": event.person_id,
                            "entry": entry,
                            "mac": previous,
                        }
                    )
            if rows:
                await conn.execute(insert(audit_log), rows)
                await self._seal(conn, rows[0]["seq"], seq)
                await conn.execute(
                    update(audit_head).where(audit_head.c.id == 1).values(seq=seq, mac=previous)
                )
        for pending, (ok, value) in zip(group, outcomes, strict=True):
            if pending.future.done():
                continue
            if ok:
                pending.future.set_result(value)
            else:
                pending.future.set_exception(value)

    async def _seal(self, conn: AsyncConnection, first: int, last: int) -> None:
        """Seal every segment this group completed."""
        for segment in range(segment_of(first), segment_of(last + 1)):
            start = (segment - 1) * SEGMENT + 1
            entries = (
                await conn.execute(
                    select(audit_log.c.entry)
                    .where(audit_log.c.seq.between(start, start + SEGMENT - 1))
                    .order_by(audit_log.c.seq)
                )
            ).scalars()
            previous = (
                await conn.execute(
                    select(audit_seals.c.mac).where(audit_seals.c.segment == segment - 1)
                )
            ).scalar_one_or_none() or bytes(32)
            await conn.execute(
                insert(audit_seals).values(
                    segment=segment, mac=seal_mac(self._key, previous, entries)
                )
            )
