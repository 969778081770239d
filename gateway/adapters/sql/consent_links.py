"""Guardians' consent links and the electronic signatures behind online consent, on SQL
(structurally a `services.consent_links.ConsentLinkStore`). Each change commits with its audit
events (and the link's e-mail, queued in the outbox) or not at all."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql.consent_link_schema import consent_links, consent_signatures
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.clock import from_us, to_us
from gateway.domain.audit import AuditEvent
from gateway.domain.consent_links import REVOKED, ConsentLink
from gateway.domain.esignature import ESignature
from gateway.domain.models import PersonKind
from gateway.domain.outbox import OutboxMessage


class SqlConsentLinks:
    def __init__(self, writer: AuditedWriter, database: Database) -> None:
        self._writer = writer
        self._db = database

    async def add_link(
        self,
        link: ConsentLink,
        message: OutboxMessage,
        events: Sequence[AuditEvent],
        revoked: Callable[[Sequence[str]], Sequence[AuditEvent]],
    ) -> tuple[str, ...]:
        """Add the link and queue its e-mail; revoke the guardian's older links that are unused
        and unexpired, in the same transaction, audited with `revoked(their ids)`."""

        def job(tx: WriteTx) -> tuple[str, ...]:
            older = consent_links.c
            unused = (
                older.org_id == link.org_id,
                older.guardian_id == link.guardian_id,
                older.used_at.is_(None),
                older.expires_at > to_us(link.created_at),
            )
            ids = tuple(sorted(tx.conn.scalars(select(older.id).where(*unused)).all()))
            if ids:
                tx.conn.execute(
                    update(consent_links)
                    .where(*unused, older.id.in_(ids))
                    .values(used_at=to_us(link.created_at), device_hash=REVOKED)
                )
            tx.conn.execute(
                insert(consent_links).values(
                    id=link.id,
                    org_id=link.org_id,
                    guardian_id=link.guardian_id,
                    token_hash=link.token_hash,
                    created_by=link.created_by,
                    created_at=to_us(link.created_at),
                    expires_at=to_us(link.expires_at),
                )
            )
            for event in (*events, *(revoked(ids) if ids else ())):
                tx.audit(event)
            return ids

        return await self._writer.write(job, messages=[message])

    async def link(self, link_id: str) -> ConsentLink | None:
        return await self._db.read(lambda conn: _one(conn, consent_links.c.id == link_id))

    async def link_for_device(self, device_hash: str) -> ConsentLink | None:
        return await self._db.read(
            lambda conn: _one(conn, consent_links.c.device_hash == device_hash)
        )

    async def use_link(
        self, link: ConsentLink, device_hash: str, at: datetime, events: Sequence[AuditEvent]
    ) -> bool:
        """Bind the link to this browser, only if nobody used it first (False: nothing
        written)."""

        def job(tx: WriteTx) -> bool:
            used = tx.conn.execute(
                update(consent_links)
                .where(consent_links.c.id == link.id, consent_links.c.used_at.is_(None))
                .values(used_at=to_us(at), device_hash=device_hash)
            ).rowcount
            if used != 1:
                return False
            for event in events:
                tx.audit(event)
            return True

        return await self._writer.write(job)

    async def signatures(
        self, org_id: str, record_ids: Collection[str]
    ) -> Mapping[str, ESignature]:
        """The signatures behind these consent records, by record id."""
        if not record_ids:
            return {}

        def read(conn: Connection) -> Mapping[str, ESignature]:
            rows = conn.execute(
                select(consent_signatures).where(
                    consent_signatures.c.org_id == org_id,
                    consent_signatures.c.consent_record_id.in_(list(record_ids)),
                )
            ).all()
            return {row.consent_record_id: _signature(row._mapping) for row in rows}

        return await self._db.read(read)

    async def record(self, events: Sequence[AuditEvent]) -> None:
        await self._writer.record(*events)


def _one(conn: Connection, where: Any) -> ConsentLink | None:
    row = conn.execute(select(consent_links).where(where)).first()
    return _link(row._mapping) if row else None


def _link(m: Mapping[Any, Any]) -> ConsentLink:
    return ConsentLink(
        id=m["id"],
        org_id=m["org_id"],
        guardian_id=m["guardian_id"],
        token_hash=m["token_hash"],
        created_by=m["created_by"],
        created_at=from_us(m["created_at"]),
        expires_at=from_us(m["expires_at"]),
        used_at=from_us(m["used_at"]) if m["used_at"] is not None else None,
        device_hash=m["device_hash"],
    )


def _signature(m: Mapping[Any, Any]) -> ESignature:
    return ESignature(
        id=m["id"],
        org_id=m["org_id"],
        consent_record_id=m["consent_record_id"],
        signer_kind=PersonKind(m["signer_kind"]),
        signer_id=m["signer_id"],
        typed_name=m["typed_name"],
        shown_text=m["shown_text"],
        shown_sha256=m["shown_sha256"],
        policy_version=m["policy_version"],
        policy_digest=m["policy_digest"],
        signed_at=from_us(m["signed_at"]),
        link_id=m["link_id"],
    )
