"""LiveKit webhooks on SQL (migration 0013): which event ids were seen, and the newest event
applied per participant (or per room), so every gateway process agrees on duplicates and order.

One write job per webhook: read what is known, let `domain.livekit_webhooks.decide` decide,
write the event id and the mark, and audit, in one transaction. All writes go through the one
audited writer; the id insert is also `ON CONFLICT DO NOTHING` and the mark only moves forward
(`WHERE created_at <= new`), so even two writers that did not take turns cannot count an event
twice or move knowledge backwards.
"""

from __future__ import annotations

from collections.abc import Callable
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

    async def apply(
        self,
        hint: Hint,
        key_serves: Callable[[str], bool],
        events: Callable[[Outcome, RoomOwner | None], list[AuditEvent]],
    ) -> tuple[Outcome, RoomOwner | None]:
        """Decide on `hint` against what SQL knows and record it, with `events(outcome,
        owner)` audited in the same transaction."""
        self._since_sweep += 1
        sweep = self._since_sweep >= SWEEP_EVERY
        if sweep:
            self._since_sweep = 0
        session_id = self._session_of_room(hint.room)

        def job(tx: WriteTx) -> tuple[Outcome, RoomOwner | None]:
            conn = tx.conn
            if sweep:
                oldest = tx.at - int(KEEP_EVENT_IDS.total_seconds() * 1_000_000)
                conn.execute(
                    delete(livekit_webhook_events).where(
                        livekit_webhook_events.c.received_at < oldest
                    )
                )
            (known,) = _KNOWN.rows(
                conn, event_id=hint.event_id, room=hint.room, mark=hint.mark, session_id=session_id
            )
            owner = (
                None
                if known["org_id"] is None or session_id is None
                else RoomOwner(org_id=known["org_id"], session_id=session_id)
            )
            serves = None
            if owner is not None and not key_serves(owner.org_id):
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
                if inserted == 0:  # another process's writer recorded it meanwhile
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
            for event in events(outcome, owner):
                tx.audit(event)
            return outcome, owner

        return await self._writer.write(job)


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
