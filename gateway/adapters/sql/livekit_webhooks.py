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

from sqlalchemy import BigInteger, Column, String, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

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
        self._dialect = database.dialect

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
            owner = _owner(conn, session_id)
            seen = (
                conn.execute(
                    select(livekit_webhook_events.c.event_id).where(
                        livekit_webhook_events.c.event_id == hint.event_id
                    )
                ).first()
                is not None
            )
            known = conn.execute(
                select(livekit_webhook_marks.c.created_at).where(
                    livekit_webhook_marks.c.room == hint.room,
                    livekit_webhook_marks.c.mark == hint.mark,
                )
            ).scalar_one_or_none()
            serves = None if owner is None or key_serves(owner.org_id) else frozenset[str]()
            outcome = decide(
                hint,
                seen_before=seen,
                known_created_at=known,
                owner=owner,
                key_serves=serves,
            )
            if outcome in (Outcome.RECONCILE, Outcome.RECORDED, Outcome.STALE):
                self._insert_event(conn, hint.event_id, tx.at)
            if outcome in (Outcome.RECONCILE, Outcome.RECORDED):
                self._move_mark(conn, hint, known)
            for event in events(outcome, owner):
                tx.audit(event)
            return outcome, owner

        return await self._writer.write(job)

    def _insert_event(self, conn: Connection, event_id: str, at: int) -> None:
        values = {"event_id": event_id, "received_at": at}
        if self._dialect == "postgresql":
            conn.execute(
                postgresql.insert(livekit_webhook_events).values(values).on_conflict_do_nothing()
            )
        else:
            conn.execute(
                sqlite.insert(livekit_webhook_events).values(values).on_conflict_do_nothing()
            )

    def _move_mark(self, conn: Connection, hint: Hint, known: int | None) -> None:
        if known is not None:  # forward only, even against a writer that did not take turns
            conn.execute(
                update(livekit_webhook_marks)
                .where(
                    livekit_webhook_marks.c.room == hint.room,
                    livekit_webhook_marks.c.mark == hint.mark,
                    livekit_webhook_marks.c.created_at <= hint.created_at,
                )
                .values(created_at=hint.created_at, kind=hint.kind)
            )
            return
        values = {
            "room": hint.room,
            "mark": hint.mark,
            "created_at": hint.created_at,
            "kind": hint.kind,
        }
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        conn.execute(insert(livekit_webhook_marks).values(values).on_conflict_do_nothing())


def _owner(conn: Connection, session_id: str | None) -> RoomOwner | None:
    if session_id is None:
        return None
    row = conn.execute(
        select(sessions.c.id, sessions.c.org_id).where(sessions.c.id == session_id)
    ).first()
    return None if row is None else RoomOwner(org_id=row.org_id, session_id=row.id)
