"""LiveKit webhooks on SQL (migration 0013): which event ids were seen, and the newest event
applied per participant (or per room), so every gateway process agrees on duplicates and order.

One write job per webhook: read what is known, let `domain.livekit_webhooks.decide` decide,
write the event id and the mark, and audit, in one transaction. All writes go through the one
audited writer; the id insert is also `ON CONFLICT DO NOTHING` and the mark only moves forward
(`WHERE created_at <= new`), so even two writers that did not take turns cannot count an event
twice or move knowledge backwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, String, Table, bindparam, delete, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from gateway.adapters.sql.direct import DirectQuery
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.schema import metadata, sessions
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.domain.audit import AuditEvent
from gateway.domain.livekit_webhooks import Hint, Outcome, RoomOwner, decide

__all__ = ["SqlWebhookLedger", "livekit_webhook_events", "livekit_webhook_marks"]

livekit_webhook_events = Table(
    "livekit_webhook_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("received_at", BigInteger, nullable=False, index=True),  # UTC microseconds
)
livekit_webhook_marks = Table(
    "livekit_webhook_marks",
    metadata,
    Column("room", String(128), primary_key=True),
    Column("mark", String(128), primary_key=True),  # participant identity, "" for the room
    Column("created_at", BigInteger, nullable=False),  # LiveKit's seconds
    Column("kind", String(48), nullable=False),
)

# LiveKit retries a webhook for minutes at most; ids are kept far longer than that.
KEEP_EVENT_IDS = timedelta(days=2)
SWEEP_EVERY = 512  # webhooks between two deletions of old event ids
MAX_BATCH = 64  # webhooks in one write job at most


def session_named_by_room(room: str) -> str:
    """Rooms are named by their session's id unless the platform adapter says otherwise."""
    return room


