"""Every change and its audit entries commit together, or not at all ("no audit, no action").

Writes are queued to one task per process that commits them in groups: each job runs in its own
SAVEPOINT inside a shared transaction, its audit events are chained onto the log, and only after
the COMMIT does any caller get its answer. A job that raises a Refusal has its changes rolled back
and the refusal itself recorded instead. Events with no other change (a join's decision, a
refused request) need no savepoint: they are only chained. A job's outbox messages (the
notifications its change causes, DESIGN §3) are written in its savepoint too: queued if and only
if the change commits.

A group is one synchronous function run by `Database.write`: on SQLite one hop to the writer's
thread and one fsync for the whole group, however many jobs it holds.

Deadlines: a caller waits in the queue at most the database's deadline (`Database.
timeout_seconds`); one whose job has not started by then is answered 503 and its job never runs
(an abandoned job must not commit behind its caller's back, e.g. bind a device whose secret
nobody received). A job already in a committing group waits for that group's outcome, which the
database's own deadlines bound. A group that cannot commit answers every caller in it
`Unavailable(AUDIT_UNAVAILABLE)` ("no audit, no action"); a job that meets an outage alone (a lock
timeout) answers `Unavailable(DATABASE_UNAVAILABLE)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql.audit_reader import read_heads
from gateway.adapters.sql.engine import Database, is_outage, unavailable
from gateway.adapters.sql.outbox import insert_messages
from gateway.adapters.sql.schema import audit_head, audit_log, audit_seals
from gateway.clock import Clock, to_us
from gateway.domain.audit import (
    FIRST_CHAIN,
    GENESIS,
    SEGMENT,
    AuditEvent,
    WitnessedHead,
    chain_genesis,
    encode_entry,
    entry_mac,
    seal_mac,
    segment_of,
)
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.outbox import OutboxMessage

T = TypeVar("T")
log = logging.getLogger(__name__)
AUDIT_UNAVAILABLE_MESSAGE = "The audit log is not available right now; try again shortly."
_NEW_CHAIN_TRIES = 3  # another process may start the same new chain at the same moment
_EVENTS_PER_JOB = 1  # seqs taken ahead for a job: most audit one event (more: asked again)
# PostgreSQL: the first chain no other transaction holds, and :n new seqs, in one round trip.
# The seqs are taken once the head row is locked (the CTE locks it before the outer select is
# projected), so within a chain seqs grow in commit order: readers page per chain on that
# (domain/audit_cursor.py). Taken in the same select as the lock, a seq could be drawn, the
# row found locked and committed by another writer meanwhile, and then locked with the older seq.
_TAKE_CHAIN = text(
    "WITH head AS ("
    "SELECT id, seq, mac FROM audit_head ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " SELECT id, seq, mac,"
    " (SELECT array_agg(nextval('audit_seq')) FROM generate_series(1, :n)) AS seqs"
    " FROM head"
)


@dataclass
class WriteTx:
    """What a write job sees: the connection (inside its savepoint), the instant, its audit."""

    conn: Connection
    at: int  # UTC microseconds shared by the whole group
    events: list[AuditEvent] = field(default_factory=list)
    messages: list[OutboxMessage] = field(default_factory=list)

    def audit(self, event: AuditEvent) -> None:
        self.events.append(event)

    def notify(self, *messages: OutboxMessage) -> None:
        """Queue notifications in the outbox, committed with this job's change or not at all."""
        self.messages.extend(messages)


Job = Callable[[WriteTx], T]  # synchronous: it runs inside the group's transaction
RefusalEvent = Callable[[Refusal], AuditEvent | None]


@dataclass
class _Pending(Generic[T]):
    job: Job[T] | None  # None: audit events only, no savepoint needed
    events: Sequence[AuditEvent]
    on_refusal: RefusalEvent | None
    future: asyncio.Future[T]
    started: bool = False  # taken into a committing group (set on the event loop)


