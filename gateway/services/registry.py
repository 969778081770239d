"""The people an organisation keeps records of: staff, children, guardians (R5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import TypeVar

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.hours import local_date
from gateway.domain.masking import validate_person_name
from gateway.domain.models import Child, Guardian, Person, PersonKind, Staff, StaffRole, Vetting
from gateway.domain.registry_rules import (
    check_date_of_birth,
    check_plain_text,
    check_staff_email,
    check_vetting,
)
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
        contact = check_plain_text(contact, "A guardian's contact", 3, 320)
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

    # updates (PATCH): a field left out is unchanged. The registry row holds the current value;
    # the audit log keeps every change (what changed, never the names themselves).
    async def update_staff(
        self,
        org: Organisation,
        actor: str,
        staff_id: str,
        name: str | None,
        email: str | None,
        roles: Sequence[StaffRole] | None,
        vetting: Vetting | None,
    ) -> Staff:
        current = await self.get(org, PersonKind.STAFF, staff_id)
        assert isinstance(current, Staff)
        policy = self._policies.for_path(org.policy_path)
        if roles is not None and not roles:
            raise Refusal(ErrorCode.BODY_INVALID, "A member of staff needs at least one role.")
        if vetting is not None:
            check_vetting(vetting, policy, self._today(org))
        updated = replace(
            current,
            name=validate_person_name(name, policy) if name is not None else current.name,
            email=check_staff_email(email, policy) if email is not None else current.email,
            roles=frozenset(roles) if roles is not None else current.roles,
            vetting=vetting if vetting is not None else current.vetting,
        )
        data: dict[str, object] = {"fields": _changed(current, updated)}
        if updated.roles != current.roles:
            data["roles"] = sorted(r.value for r in updated.roles)
        if updated.vetting != current.vetting:
            data["vetting"] = _vetting_summary(updated.vetting)
        return await self._update(org, actor, current, updated, "staff.updated", data)

    async def update_guardian(
        self, org: Organisation, actor: str, guardian_id: str, name: str | None, contact: str | None
    ) -> Guardian:
        current = await self.get(org, PersonKind.GUARDIAN, guardian_id)
        assert isinstance(current, Guardian)
        policy = self._policies.for_path(org.policy_path)
        updated = replace(
            current,
            name=validate_person_name(name, policy) if name is not None else current.name,
            contact=check_plain_text(contact, "A guardian's contact", 3, 320)
            if contact is not None
            else current.contact,
        )
        data: dict[str, object] = {"fields": _changed(current, updated)}
        return await self._update(org, actor, current, updated, "guardian.updated", data)

    async def update_child(
        self,
        org: Organisation,
        actor: str,
        child_id: str,
        name: str | None,
        date_of_birth: date | None,
    ) -> Child:
        current = await self.get(org, PersonKind.CHILD, child_id)
        assert isinstance(current, Child)
        policy = self._policies.for_path(org.policy_path)
        if date_of_birth is not None:
            check_date_of_birth(date_of_birth, self._today(org))
        updated = replace(
            current,
            name=validate_person_name(name, policy) if name is not None else current.name,
            date_of_birth=date_of_birth if date_of_birth is not None else current.date_of_birth,
        )
        data: dict[str, object] = {"fields": _changed(current, updated)}
        return await self._update(org, actor, current, updated, "child.updated", data)

    async def _update(
        self,
        org: Organisation,
        actor: str,
        current: P,
        updated: P,
        kind: str,
        data: dict[str, object],
    ) -> P:
        if updated == current:
            return current  # nothing changed: nothing written, nothing audited
        event = AuditEvent(kind, actor, org.id, person_id=current.id, data=data)
        await self._store.update_person(updated, [event])
        return updated


P = TypeVar("P", Staff, Child, Guardian)


def _changed(current: Person, updated: Person) -> list[str]:
    """The names of the fields that changed (the audit records which, not their values)."""
    return sorted(
        name
        for name in ("name", "email", "roles", "vetting", "contact", "date_of_birth")
        if getattr(current, name, None) != getattr(updated, name, None)
    )


def _vetting_summary(vetting: Vetting | None) -> dict[str, str] | None:
    if vetting is None:
        return None
    return {"kind": vetting.kind, "expires_on": vetting.expires_on.isoformat()}