class SqlWebhookLedger:
    def __init__(
        self,
        writer: AuditedWriter,
        database: Database,
        *,
        session_of_room: Callable[[str], str | None] = session_named_by_room,
    ) -> None:
        self._writer = writer
        self._db = database
        self._session_of_room = session_of_room
        self._since_sweep = 0
        self._queued: list[_Queued] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def apply(
        self,
        hint: Hint,
        key_serves: Callable[[str], bool],
        events: Callable[[Outcome, RoomOwner | None], list[AuditEvent]],
    ) -> tuple[Outcome, RoomOwner | None]:
        """Decide on `hint` against what SQL knows and record it, with `events(outcome,
        owner)` audited in the same transaction. Webhooks arriving in the same turn of the
        event loop share one write job (one savepoint), in arrival order: each still gets its
        own decision, and sees the ones before it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Outcome, RoomOwner | None]] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append(_Queued(hint, key_serves, events, future))
        return await future

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        for start in range(0, len(queued), MAX_BATCH):
            task = asyncio.create_task(self._run(queued[start : start + MAX_BATCH]))
            self._tasks.add(task)  # keep a reference until done
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Queued]) -> None:
        self._since_sweep += len(batch)
        sweep = self._since_sweep >= SWEEP_EVERY
        if sweep:
            self._since_sweep = 0
        sessions = [self._session_of_room(item.hint.room) for item in batch]

        def job(tx: WriteTx) -> list[tuple[Outcome, RoomOwner | None]]:
            if sweep:
                oldest = tx.at - int(KEEP_EVENT_IDS.total_seconds() * 1_000_000)
                tx.conn.execute(
                    delete(livekit_webhook_events).where(
                        livekit_webhook_events.c.received_at < oldest
                    )
                )
            return [
                _apply_one(tx, item, session) for item, session in zip(batch, sessions, strict=True)
            ]

        try:
            results = await self._writer.write(job)
        except BaseException as error:  # fail closed: none of them was recorded
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)


@dataclass
class _Queued:
    hint: Hint
    key_serves: Callable[[str], bool]
    events: Callable[[Outcome, RoomOwner | None], list[AuditEvent]]
    future: asyncio.Future[tuple[Outcome, RoomOwner | None]]


def _apply_one(
    tx: WriteTx, item: _Queued, session_id: str | None
) -> tuple[Outcome, RoomOwner | None]:
    conn, hint = tx.conn, item.hint
    (known,) = _KNOWN.rows(
        conn, event_id=hint.event_id, room=hint.room, mark=hint.mark, session_id=session_id
    )
    owner = (
        None
        if known["org_id"] is None or session_id is None
        else RoomOwner(org_id=known["org_id"], session_id=session_id)
    )
    serves = None
    if owner is not None and not item.key_serves(owner.org_id):
        serves = frozenset[str]()  # this key serves no organisation of this room
    outcome = decide(
        hint,
        seen_before=known["seen"] is not None,
        known_created_at=known["known"],
        owner=owner,
        key_serves=serves,
    )
    if outcome in (Outcome.RECONCILE, Outcome.RECORDED, Outcome.STALE):
        inserted = _execute(conn, _insert_event, event_id=hint.event_id, received_at=tx.at)
        if inserted == 0:  # recorded meanwhile (another process's writer, or this batch)
            outcome = Outcome.DUPLICATE
    if outcome in (Outcome.RECONCILE, Outcome.RECORDED):
        _execute(
            conn,
            _upsert_mark,
            room=hint.room,
            mark=hint.mark,
            created_at=hint.created_at,
            kind=hint.kind,
        )
    for event in item.events(outcome, owner):
        tx.audit(event)
    return outcome, owner


# What SQL knows about a webhook, in one statement (it runs inside the writer's group, which
# every write of the process shares: kept to three statements a webhook, compiled once).
_KNOWN = DirectQuery(
    select(
        select(livekit_webhook_events.c.event_id)
        .where(livekit_webhook_events.c.event_id == bindparam("event_id"))
        .scalar_subquery()
        .label("seen"),
        select(livekit_webhook_marks.c.created_at)
        .where(
            livekit_webhook_marks.c.room == bindparam("room"),
            livekit_webhook_marks.c.mark == bindparam("mark"),
        )
        .scalar_subquery()
        .label("known"),
        select(sessions.c.org_id)
        .where(sessions.c.id == bindparam("session_id"))
        .scalar_subquery()
        .label("org_id"),
    )
)


def _insert_event(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(livekit_webhook_events)
        .values(event_id=bindparam("event_id"), received_at=bindparam("received_at"))
        .on_conflict_do_nothing()
    )


def _upsert_mark(dialect: str) -> Any:
    """Knowledge only moves forward, even against a writer that did not take turns."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(livekit_webhook_marks).values(
        room=bindparam("room"),
        mark=bindparam("mark"),
        created_at=bindparam("created_at"),
        kind=bindparam("kind"),
    )
    return statement.on_conflict_do_update(
        index_elements=[livekit_webhook_marks.c.room, livekit_webhook_marks.c.mark],
        set_={"created_at": statement.excluded.created_at, "kind": statement.excluded.kind},
        where=livekit_webhook_marks.c.created_at <= statement.excluded.created_at,
    )


_compiled: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}


def _execute(conn: Connection, build: Callable[[str], Any], **params: Any) -> int:
    """A write compiled once per dialect and run on the driver (as `direct.DirectQuery`
    reads), errors wrapped as SQLAlchemy wraps them; how many rows it wrote."""
    dialect = conn.dialect
    key = (build.__name__, dialect.name)
    compiled = _compiled.get(key)
    if compiled is None:
        done = build(dialect.name).compile(dialect=dialect)
        compiled = _compiled[key] = (done.string, tuple(done.positiontup or ()))
    sql, names = compiled
    dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, tuple(params[name] for name in names))
        return int(cursor.rowcount)
    except dbapi_error as error:
        raise sa_exc.DBAPIError.instance(sql, None, error, dbapi_error) from error
    finally:
        cursor.close()
