"""Sessions and everything on them: the roster (participants), invites, the join record a
join decides on, removals and departures, device binding."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql import schema as t
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.read_batch import ReadBatch
from gateway.adapters.sql.rows import (
    _invite,
    _join_records,
    _join_records_together,
    _participant,
    _session,
)
from gateway.adapters.sql.stores.base import StoreBase
from gateway.adapters.sql.writer import WriteTx
from gateway.clock import Clock, to_us
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import (
    Invite,
    Participant,
    Session,
)
from gateway.services.ports import JoinRecord, SessionQuery


class SessionStore(StoreBase):
    def __init__(self, database: Database, audit_key: bytes, clock: Clock) -> None:
        super().__init__(database, audit_key, clock)
        self._join_reads: ReadBatch[str, JoinRecord | None] = ReadBatch(
            database, _join_records_together
        )

    async def add_session(
        self, session: Session, title: str, password_hash: str | None, events: Sequence[AuditEvent]
    ) -> None:
        await self._change(
            events,
            [
                insert(t.sessions).values(
                    id=session.id,
                    org_id=session.org_id,
                    kind=session.kind.value,
                    title=title,
                    host_staff_id=session.host_staff_id,
                    starts_at=to_us(session.starts_at),
                    ends_at=to_us(session.ends_at),
                    recording_purpose=session.recording_purpose,
                    password_hash=password_hash,
                    out_of_hours_approved_by=session.out_of_hours_approved_by,
                    created_at=to_us(session.starts_at),
                )
            ],
        )

    async def session(self, org_id: str, session_id: str) -> Session | None:
        def read(conn: Connection) -> Session | None:
            row = conn.execute(
                select(t.sessions).where(
                    t.sessions.c.org_id == org_id, t.sessions.c.id == session_id
                )
            ).first()
            return _session(row) if row else None

        return await self._db.read(read)

    async def organisation_of_session(self, session_id: str) -> str | None:
        """The organisation a session belongs to, by its id alone (closing a platform room
        this process never opened)."""

        def read(conn: Connection) -> str | None:
            return conn.execute(
                select(t.sessions.c.org_id).where(t.sessions.c.id == session_id)
            ).scalar_one_or_none()

        return await self._db.read(read)

    async def session_title(self, org_id: str, session_id: str) -> str | None:
        def read(conn: Connection) -> str | None:
            title = conn.scalar(
                select(t.sessions.c.title).where(
                    t.sessions.c.org_id == org_id, t.sessions.c.id == session_id
                )
            )
            return str(title) if title is not None else None

        return await self._db.read(read)

    async def end_session(
        self, org_id: str, session_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> None:
        await self._change(
            events,
            [
                update(t.sessions)
                .where(
                    t.sessions.c.org_id == org_id,
                    t.sessions.c.id == session_id,
                    t.sessions.c.ended_at.is_(None),
                )
                .values(ended_at=to_us(at))
            ],
        )

    async def add_participant(
        self, org_id: str, participant: Participant, events: Sequence[AuditEvent]
    ) -> None:
        def job(tx: WriteTx) -> None:
            taken = tx.conn.scalar(
                select(func.count())
                .select_from(t.participants)
                .where(
                    t.participants.c.session_id == participant.session_id,
                    t.participants.c.person_kind == participant.person_kind.value,
                    t.participants.c.person_id == participant.person_id,
                )
            )
            if taken:
                raise Refusal(
                    ErrorCode.CONFLICT, "That person is already on this session's roster."
                )
            tx.conn.execute(
                insert(t.participants).values(
                    id=participant.id,
                    org_id=org_id,
                    session_id=participant.session_id,
                    person_kind=participant.person_kind.value,
                    person_id=participant.person_id,
                    role=participant.role.value,
                    masked_identity=participant.masked_identity,
                    display_name=participant.display_name,
                    created_at=tx.at,
                )
            )
            for event in events:
                tx.audit(event)

        await self.writer.write(job)

    async def participants(self, org_id: str, session_id: str) -> Sequence[Participant]:
        def read(conn: Connection) -> Sequence[Participant]:
            rows = conn.execute(
                select(t.participants)
                .where(
                    t.participants.c.org_id == org_id,
                    t.participants.c.session_id == session_id,
                )
                .order_by(t.participants.c.created_at, t.participants.c.id)
            ).all()
            return [_participant(row) for row in rows]

        return await self._db.read(read)

    async def participant(self, org_id: str, participant_id: str) -> Participant | None:
        def read(conn: Connection) -> Participant | None:
            row = conn.execute(
                select(t.participants).where(
                    t.participants.c.org_id == org_id, t.participants.c.id == participant_id
                )
            ).first()
            return _participant(row) if row else None

        return await self._db.read(read)

    async def add_invite(self, invite: Invite, events: Sequence[AuditEvent]) -> None:
        await self._change(
            events,
            [
                insert(t.invites).values(
                    id=invite.id,
                    org_id=invite.org_id,
                    session_id=invite.session_id,
                    participant_id=invite.participant_id,
                    expires_at=to_us(invite.expires_at),
                    created_at=to_us(invite.created_at),
                )
            ],
        )

    async def invite(self, org_id: str, invite_id: str) -> Invite | None:
        def read(conn: Connection) -> Invite | None:
            row = conn.execute(
                select(t.invites).where(t.invites.c.org_id == org_id, t.invites.c.id == invite_id)
            ).first()
            return _invite(row._mapping) if row else None

        return await self._db.read(read)

    async def revoke_invite(
        self, org_id: str, invite_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> bool:
        return bool(await self._revoke_invites(org_id, t.invites.c.id == invite_id, at, events))

    async def revoke_participant_invites(
        self, org_id: str, participant_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> int:
        """Revoke every live invite of the participant; the events are written only when
        there was one to revoke (re-issuing a first invite revokes nothing)."""
        condition = t.invites.c.participant_id == participant_id
        return await self._revoke_invites(org_id, condition, at, events, only_if_any=True)

    async def _revoke_invites(
        self,
        org_id: str,
        which: Any,
        at: datetime,
        events: Sequence[AuditEvent],
        *,
        only_if_any: bool = False,
    ) -> int:
        def job(tx: WriteTx) -> int:
            result = tx.conn.execute(
                update(t.invites)
                .where(t.invites.c.org_id == org_id, which, t.invites.c.revoked_at.is_(None))
                .values(revoked_at=to_us(at))
            )
            if result.rowcount or not only_if_any:
                for event in events:
                    tx.audit(event)
            return int(result.rowcount)

        return await self.writer.write(job)

    async def join_record(self, invite_id: str) -> JoinRecord | None:
        # Every join reads this: joins arriving together share one hop and one snapshot.
        return await self._join_reads.get(invite_id)

    async def join_records(self, invite_ids: Collection[str]) -> Mapping[str, JoinRecord]:
        """One read snapshot for a reconciliation round: a fixed handful of queries (invites
        with their participants and sessions, the people by kind, children's guardians, the
        consents), whatever the number of live seats."""
        wanted = sorted(set(invite_ids))
        if not wanted:
            return {}
        return await self._db.read(lambda conn: _join_records(conn, wanted))

    async def joined_invites(self, session_id: str) -> Mapping[str, str]:
        """Per participant of the session, the invite they last joined with (bound to a
        device), revoked or not: one query, for a process taking the session over."""

        def read(conn: Connection) -> Mapping[str, str]:
            rows = conn.execute(
                select(t.invites.c.participant_id, t.invites.c.id)
                .where(
                    t.invites.c.session_id == session_id,
                    t.invites.c.device_hash.is_not(None),
                )
                .order_by(t.invites.c.created_at, t.invites.c.id)
            ).all()
            return {str(row.participant_id): str(row.id) for row in rows}  # the latest wins

        return await self._db.read(read)

    async def remove_participant(
        self, org_id: str, participant_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> None:
        await self._change(
            events,
            [
                update(t.participants)
                .where(
                    t.participants.c.org_id == org_id,
                    t.participants.c.id == participant_id,
                    t.participants.c.removed_at.is_(None),
                )
                .values(removed_at=to_us(at)),
                update(t.invites)
                .where(
                    t.invites.c.org_id == org_id,
                    t.invites.c.participant_id == participant_id,
                    t.invites.c.revoked_at.is_(None),
                )
                .values(revoked_at=to_us(at)),
            ],
        )

    async def let_back_in(
        self, org_id: str, participant_id: str, events: Sequence[AuditEvent]
    ) -> bool:
        """Clear a removal with its events in one transaction; False (nothing written) for a
        participant who is not removed. Their old invites stay revoked."""

        def job(tx: WriteTx) -> bool:
            result = tx.conn.execute(
                update(t.participants)
                .where(
                    t.participants.c.org_id == org_id,
                    t.participants.c.id == participant_id,
                    t.participants.c.removed_at.is_not(None),
                )
                .values(removed_at=None)
            )
            if not result.rowcount:
                return False
            for event in events:
                tx.audit(event)
            return True

        return await self.writer.write(job)

    async def record_departure(
        self, org_id: str, participant_id: str, events: Sequence[AuditEvent]
    ) -> None:
        await self._change(
            events,
            [
                update(t.participants)
                .where(t.participants.c.org_id == org_id, t.participants.c.id == participant_id)
                .values(departures=t.participants.c.departures + 1)
            ],
        )

    async def bind_device(
        self, invite_id: str, device_hash: str, at: datetime, events: Sequence[AuditEvent]
    ) -> str:
        """Bind the invite to this device unless it is bound already; return the bound hash."""

        def job(tx: WriteTx) -> str:
            tx.conn.execute(
                update(t.invites)
                .where(t.invites.c.id == invite_id, t.invites.c.device_hash.is_(None))
                .values(device_hash=device_hash, redeemed_at=to_us(at))
            )
            bound = tx.conn.scalar(
                select(t.invites.c.device_hash).where(t.invites.c.id == invite_id)
            )
            if bound == device_hash:
                for event in events:
                    tx.audit(event)
            return str(bound)

        return await self.writer.write(job)

    async def sessions_page(self, query: SessionQuery) -> Sequence[tuple[Session, str]]:
        """The organisation's sessions by start time then id, after the cursor, filtered."""
        s = t.sessions

        def read(conn: Connection) -> Sequence[tuple[Session, str]]:
            conditions: list[Any] = [s.c.org_id == query.org_id]
            now = query.now_us
            if query.status == "ended":
                conditions.append(or_(s.c.ended_at.is_not(None), s.c.ends_at <= now))
            elif query.status == "live":
                conditions += [s.c.ended_at.is_(None), s.c.starts_at <= now, s.c.ends_at > now]
            elif query.status == "upcoming":
                conditions += [s.c.ended_at.is_(None), s.c.starts_at > now]
            if query.starts_from_us is not None:
                conditions.append(s.c.starts_at >= query.starts_from_us)
            if query.starts_to_us is not None:
                conditions.append(s.c.starts_at < query.starts_to_us)
            if query.after is not None:
                starts, last_id = query.after
                conditions.append(
                    or_(s.c.starts_at > starts, and_(s.c.starts_at == starts, s.c.id > last_id))
                )
            rows = conn.execute(
                select(s).where(*conditions).order_by(s.c.starts_at, s.c.id).limit(query.limit)
            ).all()
            return [(_session(row), str(row.title)) for row in rows]

        return await self._db.read(read)
