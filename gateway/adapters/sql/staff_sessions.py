"""Staff sign-in state on SQL: passwords, one-time links and sessions, each change audited with
it (structurally a `services.staff_auth.StaffAuthStore`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql import schema as t
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.rows import _staff
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.clock import from_us, to_us
from gateway.domain.audit import AuditEvent
from gateway.domain.models import Staff
from gateway.domain.staff_session import SignInLink, SignInMethod, StaffSession


class SqlStaffSessions:
    def __init__(self, writer: AuditedWriter, database: Database) -> None:
        self._writer = writer
        self._db = database

    async def staff_accounts(self, email: str) -> Sequence[Staff]:
        def read(conn: Connection) -> Sequence[Staff]:
            rows = conn.execute(
                select(t.staff).where(t.staff.c.email == email).order_by(t.staff.c.created_at)
            ).all()
            return [_staff(row._mapping) for row in rows]

        return await self._db.read(read)

    async def password_hash(self, staff_id: str) -> str | None:
        def read(conn: Connection) -> str | None:
            return conn.scalar(
                select(t.staff_passwords.c.password_hash).where(
                    t.staff_passwords.c.staff_id == staff_id
                )
            )

        return await self._db.read(read)

    async def set_password(
        self, staff_id: str, password_hash: str, at: datetime, events: Sequence[AuditEvent]
    ) -> None:
        def job(tx: WriteTx) -> None:
            table = t.staff_passwords
            changed = tx.conn.execute(
                update(table)
                .where(table.c.staff_id == staff_id)
                .values(password_hash=password_hash, set_at=to_us(at))
            ).rowcount
            if not changed:
                tx.conn.execute(
                    insert(table).values(
                        staff_id=staff_id, password_hash=password_hash, set_at=to_us(at)
                    )
                )
            _audit(tx, events)

        await self._writer.write(job)

    async def add_link(self, link: SignInLink, events: Sequence[AuditEvent]) -> None:
        def job(tx: WriteTx) -> None:
            tx.conn.execute(
                insert(t.staff_signin_links).values(
                    token_hash=link.token_hash,
                    staff_id=link.staff_id,
                    org_id=link.org_id,
                    browser_hash=link.browser_hash,
                    created_at=to_us(link.created_at),
                    expires_at=to_us(link.expires_at),
                )
            )
            _audit(tx, events)

        await self._writer.write(job)

    async def link(self, token_hash: str) -> SignInLink | None:
        def read(conn: Connection) -> SignInLink | None:
            row = conn.execute(
                select(t.staff_signin_links).where(t.staff_signin_links.c.token_hash == token_hash)
            ).first()
            return _link(row._mapping) if row else None

        return await self._db.read(read)

    async def use_link(
        self, link: SignInLink, at: datetime, session: StaffSession, events: Sequence[AuditEvent]
    ) -> bool:
        def job(tx: WriteTx) -> bool:
            table = t.staff_signin_links
            used = tx.conn.execute(
                update(table)
                .where(table.c.token_hash == link.token_hash, table.c.used_at.is_(None))
                .values(used_at=to_us(at))
            ).rowcount
            if used != 1:
                return False
            _insert_session(tx.conn, session)
            _audit(tx, events)
            return True

        return await self._writer.write(job)

    async def open_session(self, session: StaffSession, events: Sequence[AuditEvent]) -> None:
        def job(tx: WriteTx) -> None:
            _insert_session(tx.conn, session)
            _audit(tx, events)

        await self._writer.write(job)

    async def session(self, id_hash: str) -> StaffSession | None:
        def read(conn: Connection) -> StaffSession | None:
            row = conn.execute(
                select(t.staff_sessions).where(t.staff_sessions.c.id_hash == id_hash)
            ).first()
            return _session(row._mapping) if row else None

        return await self._db.read(read)

    async def touch(self, id_hash: str, at: datetime) -> None:
        # A plain write (no audit event): moving the idle deadline is not a decision.
        def write(conn: Connection) -> None:
            conn.execute(
                update(t.staff_sessions)
                .where(t.staff_sessions.c.id_hash == id_hash)
                .values(last_seen_at=to_us(at))
            )

        await self._db.write(write)

    async def revoke_session(
        self, id_hash: str, at: datetime, events: Sequence[AuditEvent]
    ) -> None:
        def job(tx: WriteTx) -> None:
            table = t.staff_sessions
            tx.conn.execute(
                update(table)
                .where(table.c.id_hash == id_hash, table.c.revoked_at.is_(None))
                .values(revoked_at=to_us(at))
            )
            _audit(tx, events)

        await self._writer.write(job)

    async def revoke_sessions(
        self, staff_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> int:
        def job(tx: WriteTx) -> int:
            table = t.staff_sessions
            count = tx.conn.execute(
                update(table)
                .where(table.c.staff_id == staff_id, table.c.revoked_at.is_(None))
                .values(revoked_at=to_us(at))
            ).rowcount
            for event in events:
                tx.audit(
                    AuditEvent(
                        event.kind,
                        event.actor,
                        event.org_id,
                        event.session_id,
                        event.person_id,
                        {**(event.data or {}), "sessions": count},
                    )
                )
            return int(count)

        return await self._writer.write(job)

    async def record(self, events: Sequence[AuditEvent]) -> None:
        await self._writer.record(*events)


def _audit(tx: WriteTx, events: Sequence[AuditEvent]) -> None:
    for event in events:
        tx.audit(event)


def _insert_session(conn: Connection, session: StaffSession) -> None:
    conn.execute(
        insert(t.staff_sessions).values(
            id_hash=session.id_hash,
            staff_id=session.staff_id,
            org_id=session.org_id,
            csrf_token=session.csrf_token,
            method=session.method.value,
            created_at=to_us(session.created_at),
            last_seen_at=to_us(session.last_seen_at),
        )
    )


def _link(m: Mapping[Any, Any]) -> SignInLink:
    return SignInLink(
        token_hash=m["token_hash"],
        staff_id=m["staff_id"],
        org_id=m["org_id"],
        browser_hash=m["browser_hash"],
        created_at=from_us(m["created_at"]),
        expires_at=from_us(m["expires_at"]),
        used_at=from_us(m["used_at"]) if m["used_at"] is not None else None,
    )


def _session(m: Mapping[Any, Any]) -> StaffSession:
    return StaffSession(
        id_hash=m["id_hash"],
        staff_id=m["staff_id"],
        org_id=m["org_id"],
        csrf_token=m["csrf_token"],
        method=SignInMethod(m["method"]),
        created_at=from_us(m["created_at"]),
        last_seen_at=from_us(m["last_seen_at"]),
        revoked_at=from_us(m["revoked_at"]) if m["revoked_at"] is not None else None,
    )
