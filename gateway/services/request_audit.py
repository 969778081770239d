"""The audit of requests themselves: refusals, failures, and reading the log back.

Refusals of authenticated requests are audited one by one, under their organisation.
Refusals of anonymous requests pass a `RefusalSampler` first, so that nobody can grow the
audit log at will: past a rate they are written as one `request.refused.aggregate` entry per
window, with counts per code and route. A request that failed unexpectedly is audited as
`request.failed` with its request id (no body, no address, no personal data).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.clock import Clock
from gateway.domain.audit import AuditEntry, AuditEvent
from gateway.domain.refusal_sampling import RefusalSampler
from gateway.services.ports import AuditQuery, Store

ANONYMOUS = "anonymous"


class RequestAudit:
    def __init__(self, store: Store, clock: Clock, sampler: RefusalSampler | None = None) -> None:
        self._store = store
        self._clock = clock
        self._sampler = sampler or RefusalSampler()

    async def entries(self, query: AuditQuery) -> Sequence[AuditEntry]:
        """One organisation's page of the audit log (`GET /v1/audit`)."""
        return await self._store.audit_entries(query)

    async def refused(
        self, org_id: str | None, source: str, code: str, method: str, route: str
    ) -> None:
        """Audit a refusal; `source` (the client's address) only keys the anonymous rate and
        is never written."""
        data = {"code": code, "method": method, "route": route}
        if org_id is not None:
            await self._store.record([AuditEvent("request.refused", org_id, org_id, data=data)])
            return
        now = self._clock.now().timestamp()
        events = self._aggregates(now)
        if self._sampler.individually(source, code, route, now):
            events.append(AuditEvent("request.refused", ANONYMOUS, data=data))
        if events:
            await self._store.record(events)

    async def failed(
        self, org_id: str | None, request_id: str, error: str, method: str, route: str
    ) -> None:
        """Audit a request that failed unexpectedly (answered 500)."""
        data = {"request_id": request_id, "error": error, "method": method, "route": route}
        actor = org_id or ANONYMOUS
        await self._store.record([AuditEvent("request.failed", actor, org_id, data=data)])

    async def flush(self, *, everything: bool = False) -> None:
        """Write the aggregates of closed windows (periodically; all of them at shutdown)."""
        events = self._aggregates(self._clock.now().timestamp(), everything=everything)
        if events:
            await self._store.record(events)

    def _aggregates(self, now: float, *, everything: bool = False) -> list[AuditEvent]:
        return [
            AuditEvent("request.refused.aggregate", ANONYMOUS, data=counts.as_data())
            for counts in self._sampler.closed(now, everything=everything)
        ]
