"""Organisations and their API keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql import schema as t
from gateway.adapters.sql.rows import (
    _org,
)
from gateway.adapters.sql.stores.base import StoreBase
from gateway.adapters.sql.writer import WriteTx
from gateway.clock import to_us
from gateway.domain.audit import AuditEvent
from gateway.services.ports import Organisation


class OrganisationStore(StoreBase):
    async def add_organisation(
        self, org: Organisation, key_id: str, key_hash: str, events: Sequence[AuditEvent]
    ) -> None:
        now = to_us(self._clock.now())
        await self._change(
            events,
            [
                insert(t.organisations).values(
                    id=org.id, name=org.name, policy_path=org.policy_path, created_at=now
                ),
                insert(t.api_keys).values(
                    id=key_id, org_id=org.id, key_hash=key_hash, created_at=now
                ),
            ],
        )

    async def organisation_for_key(self, key_hash: str) -> Organisation | None:
        def read(conn: Connection) -> Organisation | None:
            row = conn.execute(
                select(t.organisations)
                .join(t.api_keys, t.api_keys.c.org_id == t.organisations.c.id)
                .where(t.api_keys.c.key_hash == key_hash, t.api_keys.c.revoked_at.is_(None))
            ).first()
            return _org(row) if row else None

        return await self._db.read(read)

    async def organisation(self, org_id: str) -> Organisation | None:
        def read(conn: Connection) -> Organisation | None:
            row = conn.execute(
                select(t.organisations).where(t.organisations.c.id == org_id)
            ).first()
            return _org(row) if row else None

        return await self._db.read(read)

    async def organisations(self) -> Sequence[Organisation]:
        def read(conn: Connection) -> Sequence[Organisation]:
            rows = conn.execute(
                select(t.organisations).order_by(t.organisations.c.created_at)
            ).all()
            return [_org(row) for row in rows]

        return await self._db.read(read)

    async def add_api_key(
        self, org_id: str, key_id: str, key_hash: str, events: Sequence[AuditEvent]
    ) -> None:
        now = to_us(self._clock.now())
        await self._change(
            events,
            [
                insert(t.api_keys).values(
                    id=key_id, org_id=org_id, key_hash=key_hash, created_at=now
                )
            ],
        )

    async def revoke_api_keys(
        self, org_id: str, except_key_id: str | None, events: Sequence[AuditEvent]
    ) -> int:
        def job(tx: WriteTx) -> int:
            condition = and_(t.api_keys.c.org_id == org_id, t.api_keys.c.revoked_at.is_(None))
            if except_key_id is not None:
                condition = and_(condition, t.api_keys.c.id != except_key_id)
            result = tx.conn.execute(update(t.api_keys).where(condition).values(revoked_at=tx.at))
            for event in events:
                tx.audit(event)
            return int(result.rowcount)

        return await self.writer.write(job)
