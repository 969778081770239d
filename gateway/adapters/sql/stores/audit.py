"""The audit log: appending events (with their outbox messages), reading, verifying."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.adapters.sql.stores.base import StoreBase
from gateway.adapters.sql.writer import WriteTx
from gateway.domain.audit import AuditEntry, AuditEvent, ChainReport, WitnessedHead
from gateway.domain.outbox import OutboxMessage
from gateway.services.ports import AuditQuery


class AuditStore(StoreBase):
    async def record(
        self, events: Sequence[AuditEvent], messages: Sequence[OutboxMessage] = ()
    ) -> None:
        """Append audit events; with `messages`, queue those notifications in the same
        transaction (DESIGN §3: the outbox commits with the event that causes it)."""
        if not messages:
            await self.writer.record(*events)
            return

        def job(tx: WriteTx) -> None:
            for event in events:
                tx.audit(event)

        await self.writer.write(job, messages=messages)

    async def audit_entries(self, query: AuditQuery) -> Sequence[AuditEntry]:
        from gateway.adapters.sql.audit_reader import list_entries

        return await self._db.read(
            lambda conn: list_entries(
                conn,
                org_id=query.org_id,
                session_id=query.session_id,
                person_id=query.person_id,
                kind=query.kind,
                since_us=query.since_us,
                until_us=query.until_us,
                after=query.after,
                limit=query.limit,
            )
        )

    async def verify_audit(
        self,
        witnessed: Sequence[WitnessedHead] = (),
        progress: Callable[[int, int], None] | None = None,
    ) -> ChainReport:
        from gateway.adapters.sql.audit_reader import verify_chain

        return await verify_chain(self._db, self._audit_key, witnessed=witnessed, progress=progress)
