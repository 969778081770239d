"""Reads the audit log's entries that belong to no organisation (anonymous refusals), which no
organisation's key can list: straight from the gateway's database, decoded as the verifier
decodes them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.adapters.sql.schema import audit_log
from gateway.domain.audit import AuditEntry, decode_entry
from tests.plugins.gateway_server import Gateway


async def entries_without_org(gateway: Gateway, kind: str | None = None) -> list[AuditEntry]:
    engine = create_async_engine(gateway.settings.database_url)
    try:
        query = select(audit_log.c.entry).where(audit_log.c.org_id.is_(None))
        if kind is not None:
            query = query.where(audit_log.c.kind == kind)
        async with engine.connect() as conn:
            rows = (await conn.execute(query.order_by(audit_log.c.seq))).scalars().all()
    finally:
        await engine.dispose()
    return [decode_entry(bytes(raw)) for raw in rows]
