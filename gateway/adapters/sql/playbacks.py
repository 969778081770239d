"""Playback links in SQL (R13): issued with the audit entry that states the reason, used at most
once (a conditional update: of two requests racing with one link, one wins), burnt when another
member of staff presents them. Only the SHA-256 of a link's token is stored."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.schema import recording_playbacks
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.clock import from_us, to_us
from gateway.domain.audit import AuditEvent
from gateway.domain.review import PlaybackGrant

__all__ = ["SqlPlaybacks"]


class SqlPlaybacks:
    def __init__(self, writer: AuditedWriter, database: Database) -> None:
        self._writer = writer
        self._db = database

    async def issue(self, grant: PlaybackGrant, events: Sequence[AuditEvent]) -> None:
        def job(tx: WriteTx) -> None:
            tx.conn.execute(
                insert(recording_playbacks).values(
                    token_hash=grant.token_hash,
                    recording_id=grant.recording_id,
                    org_id=grant.org_id,
                    staff_id=grant.staff_id,
                    reason=grant.reason,
                    created_at=to_us(grant.created_at),
                    expires_at=to_us(grant.expires_at),
                    used_at=None,
                )
            )
            for event in events:
                tx.audit(event)

        await self._writer.write(job)

    async def find(self, token_hash: str) -> PlaybackGrant | None:
        def read(conn: Connection) -> PlaybackGrant | None:
            row = conn.execute(
                select(recording_playbacks).where(recording_playbacks.c.token_hash == token_hash)
            ).first()
            if row is None:
                return None
            return PlaybackGrant(
                token_hash=row.token_hash,
                recording_id=row.recording_id,
                org_id=row.org_id,
                staff_id=row.staff_id,
                reason=row.reason,
                created_at=from_us(row.created_at),
                expires_at=from_us(row.expires_at),
                used_at=from_us(row.used_at) if row.used_at is not None else None,
            )

        return await self._db.read(read)

    async def use(self, token_hash: str, events: Sequence[AuditEvent]) -> bool:
        """Mark the link used (with `events`); False when it was used already (a race lost):
        then nothing is written, not even the events."""

        def job(tx: WriteTx) -> bool:
            done = tx.conn.execute(
                update(recording_playbacks)
                .where(
                    recording_playbacks.c.token_hash == token_hash,
                    recording_playbacks.c.used_at.is_(None),
                )
                .values(used_at=tx.at)
            )
            if done.rowcount:
                for event in events:
                    tx.audit(event)
            return bool(done.rowcount)

        return await self._writer.write(job)
