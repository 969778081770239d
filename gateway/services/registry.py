"""The people an organisation keeps records of: staff, children, guardians (R5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.hours import local_date
from gateway.domain.masking import validate_person_name
from gateway.domain.models import Child, Guardian, Person, PersonKind, Staff, StaffRole, Vetting
from gateway.domain.registry_rules import check_date_of_birth, check_staff_email, check_vetting
from gateway.services.organisations import new_id
from gateway.services.policies import PolicyBook
from gateway.services.ports import Organisation, Store


class RegistryService:
    def __init__(self, store: Store, policies: PolicyBook, clock: Clock) -> None:
        self._store = store
        self._policies = policies
        self._clock = clock

    def _today(self, org: Organisation) -> date:
        return local_date(self._clock.now(), self._policies.for_path(org.policy_path))

    async def add_staff(
        self,
        org: Organisation,
        actor: str,
        name: str,
        email: str,
        roles: Sequence[StaffRole],
        vetting: Vetting | None,
    ) -> Staff:
        policy = self._policies.for_path(org.policy_path)
        if not roles:
            raise Refusal(ErrorCode.BODY_INVALID, "A member of staff needs at least one role.")
        if vetting is not None:
            check_vetting(vetting, policy, self._today(org))
        staff = Staff(
            id=new_id(),
            org_id=org.id,
            name=validate_person_name(name, policy),
            email=check_staff_email(email, policy),
            roles=frozenset(roles),
            vetting=vetting,
        )
        await self._store.add_person(
            staff,
            [
                AuditEvent(
                    "staff.registered",
                    actor,
                    org.id,
                    person_id=staff.id,
                    data={
                        "roles": sorted(r.value for r in staff.roles),
                        "vetting": _vetting_summary(vetting),
                    },
                )
            ],
        )
        return staff

    async def add_guardian(
        self, org: Organisation, actor: str, name: str, contact: str
    ) -> Guardian:
        contact = contact.strip()
        if not 3 <= len(contact) <= 320 or not contact.isprintable():
            raise Refusal(ErrorCode.BODY_INVALID, "A guardian's contact is 3 to 320 characters.")
        policy = self._policies.for_path(org.policy_path)
        guardian = Guardian(new_id(), org.id, validate_person_name(name, policy), contact)
        event = AuditEvent("guardian.registered", actor, org.id, person_id=guardian.id)
        await self._store.add_person(guardian, [event])
        return guardian

    async def add_child(
        self,
        org: Organisation,
        actor: str,
        name: str,
        date_of_birth: date,
        guardian_ids: Sequence[str],
    ) -> Child:
        check_date_of_birth(date_of_birth, self._today(org))
        if not guardian_ids:
            raise Refusal(ErrorCode.BODY_INVALID, "A child is registered with their guardians.")
        for guardian_id in guardian_ids:
            if await self._store.person(org.id, PersonKind.GUARDIAN, guardian_id) is None:
                raise Refusal(ErrorCode.NOT_FOUND, "No such guardian.")
        child = Child(
            new_id(),
            org.id,
            validate_person_name(name, self._policies.for_path(org.policy_path)),
            date_of_birth,
            frozenset(guardian_ids),
        )
        event = AuditEvent(
            "child.registered",
            actor,
            org.id,
            person_id=child.id,
            data={"guardians": sorted(guardian_ids)},
        )
        await self._store.add_person(child, [event])
        return child

    async def get(self, org: Organisation, kind: PersonKind, person_id: str) -> Person:
        person = await self._store.person(org.id, kind, person_id)
        if person is None:
            raise Refusal(ErrorCode.NOT_FOUND, f"No such {kind.value}.")
        return person

    async def list(self, org: Organisation, kind: PersonKind) -> Sequence[Person]:
        return await self._store.people(org.id, kind)


def _vetting_summary(vetting: Vetting | None) -> dict[str, str] | None:
    if vetting is None:
        return None
    return {"kind": vetting.kind, "expires_on": vetting.expires_on.isoformat()}
