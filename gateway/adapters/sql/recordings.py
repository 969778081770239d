"""The recording catalogue on SQL: recordings, who is in them, wrapped keys, destruction records.

Every change is written through the audited writer (its audit entries and outbox messages
commit with it). Destruction is three separate, idempotent steps (see domain/retention.py):
`destroy_key` (marks the destruction as started and overwrites, then deletes, the wrapped key),
the file (the vault), then `record_destruction`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.processes import _DATABASE_NOW as DATABASE_NOW  # the one definition
from gateway.adapters.sql.processes import gateway_processes
from gateway.adapters.sql.schema import (
    recording_destructions,
    recording_keys,
    recording_participants,
    recordings,
)
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.clock import from_us, to_us
from gateway.domain.audit import AuditEvent
from gateway.domain.outbox import OutboxMessage
from gateway.domain.retention import (
    CatalogueEntry,
    DestructionReason,
    DestructionRecord,
    RecordingState,
)
from gateway.domain.review import RecordingFilters

__all__ = ["SqlRecordingCatalogue"]


def _entry(row: Any, people: Sequence[tuple[str, str]]) -> CatalogueEntry:
    return CatalogueEntry(
        id=row.id,
        org_id=row.org_id,
        session_id=row.session_id,
        purpose=row.purpose,
        participants=tuple(people),
        consent_hash=row.consent_hash,
        consent_record_ids=tuple(json.loads(row.consent_record_ids)),
        state=RecordingState(row.state),
        started_at=from_us(row.started_at),
        ended_at=from_us(row.ended_at) if row.ended_at is not None else None,
        size_bytes=row.size_bytes,
        chunks=row.chunks,
        retain_until=from_us(row.retain_until),
        held=bool(row.held),
        hold_reason=row.hold_reason,
        destruction_requested=(
            DestructionReason(row.destruction_requested) if row.destruction_requested else None
        ),
        destruction_started=bool(row.destruction_started),
        destruction_requested_by=row.destruction_requested_by,
    )


def _entries(conn: Connection, rows: Sequence[Any]) -> list[CatalogueEntry]:
    ids = [row.id for row in rows]
    people: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        for p in conn.execute(
            select(
                recording_participants.c.recording_id,
                recording_participants.c.person_kind,
                recording_participants.c.person_id,
            ).where(recording_participants.c.recording_id.in_(ids[start : start + 500]))
        ):
            people[p.recording_id].append((p.person_kind, p.person_id))
    return [_entry(row, sorted(people[row.id])) for row in rows]


def _may_be_due(now_us: int) -> ColumnElement[bool]:
    """A superset of what `destruction_due` says is due, for the index to narrow."""
    live = recordings.c.state.in_([RecordingState.COMPLETE.value, RecordingState.INCOMPLETE.value])
    return and_(
        recordings.c.state != RecordingState.DESTROYED.value,
        or_(
            recordings.c.destruction_started == 1,
            and_(
                live,
                recordings.c.held == 0,
                or_(
                    recordings.c.destruction_requested.is_not(None),
                    recordings.c.retain_until <= now_us,
                ),
            ),
        ),
    )


_NOT_DESTROYED = (
    RecordingState.RECORDING.value,
    RecordingState.COMPLETE.value,
    RecordingState.INCOMPLETE.value,
)
_SEALED = (RecordingState.COMPLETE.value, RecordingState.INCOMPLETE.value)


def _candidate_queries(now_us: int) -> list[Select[Any]]:
    """Together, exactly what `_may_be_due` selects; each on an index (0009, 0012)."""
    started = select(recordings).where(
        recordings.c.state.in_(_NOT_DESTROYED), recordings.c.destruction_started == 1
    )
    requested = select(recordings).where(
        recordings.c.state.in_(_SEALED),
        recordings.c.destruction_started == 0,
        recordings.c.destruction_requested.is_not(None),
        recordings.c.held == 0,
    )
    # Per state, in retention order along ix_recordings_due: the walk stops at the limit.
    passed = [
        select(recordings)
        .where(
            recordings.c.state == state,
            recordings.c.retain_until <= now_us,
            recordings.c.held == 0,
        )
        .order_by(recordings.c.retain_until)
        for state in _SEALED
    ]
    return [started, requested, *passed]


def _naming(events: Sequence[AuditEvent], recording_ids: set[str]) -> list[AuditEvent]:
    """The events about one of `recording_ids` (`data["recording"]`); events naming no single
    recording are kept."""
    kept = []
    for event in events:
        named = (event.data or {}).get("recording")
        if not isinstance(named, str) or named in recording_ids:
            kept.append(event)
    return kept


class SqlRecordingCatalogue:
    def __init__(self, writer: AuditedWriter, database: Database) -> None:
        self._writer = writer
        self._db = database

    async def create(
        self,
        entry: CatalogueEntry,
        wrapped_key: bytes,
        events: Sequence[AuditEvent],
        writer_process: str | None = None,
    ) -> None:
        def job(tx: WriteTx) -> None:
            tx.conn.execute(
                insert(recordings).values(
                    id=entry.id,
                    org_id=entry.org_id,
                    session_id=entry.session_id,
                    purpose=entry.purpose,
                    consent_hash=entry.consent_hash,
                    consent_record_ids=json.dumps(list(entry.consent_record_ids)),
                    state=entry.state.value,
                    started_at=to_us(entry.started_at),
                    ended_at=None,
                    size_bytes=0,
                    chunks=0,
                    retain_until=to_us(entry.retain_until),
                    held=int(entry.held),
                    destruction_started=0,
                    writer_process=writer_process,
                )
            )
            if entry.participants:
                tx.conn.execute(
                    insert(recording_participants),
                    [
                        {
                            "recording_id": entry.id,
                            "person_id": person_id,
                            "person_kind": kind,
                            "org_id": entry.org_id,
                        }
                        for kind, person_id in entry.participants
                    ],
                )
            tx.conn.execute(
                insert(recording_keys).values(recording_id=entry.id, wrapped_key=wrapped_key)
            )
            for event in events:
                tx.audit(event)

        await self._writer.write(job)

    async def get(self, org_id: str, recording_id: str) -> CatalogueEntry | None:
        def read(conn: Connection) -> CatalogueEntry | None:
            rows = conn.execute(
                select(recordings).where(
                    recordings.c.org_id == org_id, recordings.c.id == recording_id
                )
            ).all()
            return _entries(conn, rows)[0] if rows else None

        return await self._db.read(read)

    async def by_id(self, recording_id: str) -> CatalogueEntry | None:
        def read(conn: Connection) -> CatalogueEntry | None:
            rows = conn.execute(select(recordings).where(recordings.c.id == recording_id)).all()
            return _entries(conn, rows)[0] if rows else None

        return await self._db.read(read)

    async def wrapped_key(self, recording_id: str) -> bytes | None:
        def read(conn: Connection) -> bytes | None:
            value = conn.execute(
                select(recording_keys.c.wrapped_key).where(
                    recording_keys.c.recording_id == recording_id
                )
            ).scalar_one_or_none()
            return bytes(value) if value is not None else None

        return await self._db.read(read)

    async def seal(
        self,
        recording_id: str,
        state: RecordingState,
        size_bytes: int,
        chunks: int,
        events: Sequence[AuditEvent],
        ended_at_us: int | None = None,
    ) -> bool:
        """Mark a recording being written as complete or incomplete; False if it was not being
        written any more (sealed already, or destroyed)."""

        def job(tx: WriteTx) -> bool:
            done = tx.conn.execute(
                update(recordings)
                .where(
                    recordings.c.id == recording_id,
                    recordings.c.state == RecordingState.RECORDING.value,
                )
                .values(
                    state=state.value,
                    size_bytes=size_bytes,
                    chunks=chunks,
                    ended_at=ended_at_us if ended_at_us is not None else tx.at,
                )
            )
            if done.rowcount:
                for event in events:
                    tx.audit(event)
            return bool(done.rowcount)

        return await self._writer.write(job)

    async def orphaned(self, me: str | None, grace_seconds: float = 0.0) -> list[CatalogueEntry]:
        """Recordings still marked as being written whose writer process is gone: neither
        this process (`me`) nor any process whose entry in `gateway_processes` is alive or
        lapsed less than `grace_seconds` ago. A writer whose registration lapses stops writing
        before it does (domain/registration_lease.py); the grace covers a batch it had in hand
        when it stalled. The registry keeps a lapsed entry at least as long
        (adapters/sql/processes.py), so a missing entry means a writer gone for longer (or one
        that released its entry at a clean stop, after sealing everything it wrote)."""

        def read(conn: Connection) -> list[CatalogueEntry]:
            now = conn.execute(text(DATABASE_NOW[conn.dialect.name])).scalar_one()
            alive = select(gateway_processes.c.process_id).where(
                gateway_processes.c.expires_at > now - round(grace_seconds * 1_000_000)
            )
            query = select(recordings).where(
                recordings.c.state == RecordingState.RECORDING.value,
                or_(
                    recordings.c.writer_process.is_(None),
                    recordings.c.writer_process.not_in(alive),
                ),
            )
            if me is not None:
                query = query.where(
                    or_(recordings.c.writer_process.is_(None), recordings.c.writer_process != me)
                )
            return _entries(conn, conn.execute(query).all())

        return await self._db.read(read)

    async def candidates(self, now_us: int, limit: int) -> list[CatalogueEntry]:
        """Recordings that may be due (the domain decides): a destruction started or asked
        for, or a retention date passed. Held ones are filtered by the domain.

        Four narrow queries, each walking an index and stopping at `limit`, rather than one
        with ORs, which both databases answer with a scan of the whole catalogue and a sort,
        batch after batch (scripts/bench_retention.py: a million recordings)."""

        def read(conn: Connection) -> list[CatalogueEntry]:
            found: dict[str, Any] = {}
            for query in _candidate_queries(now_us):
                for row in conn.execute(query.limit(limit)):
                    found.setdefault(row.id, row)
            rows = sorted(found.values(), key=lambda row: (row.retain_until, row.id))[:limit]
            return _entries(conn, rows)

        return await self._db.read(read)

    async def count_candidates(self, now_us: int) -> int:
        def read(conn: Connection) -> int:
            query = select(func.count()).select_from(recordings).where(_may_be_due(now_us))
            return int(conn.execute(query).scalar_one())

        return await self._db.read(read)

    async def destroy_keys(
        self,
        items: Sequence[tuple[str, DestructionReason, str]],
        events: Sequence[AuditEvent],
    ) -> None:
        """Step 1 for (recording id, reason, by) each: the destruction has started (for good)
        and the data key is gone. The key's row is overwritten before it is deleted, so its
        bytes do not linger in the table's pages longer than the database's own free-space
        handling keeps them (and a wrapped key is useless without the master key)."""

        # One statement per (reason, by), not one per recording: a retention run destroys
        # hundreds at a time for the same reason (scripts/bench_retention.py).
        groups: dict[tuple[str, str], list[str]] = {}
        for recording_id, reason, by in items:
            groups.setdefault((reason.value, by[:64]), []).append(recording_id)

        def job(tx: WriteTx) -> None:
            for (reason, by), group in groups.items():
                tx.conn.execute(
                    update(recordings)
                    .where(recordings.c.id.in_(group), recordings.c.destruction_started == 0)
                    .values(
                        destruction_started=1,
                        destruction_requested=reason,
                        destruction_requested_by=by,
                    )
                )
            ids = [item[0] for item in items]
            tx.conn.execute(
                update(recording_keys)
                .where(recording_keys.c.recording_id.in_(ids))
                .values(wrapped_key=bytes(60))
            )
            # Only the keys deleted now are audited: a run that overlapped this one (another
            # process, `gateway retention run` by hand) or a resumed one destroyed the others.
            gone = tx.conn.execute(
                delete(recording_keys)
                .where(recording_keys.c.recording_id.in_(ids))
                .returning(recording_keys.c.recording_id)
            ).scalars()
            for event in _naming(events, set(gone)):
                tx.audit(event)

        await self._writer.write(job)

    async def record_destructions(
        self,
        records: Sequence[DestructionRecord],
        events: Sequence[AuditEvent],
        messages: Mapping[str, Sequence[OutboxMessage]] | None = None,
    ) -> int:
        """Step 3: the proofs, and the recordings marked destroyed. Those recorded already (a
        run that overlapped this one) are skipped, with their events (`data["recording"]`)
        and their messages (`messages`, by recording id); the number recorded now."""

        def job(tx: WriteTx) -> int:
            ids = [r.recording_id for r in records]
            # Overlapping runs take turns here (row locks on PostgreSQL; SQLite has one
            # writer), whatever else serialises commits: the later one sees the proofs.
            tx.conn.execute(
                select(recordings.c.id)
                .where(recordings.c.id.in_(ids))
                .order_by(recordings.c.id)
                .with_for_update()
            ).all()
            exists = set(
                tx.conn.execute(
                    select(recording_destructions.c.recording_id).where(
                        recording_destructions.c.recording_id.in_(ids)
                    )
                ).scalars()
            )
            fresh = [r for r in records if r.recording_id not in exists]
            if fresh:
                tx.conn.execute(
                    insert(recording_destructions),
                    [
                        {
                            "recording_id": r.recording_id,
                            "org_id": r.org_id,
                            "destroyed_at": tx.at,
                            "reason": r.reason.value,
                            "destroyed_by": r.destroyed_by[:64],
                            "key_destroyed": int(r.key_destroyed),
                            "file_destroyed": int(r.file_destroyed),
                        }
                        for r in fresh
                    ],
                )
                tx.conn.execute(
                    update(recordings)
                    .where(recordings.c.id.in_([r.recording_id for r in fresh]))
                    .values(state=RecordingState.DESTROYED.value)
                )
            # One proof, one audit entry and one guardian's confirmation per recording, however
            # many runs overlapped: only those recorded now are told.
            now = {r.recording_id for r in fresh}
            for event in _naming(events, now):
                tx.audit(event)
            for recording_id, told in (messages or {}).items():
                if recording_id in now:
                    tx.notify(*told)
            return len(fresh)

        return await self._writer.write(job)

    async def destruction(self, org_id: str, recording_id: str) -> DestructionRecord | None:
        def read(conn: Connection) -> DestructionRecord | None:
            row = conn.execute(
                select(recording_destructions).where(
                    recording_destructions.c.org_id == org_id,
                    recording_destructions.c.recording_id == recording_id,
                )
            ).first()
            if row is None:
                return None
            return DestructionRecord(
                recording_id=row.recording_id,
                org_id=row.org_id,
                destroyed_at=from_us(row.destroyed_at),
                reason=DestructionReason(row.reason),
                destroyed_by=row.destroyed_by,
                key_destroyed=bool(row.key_destroyed),
                file_destroyed=bool(row.file_destroyed),
            )

        return await self._db.read(read)

    async def containing(
        self, org_id: str, person_id: str, purpose: str | None
    ) -> list[CatalogueEntry]:
        """Recordings not yet destroyed in which `person_id` appears (of `purpose`, if given)."""

        def read(conn: Connection) -> list[CatalogueEntry]:
            query = (
                select(recordings)
                .join(
                    recording_participants,
                    recording_participants.c.recording_id == recordings.c.id,
                )
                .where(
                    recording_participants.c.org_id == org_id,
                    recording_participants.c.person_id == person_id,
                    recordings.c.state != RecordingState.DESTROYED.value,
                )
            )
            if purpose is not None:
                query = query.where(recordings.c.purpose == purpose)
            return _entries(conn, conn.execute(query).all())

        return await self._db.read(read)

    async def request_destruction(
        self,
        recording_ids: Sequence[str],
        reason: DestructionReason,
        by: str,
        events: Sequence[AuditEvent],
        messages: Sequence[OutboxMessage] = (),
    ) -> None:
        def job(tx: WriteTx) -> None:
            if recording_ids:
                tx.conn.execute(
                    update(recordings)
                    .where(
                        recordings.c.id.in_(list(recording_ids)),
                        recordings.c.destruction_requested.is_(None),
                    )
                    .values(destruction_requested=reason.value, destruction_requested_by=by[:64])
                )
            for event in events:
                tx.audit(event)
            tx.notify(*messages)

        await self._writer.write(job)

    async def set_hold(
        self,
        org_id: str,
        recording_ids: Sequence[str],
        held: bool,
        reason: str,
        by: str,
        events: Sequence[AuditEvent],
    ) -> int:
        """Place or lift a hold on recordings not destroyed (nor being destroyed)."""

        def job(tx: WriteTx) -> int:
            if not recording_ids:
                return 0
            done = tx.conn.execute(
                update(recordings)
                .where(
                    recordings.c.org_id == org_id,
                    recordings.c.id.in_(list(recording_ids)),
                    recordings.c.state != RecordingState.DESTROYED.value,
                    recordings.c.destruction_started == 0,
                )
                .values(
                    held=int(held),
                    hold_reason=reason,
                    hold_by=by[:32],
                    hold_at=tx.at,
                )
            )
            for event in events:
                tx.audit(event)
            return int(done.rowcount)

        return await self._writer.write(job)

    async def in_session(self, org_id: str, session_id: str) -> list[CatalogueEntry]:
        def read(conn: Connection) -> list[CatalogueEntry]:
            rows = conn.execute(
                select(recordings).where(
                    recordings.c.org_id == org_id, recordings.c.session_id == session_id
                )
            ).all()
            return _entries(conn, rows)

        return await self._db.read(read)

    async def listing(
        self, org_id: str, filters: RecordingFilters, limit: int
    ) -> list[CatalogueEntry]:
        """The organisation's recordings, newest first, filtered (the desk's list)."""

        def read(conn: Connection) -> list[CatalogueEntry]:
            query = select(recordings).where(recordings.c.org_id == org_id)
            if filters.session_id is not None:
                query = query.where(recordings.c.session_id == filters.session_id)
            if filters.purpose is not None:
                query = query.where(recordings.c.purpose == filters.purpose)
            if filters.person_id is not None:
                query = query.where(
                    recordings.c.id.in_(
                        select(recording_participants.c.recording_id).where(
                            recording_participants.c.org_id == org_id,
                            recording_participants.c.person_id == filters.person_id,
                        )
                    )
                )
            if filters.status == "held":
                query = query.where(
                    recordings.c.held == 1,
                    recordings.c.state != RecordingState.DESTROYED.value,
                )
            elif filters.status is not None:
                query = query.where(recordings.c.state == filters.status)
            if filters.since is not None:
                query = query.where(recordings.c.started_at >= to_us(filters.since))
            if filters.until is not None:
                query = query.where(recordings.c.started_at < to_us(filters.until))
            if filters.after is not None:
                query = query.where(
                    tuple_(recordings.c.started_at, recordings.c.id) < filters.after
                )
            rows = conn.execute(
                query.order_by(recordings.c.started_at.desc(), recordings.c.id.desc()).limit(limit)
            ).all()
            return _entries(conn, rows)

        return await self._db.read(read)
