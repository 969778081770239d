"""Live recording runs and children's answers on the day (R8), in SQL.

At most one run per session is running: `running_session` holds the session id while it runs
and is unique, so two starts racing (in one process or two) leave exactly one run; the other is
refused with CONFLICT. Every change commits with its audit entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.schema import recording_day_answers, recording_runs
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal

__all__ = ["RunRow", "SqlRecordingRuns"]

ALREADY_RUNNING = "This session is being recorded already."


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    org_id: str
    session_id: str
    purpose: str
    started_by: str
    started_at_us: int


class SqlRecordingRuns:
    def __init__(self, writer: AuditedWriter, database: Database) -> None:
        self._writer = writer
        self._db = database

    async def open(
        self,
        run_id: str,
        org_id: str,
        session_id: str,
        purpose: str,
        started_by: str,
        events: Sequence[AuditEvent],
    ) -> int:
        """Open the session's one running run; CONFLICT if one runs. Returns its start (us)."""

        def job(tx: WriteTx) -> int:
            running = tx.conn.scalar(
                select(recording_runs.c.id).where(recording_runs.c.running_session == session_id)
            )
            if running is not None:
                raise Refusal(ErrorCode.CONFLICT, ALREADY_RUNNING)
            try:
                with tx.conn.begin_nested():
                    tx.conn.execute(
                        insert(recording_runs).values(
                            id=run_id,
                            org_id=org_id,
                            session_id=session_id,
                            running_session=session_id,
                            purpose=purpose,
                            started_by=started_by[:64],
                            started_at=tx.at,
                        )
                    )
            except IntegrityError:  # another process's start committed first
                raise Refusal(ErrorCode.CONFLICT, ALREADY_RUNNING) from None
            for event in events:
                tx.audit(event)
            return tx.at

        return await self._writer.write(job)

    async def close(self, run_id: str, reason: str, events: Sequence[AuditEvent]) -> bool:
        """Stop a run (idempotent: False when it had stopped already)."""

        def job(tx: WriteTx) -> bool:
            done = tx.conn.execute(
                update(recording_runs)
                .where(recording_runs.c.id == run_id, recording_runs.c.stopped_at.is_(None))
                .values(running_session=None, stopped_at=tx.at, stop_reason=reason[:64])
            )
            for event in events:
                tx.audit(event)
            return bool(done.rowcount)

        return await self._writer.write(job)

    async def running(self, session_id: str) -> RunRow | None:
        def read(conn: Connection) -> RunRow | None:
            row = conn.execute(
                select(recording_runs).where(recording_runs.c.running_session == session_id)
            ).first()
            if row is None:
                return None
            return RunRow(
                row.id, row.org_id, row.session_id, row.purpose, row.started_by, row.started_at
            )

        return await self._db.read(read)

    async def running_id(self, session_id: str) -> str | None:
        run = await self.running(session_id)
        return run.id if run is not None else None

    async def running_purpose(self, session_id: str) -> str | None:
        run = await self.running(session_id)
        return run.purpose if run is not None else None

    async def set_day_answer(
        self,
        org_id: str,
        session_id: str,
        participant_id: str,
        answer: str,
        events: Sequence[AuditEvent],
    ) -> None:
        def job(tx: WriteTx) -> None:
            tx.conn.execute(
                delete(recording_day_answers).where(
                    recording_day_answers.c.session_id == session_id,
                    recording_day_answers.c.participant_id == participant_id,
                )
            )
            tx.conn.execute(
                insert(recording_day_answers).values(
                    session_id=session_id,
                    participant_id=participant_id,
                    org_id=org_id,
                    answer=answer,
                    answered_at=tx.at,
                )
            )
            for event in events:
                tx.audit(event)

        await self._writer.write(job)

    async def day_answers(self, session_id: str) -> Mapping[str, str]:
        def read(conn: Connection) -> dict[str, str]:
            rows = conn.execute(
                select(
                    recording_day_answers.c.participant_id, recording_day_answers.c.answer
                ).where(recording_day_answers.c.session_id == session_id)
            )
            return {row.participant_id: row.answer for row in rows}

        return await self._db.read(read)