class AuditedWriter:
    def __init__(
        self, database: Database, audit_key: bytes, clock: Clock, *, max_group: int = 256
    ) -> None:
        self._database = database
        self._key = audit_key
        self._clock = clock
        self._max_group = max_group
        self._queue: asyncio.Queue[_Pending[Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # PostgreSQL: several processes commit at once, each group on a chain no other
        # transaction holds (see `_take_chain`). SQLite: one writer at a time (BEGIN
        # IMMEDIATE), always on the first chain.
        self._chains = database.dialect == "postgresql"

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

    async def write(
        self,
        job: Job[T],
        on_refusal: RefusalEvent | None = None,
        messages: Sequence[OutboxMessage] = (),
    ) -> T:
        if messages:
            inner = job

            def job(tx: WriteTx) -> T:
                result = inner(tx)
                tx.notify(*messages)
                return result

        return await self._submit(job, (), on_refusal)

    async def heads(self) -> tuple[WitnessedHead, ...]:
        """Every chain's head as stored (for the witness kept outside the database)."""
        return await read_heads(self._database)

    async def record(self, *events: AuditEvent) -> None:
        """Append audit events that come with no other change (e.g. a refused request)."""
        await self._submit(None, events, None)

    async def _submit(
        self, job: Job[T] | None, events: Sequence[AuditEvent], on_refusal: RefusalEvent | None
    ) -> T:
        if self._task is None or self._task.done():
            raise Unavailable(ErrorCode.AUDIT_UNAVAILABLE, AUDIT_UNAVAILABLE_MESSAGE)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        pending = _Pending(job, events, on_refusal, future)
        self._queue.put_nowait(pending)
        deadline = self._database.timeout_seconds
        if deadline is None:
            return await future
        try:
            return await asyncio.wait_for(asyncio.shield(future), deadline)
        except TimeoutError:
            if pending.started:  # committing now: its outcome is the answer, bounded by the
                return await future  # database's deadlines
            future.cancel()  # still queued: it will never run
            log.warning("audited write still queued at its deadline")
            raise Unavailable(ErrorCode.AUDIT_UNAVAILABLE, AUDIT_UNAVAILABLE_MESSAGE) from None

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self._max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                live = [pending for pending in group if not pending.future.done()]
                for pending in live:
                    pending.started = True
                if live:
                    await self._commit(live)
            except Exception as error:  # the whole group is refused: fail closed
                if isinstance(error, Unavailable):
                    log.warning("audit group not committed: the database is unavailable")
                else:
                    log.exception("audit group commit failed")
                for pending in group:
                    if not pending.future.done():
                        pending.future.set_exception(
                            Unavailable(ErrorCode.AUDIT_UNAVAILABLE, AUDIT_UNAVAILABLE_MESSAGE)
                        )
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _commit(self, group: list[_Pending[Any]]) -> None:
        at = to_us(self._clock.now())
        outcomes = await self._database.write(lambda conn: self._commit_group(conn, group, at))
        for pending, (ok, value) in zip(group, outcomes, strict=True):
            if pending.future.done():
                continue
            if ok:
                pending.future.set_result(value)
            else:
                pending.future.set_exception(value)

    def _commit_group(
        self, conn: Connection, group: list[_Pending[Any]], at: int
    ) -> list[tuple[bool, Any]]:
        """Run the group's jobs and chain their events, in the caller's transaction. Runs off
        the event loop (SQLite: on the writer's thread): it touches no asyncio object."""
        outcomes: list[tuple[bool, Any]] = []
        # Events known now, and a guess for what each job will add: the seqs come in the same
        # round trip as the chain; a group that needs more asks again.
        guess = sum(len(p.events) if p.job is None else _EVENTS_PER_JOB for p in group)
        chain, link, previous, seqs = self._take_chain(conn, guess)
        rows: list[dict[str, Any]] = []
        for pending in group:
            events: Sequence[AuditEvent] = pending.events
            if pending.job is None:
                outcomes.append((True, None))
            else:
                tx = WriteTx(conn, at)
                savepoint = conn.begin_nested()
                try:
                    result = pending.job(tx)
                    if tx.messages:
                        insert_messages(conn, tx.messages)
                except Refusal as refusal:
                    savepoint.rollback()
                    outcomes.append((False, refusal))
                    event = pending.on_refusal(refusal) if pending.on_refusal else None
                    events = [event] if event else []
                except Exception as error:  # a bug or a storage fault: nothing of this job stays
                    savepoint.rollback()
                    if is_outage(error):  # e.g. its row's lock not granted in time
                        outcomes.append((False, unavailable(error)))
                    else:
                        log.exception("write job failed")
                        outcomes.append((False, Refusal(ErrorCode.INTERNAL, "Internal error.")))
                    events = []
                else:
                    savepoint.commit()
                    outcomes.append((True, result))
                    events = tx.events
            for event in events:
                link += 1
                rows.append({"chain": chain, "link": link, "at": at, "event": event})
        if not rows:
            return outcomes
        if len(seqs) < len(rows):
            seqs += self._seqs(conn, len(rows) - len(seqs))
        for row, seq in zip(rows, seqs, strict=False):  # unused seqs are left as a gap
            event = row.pop("event")
            entry = encode_entry(seq, at, event)
            previous = entry_mac(self._key, previous, entry)
            row.update(
                {
                    "seq": seq,
                    "org_id": event.org_id,
                    "kind": event.kind,
                    "session_id": event.session_id,
                    "person_id": event.person_id,
                    "entry": entry,
                    "mac": previous,
                }
            )
        conn.execute(insert(audit_log), rows)
        self._seal(conn, chain, rows[0]["link"], link)
        conn.execute(
            update(audit_head).where(audit_head.c.id == chain).values(seq=link, mac=previous)
        )
        return outcomes

    def _take_chain(self, conn: Connection, seqs: int) -> tuple[int, int, bytes, list[int]]:
        """(chain, its last link, its last MAC, new seqs) for this group, its head row locked
        until the commit. PostgreSQL: `seqs` new seqs come with the chain, in the same
        statement (SQLite: none; `_seqs` counts on from the highest there).

        PostgreSQL: the first head row no other transaction holds (`SKIP LOCKED`: never a wait),
        so each process's group takes a chain of its own and commits beside the others; when
        every chain is taken, a new one is started, numbered after the last (chains are
        numbered without gaps: one that never commits leaves its number to the next). SQLite:
        the first chain, under the database's one write lock."""
        head = select(audit_head.c.id, audit_head.c.seq, audit_head.c.mac).order_by(audit_head.c.id)
        if not self._chains:
            row = conn.execute(head.limit(1)).first()
            if row is None:  # no head row: verify reports it; the log goes on from genesis
                return FIRST_CHAIN, 0, GENESIS, []
            return int(row.id), int(row.seq), bytes(row.mac), []
        for _ in range(_NEW_CHAIN_TRIES):
            row = conn.execute(_TAKE_CHAIN, {"n": seqs}).first()
            if row is not None:
                return int(row.id), int(row.seq), bytes(row.mac), sorted(row.seqs or [])
            chain = int(conn.scalar(select(func.coalesce(func.max(audit_head.c.id), 0))) or 0) + 1
            genesis = chain_genesis(self._key, chain)
            created = conn.execute(
                text(
                    "INSERT INTO audit_head (id, seq, mac) VALUES (:id, 0, :mac) "
                    "ON CONFLICT (id) DO NOTHING RETURNING id"
                ),
                {"id": chain, "mac": genesis},
            ).first()
            if created is not None:  # ours, locked by this transaction until it commits
                return chain, 0, genesis, []
        raise Unavailable(ErrorCode.AUDIT_UNAVAILABLE, AUDIT_UNAVAILABLE_MESSAGE)

    def _seqs(self, conn: Connection, count: int) -> list[int]:
        """`count` new seqs, ascending: the log's order for reading, unique across chains.
        PostgreSQL: from a sequence (commits on other chains take theirs meanwhile; a group
        that rolls back leaves a gap in seq, never in a chain). SQLite: after the highest."""
        if self._chains:
            values = conn.execute(
                text("SELECT nextval('audit_seq') FROM generate_series(1, :n)"), {"n": count}
            ).scalars()
            return sorted(int(v) for v in values)
        last = int(conn.scalar(select(func.coalesce(func.max(audit_log.c.seq), 0))) or 0)
        return list(range(last + 1, last + count + 1))

    def _seal(self, conn: Connection, chain: int, first: int, last: int) -> None:
        """Seal every segment of `chain` this group completed."""
        for segment in range(segment_of(first), segment_of(last + 1)):
            start = (segment - 1) * SEGMENT + 1
            entries = conn.execute(
                select(audit_log.c.entry)
                .where(
                    audit_log.c.chain == chain,
                    audit_log.c.link.between(start, start + SEGMENT - 1),
                )
                .order_by(audit_log.c.link)
            ).scalars()
            previous = conn.execute(
                select(audit_seals.c.mac).where(
                    audit_seals.c.chain == chain, audit_seals.c.segment == segment - 1
                )
            ).scalar_one_or_none() or chain_genesis(self._key, chain)
            conn.execute(
                insert(audit_seals).values(
                    chain=chain, segment=segment, mac=seal_mac(self._key, previous, entries)
                )
            )
