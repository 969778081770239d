"""Recording and withdrawing written consent (R6, R7, R9); history is append-only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.consent import (
    ConsentState,
    check_consent_giver,
    check_evidence,
    check_purpose,
    current_consents,
)
from gateway.domain.esignature import ESignature
from gateway.domain.hours import local_date
from gateway.domain.models import ConsentAction, ConsentRecord, Evidence, Person, PersonKind
from gateway.services.organisations import new_id
from gateway.services.policies import PolicyBook
from gateway.services.ports import DurableFactsChanged, Organisation, Store
from gateway.services.registry import RegistryService

# (org id, person id, recording purpose, who withdrew as "kind:id")
RecordingConsentWithdrawn = Callable[[str, str, str, str], Awaitable[object]]
RECORDING_PREFIX = "recording:"


class ConsentService:
    def __init__(
        self,
        store: Store,
        registry: RegistryService,
        policies: PolicyBook,
        clock: Clock,
        *,
        changed: DurableFactsChanged | None = None,
        recording_consent_withdrawn: RecordingConsentWithdrawn | None = None,
    ) -> None:
        # Destroys the person's recordings of that purpose unless held (services/retention.py).
        self._recording_consent_withdrawn = recording_consent_withdrawn
        self._changed = changed  # nudges live sessions: a withdrawal takes effect at once
        self._store = store
        self._registry = registry
        self._policies = policies
        self._clock = clock

    async def record(
        self,
        org: Organisation,
        actor: str,
        subject_kind: PersonKind,
        subject_id: str,
        purpose: str,
        action: ConsentAction,
        given_by_kind: PersonKind,
        given_by_id: str,
        evidence: Evidence | None,
        *,
        record_id: str | None = None,
        signature: ESignature | None = None,
    ) -> ConsentRecord:
        """Append a give or a withdrawal; `signature` (with `record_id`, the id it names) is the
        electronic signature behind an online give, stored in the same commit."""
        policy = self._policies.for_path(org.policy_path)
        now = self._clock.now()
        subject = await self._registry.get(org, subject_kind, subject_id)
        check_consent_giver(subject, given_by_kind, given_by_id)
        if action is ConsentAction.GIVE:
            check_purpose(purpose, policy)
            check_evidence(evidence, policy, local_date(now, policy))
        # A withdrawal is accepted for any purpose and without evidence: never block it (R9).
        record = ConsentRecord(
            id=record_id or new_id(),
            org_id=org.id,
            subject_kind=subject_kind,
            subject_id=subject_id,
            purpose=purpose[:64],
            action=action,
            given_by_kind=given_by_kind,
            given_by_id=given_by_id,
            evidence=evidence,
            recorded_at=now,
        )
        await self._store.add_consent(
            record,
            [
                AuditEvent(
                    f"consent.{'given' if action is ConsentAction.GIVE else 'withdrawn'}",
                    actor,
                    org.id,
                    person_id=subject_id,
                    data={
                        "record": record.id,
                        "purpose": record.purpose,
                        "given_by": {"kind": given_by_kind.value, "id": given_by_id},
                        "evidence": evidence.method.value if evidence else None,
                        **(
                            {"signature": signature.id, "shown_sha256": signature.shown_sha256}
                            if signature is not None
                            else {}
                        ),
                    },
                )
            ],
            signature=signature,
        )
        if action is ConsentAction.WITHDRAW and self._changed is not None:
            await self._changed()
        if (
            action is ConsentAction.WITHDRAW
            and record.purpose.startswith(RECORDING_PREFIX)
            and self._recording_consent_withdrawn is not None
        ):
            await self._recording_consent_withdrawn(
                org.id,
                subject_id,
                record.purpose.removeprefix(RECORDING_PREFIX),
                f"{given_by_kind.value}:{given_by_id}",
            )
        return record

    async def state(
        self, org: Organisation, subject_kind: PersonKind, subject_id: str
    ) -> tuple[Person, Mapping[str, ConsentState], Sequence[ConsentRecord]]:
        policy = self._policies.for_path(org.policy_path)
        person = await self._registry.get(org, subject_kind, subject_id)
        records = await self._store.consents(org.id, subject_id)
        today = local_date(self._clock.now(), policy)
        return person, current_consents(person, records, policy, today), records
