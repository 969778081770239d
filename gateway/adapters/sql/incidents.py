"""The incident store on SQL: incidents and their notes, every change audited with it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.incident_schema import incident_notes, incidents
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.clock import from_us
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.incidents import Incident, IncidentNote, IncidentStatus, ReporterKind
from gateway.domain.outbox import OutboxMessage


class SqlIncidentStore:
    def __init__(self, writer: AuditedWriter, database: Database) -> None:
        self._writer = writer
        self._db = database

    async def open_incident(
        self,
        incident: Incident,
        events: Sequence[AuditEvent],
        messages: Sequence[OutboxMessage] = (),
    ) -> Incident:
        """Store a new incident; it is dated when it commits (the returned copy says when).
        `messages` (who must be told) are queued in the outbox in the same transaction."""

        def job(tx: WriteTx) -> Incident:
            tx.conn.execute(
                insert(incidents).values(
                    id=incident.id,
                    org_id=incident.org_id,
                    session_id=incident.session_id,
                    reported_by_kind=incident.reported_by_kind.value,
                    reporter_identity=incident.reporter_identity,
                    reporter_participant_id=incident.reporter_participant_id,
                    kind=incident.kind,
                    summary=incident.summary,
                    what_gateway_did=json.dumps(list(incident.what_gateway_did)),
                    status=incident.status.value,
                    created_at=tx.at,
                )
            )
            for event in events:
                tx.audit(event)
            return replace(incident, created_at=from_us(tx.at))

        return await self._writer.write(job, messages=messages)

    async def add_note(
        self, org_id: str, note: IncidentNote, events: Sequence[AuditEvent]
    ) -> IncidentNote:
        def job(tx: WriteTx) -> IncidentNote:
            found = tx.conn.scalar(
                select(incidents.c.id).where(
                    incidents.c.org_id == org_id, incidents.c.id == note.incident_id
                )
            )
            if found is None:
                raise Refusal(ErrorCode.NOT_FOUND, "No such incident.")
            # Notes read in the order they were written: keep their times strictly increasing
            # per incident, even for two notes committed in the same group.
            latest = tx.conn.scalar(
                select(func.max(incident_notes.c.created_at)).where(
                    incident_notes.c.incident_id == note.incident_id
                )
            )
            created_at = max(tx.at, (latest or 0) + 1)
            tx.conn.execute(
                insert(incident_notes).values(
                    id=note.id,
                    incident_id=note.incident_id,
                    author_staff_id=note.author_staff_id,
                    text=note.text,
                    created_at=created_at,
                )
            )
            for event in events:
                tx.audit(event)
            return IncidentNote(
                note.id, note.incident_id, note.author_staff_id, note.text, from_us(created_at)
            )

        return await self._writer.write(job)

    async def close_incident(
        self, org_id: str, incident_id: str, staff_id: str, events: Sequence[AuditEvent]
    ) -> Incident:
        """Close an open incident. Whoever closed it first wins; a second close is a CONFLICT."""

        def job(tx: WriteTx) -> Incident:
            result = tx.conn.execute(
                update(incidents)
                .where(
                    incidents.c.org_id == org_id,
                    incidents.c.id == incident_id,
                    incidents.c.status == IncidentStatus.OPEN.value,
                )
                .values(status=IncidentStatus.CLOSED.value, closed_at=tx.at, closed_by=staff_id)
            )
            if result.rowcount != 1:
                raise Refusal(ErrorCode.CONFLICT, "The incident is already closed.")
            for event in events:
                tx.audit(event)
            row = (tx.conn.execute(select(incidents).where(incidents.c.id == incident_id))).one()
            return _incident(row._mapping)

        return await self._writer.write(job)

    async def incident(self, org_id: str, incident_id: str) -> Incident | None:
        def read(conn: Connection) -> Incident | None:
            row = conn.execute(
                select(incidents).where(incidents.c.org_id == org_id, incidents.c.id == incident_id)
            ).first()
            return _incident(row._mapping) if row else None

        return await self._db.read(read)

    async def incidents(
        self,
        org_id: str,
        status: IncidentStatus | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[Incident]:
        """Newest first."""
        query = select(incidents).where(incidents.c.org_id == org_id)
        if status is not None:
            query = query.where(incidents.c.status == status.value)
        if session_id is not None:
            query = query.where(incidents.c.session_id == session_id)
        query = query.order_by(incidents.c.created_at.desc(), incidents.c.id.desc()).limit(limit)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_incident(row._mapping) for row in rows]

    async def notes(self, org_id: str, incident_id: str) -> Sequence[IncidentNote]:
        """Oldest first; empty for another organisation's incident."""
        query = (
            select(incident_notes)
            .join(incidents, incidents.c.id == incident_notes.c.incident_id)
            .where(incidents.c.org_id == org_id, incident_notes.c.incident_id == incident_id)
            .order_by(incident_notes.c.created_at, incident_notes.c.id)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [
            IncidentNote(
                row.id, row.incident_id, row.author_staff_id, row.text, from_us(row.created_at)
            )
            for row in rows
        ]


def _incident(row: Any) -> Incident:
    return Incident(
        id=row["id"],
        org_id=row["org_id"],
        session_id=row["session_id"],
        reported_by_kind=ReporterKind(row["reported_by_kind"]),
        reporter_identity=row["reporter_identity"],
        reporter_participant_id=row["reporter_participant_id"],
        kind=row["kind"],
        summary=row["summary"],
        what_gateway_did=tuple(json.loads(row["what_gateway_did"])),
        status=IncidentStatus(row["status"]),
        created_at=from_us(row["created_at"]),
        closed_at=from_us(row["closed_at"]) if row["closed_at"] is not None else None,
        closed_by=row["closed_by"],
    )
