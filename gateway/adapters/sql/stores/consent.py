"""Consent records: append-only history per person."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select

from gateway.adapters.sql import schema as t
from gateway.adapters.sql.consent_link_schema import consent_signatures
from gateway.adapters.sql.rows import (
    _consents,
)
from gateway.adapters.sql.stores.base import StoreBase
from gateway.adapters.sql.writer import WriteTx
from gateway.clock import to_us
from gateway.domain.audit import AuditEvent
from gateway.domain.esignature import ESignature
from gateway.domain.models import (
    ConsentRecord,
)


class ConsentStore(StoreBase):
    async def add_consent(
        self,
        record: ConsentRecord,
        events: Sequence[AuditEvent],
        signature: ESignature | None = None,
    ) -> None:
        """Append a record (and the electronic signature behind it, if any), in one commit."""
        evidence = record.evidence

        def job(tx: WriteTx) -> None:
            # History is ordered by recorded_at: keep it strictly increasing per person, so a
            # withdrawal recorded in the same microsecond as a consent still comes after it.
            latest = tx.conn.scalar(
                select(func.max(t.consent_records.c.recorded_at)).where(
                    t.consent_records.c.org_id == record.org_id,
                    t.consent_records.c.subject_id == record.subject_id,
                )
            )
            recorded_at = max(to_us(record.recorded_at), (latest or 0) + 1)
            tx.conn.execute(
                insert(t.consent_records).values(
                    id=record.id,
                    org_id=record.org_id,
                    subject_kind=record.subject_kind.value,
                    subject_id=record.subject_id,
                    purpose=record.purpose,
                    action=record.action.value,
                    given_by_kind=record.given_by_kind.value,
                    given_by_id=record.given_by_id,
                    evidence_method=evidence.method.value if evidence else None,
                    evidence_reference=evidence.reference if evidence else None,
                    evidence_date=evidence.dated if evidence else None,
                    recorded_at=recorded_at,
                )
            )
            if signature is not None:
                tx.conn.execute(insert(consent_signatures).values(**signature_row(signature)))
            for event in events:
                tx.audit(event)

        await self.writer.write(job)

    async def consents(self, org_id: str, subject_id: str) -> Sequence[ConsentRecord]:
        return await self._db.read(lambda conn: _consents(conn, org_id, subject_id))


def signature_row(signature: ESignature) -> dict[str, object]:
    return {
        "id": signature.id,
        "org_id": signature.org_id,
        "consent_record_id": signature.consent_record_id,
        "signer_kind": signature.signer_kind.value,
        "signer_id": signature.signer_id,
        "typed_name": signature.typed_name,
        "shown_text": signature.shown_text,
        "shown_sha256": signature.shown_sha256,
        "policy_version": signature.policy_version,
        "policy_digest": signature.policy_digest,
        "signed_at": to_us(signature.signed_at),
        "link_id": signature.link_id,
    }
