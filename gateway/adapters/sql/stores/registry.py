"""The registry: staff, children, guardians, and which guardians a child has."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql import schema as t
from gateway.adapters.sql.rows import (
    _child,
    _guardian,
    _guardian_links,
    _load_person,
    _staff,
)
from gateway.adapters.sql.stores.base import StoreBase
from gateway.adapters.sql.writer import WriteTx
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import (
    Child,
    Guardian,
    Person,
    PersonKind,
    Staff,
)


class RegistryStore(StoreBase):
    async def add_person(self, person: Person, events: Sequence[AuditEvent]) -> None:
        def job(tx: WriteTx) -> None:
            if isinstance(person, Staff):
                taken = tx.conn.scalar(
                    select(func.count())
                    .select_from(t.staff)
                    .where(t.staff.c.org_id == person.org_id, t.staff.c.email == person.email)
                )
                if taken:
                    raise Refusal(ErrorCode.CONFLICT, "A member of staff with that email exists.")
                vetting = person.vetting
                tx.conn.execute(
                    insert(t.staff).values(
                        id=person.id,
                        org_id=person.org_id,
                        name=person.name,
                        email=person.email,
                        roles=",".join(sorted(role.value for role in person.roles)),
                        vetting_kind=vetting.kind if vetting else None,
                        vetting_checked_on=vetting.checked_on if vetting else None,
                        vetting_expires_on=vetting.expires_on if vetting else None,
                        created_at=tx.at,
                    )
                )
            elif isinstance(person, Child):
                tx.conn.execute(
                    insert(t.children).values(
                        id=person.id,
                        org_id=person.org_id,
                        name=person.name,
                        date_of_birth=person.date_of_birth,
                        created_at=tx.at,
                    )
                )
                for guardian_id in sorted(person.guardian_ids):
                    tx.conn.execute(
                        insert(t.child_guardians).values(
                            child_id=person.id, guardian_id=guardian_id
                        )
                    )
            else:
                tx.conn.execute(
                    insert(t.guardians).values(
                        id=person.id,
                        org_id=person.org_id,
                        name=person.name,
                        contact=person.contact,
                        created_at=tx.at,
                    )
                )
            for event in events:
                tx.audit(event)

        await self.writer.write(job)

    async def person(self, org_id: str, kind: PersonKind, person_id: str) -> Person | None:
        return await self._db.read(lambda conn: _load_person(conn, org_id, kind, person_id))

    async def staff_by_email(self, org_id: str, email: str) -> Staff | None:
        def read(conn: Connection) -> Staff | None:
            row = conn.execute(
                select(t.staff).where(t.staff.c.org_id == org_id, t.staff.c.email == email)
            ).first()
            return _staff(row._mapping) if row else None

        return await self._db.read(read)

    async def people(self, org_id: str, kind: PersonKind) -> Sequence[Person]:
        def read(conn: Connection) -> Sequence[Person]:
            if kind is PersonKind.STAFF:
                rows = conn.execute(
                    select(t.staff)
                    .where(t.staff.c.org_id == org_id)
                    .order_by(t.staff.c.created_at, t.staff.c.id)
                ).all()
                return [_staff(row._mapping) for row in rows]
            if kind is PersonKind.GUARDIAN:
                rows = conn.execute(
                    select(t.guardians)
                    .where(t.guardians.c.org_id == org_id)
                    .order_by(t.guardians.c.created_at, t.guardians.c.id)
                ).all()
                return [_guardian(row._mapping) for row in rows]
            rows = conn.execute(
                select(t.children)
                .where(t.children.c.org_id == org_id)
                .order_by(t.children.c.created_at, t.children.c.id)
            ).all()
            links = _guardian_links(conn, [row.id for row in rows])
            return [_child(row._mapping, links.get(row.id, frozenset())) for row in rows]

        return await self._db.read(read)

    async def children_of_guardian(self, org_id: str, guardian_id: str) -> Sequence[Child]:
        """A guardian's own children (each with all their guardians), without reading the
        organisation's other children."""

        def read(conn: Connection) -> Sequence[Child]:
            rows = conn.execute(
                select(t.children)
                .join(t.child_guardians, t.child_guardians.c.child_id == t.children.c.id)
                .where(
                    t.children.c.org_id == org_id,
                    t.child_guardians.c.guardian_id == guardian_id,
                )
                .order_by(t.children.c.created_at, t.children.c.id)
            ).all()
            links = _guardian_links(conn, [row.id for row in rows])
            return [_child(row._mapping, links.get(row.id, frozenset())) for row in rows]

        return await self._db.read(read)

    async def link_guardian(
        self, child: Child, guardian: Guardian, events: Sequence[AuditEvent]
    ) -> None:
        await self._change(
            events,
            [insert(t.child_guardians).values(child_id=child.id, guardian_id=guardian.id)],
        )

    async def update_person(self, person: Person, events: Sequence[AuditEvent]) -> None:
        """Write a registered person's current details; the events keep the history."""

        def job(tx: WriteTx) -> None:
            if isinstance(person, Staff):
                taken = tx.conn.scalar(
                    select(func.count())
                    .select_from(t.staff)
                    .where(
                        t.staff.c.org_id == person.org_id,
                        t.staff.c.email == person.email,
                        t.staff.c.id != person.id,
                    )
                )
                if taken:
                    raise Refusal(ErrorCode.CONFLICT, "A member of staff with that email exists.")
                vetting = person.vetting
                statement = (
                    update(t.staff)
                    .where(t.staff.c.org_id == person.org_id, t.staff.c.id == person.id)
                    .values(
                        name=person.name,
                        email=person.email,
                        roles=",".join(sorted(role.value for role in person.roles)),
                        vetting_kind=vetting.kind if vetting else None,
                        vetting_checked_on=vetting.checked_on if vetting else None,
                        vetting_expires_on=vetting.expires_on if vetting else None,
                    )
                )
            elif isinstance(person, Child):
                statement = (
                    update(t.children)
                    .where(t.children.c.org_id == person.org_id, t.children.c.id == person.id)
                    .values(name=person.name, date_of_birth=person.date_of_birth)
                )
            else:
                statement = (
                    update(t.guardians)
                    .where(t.guardians.c.org_id == person.org_id, t.guardians.c.id == person.id)
                    .values(name=person.name, contact=person.contact)
                )
            if tx.conn.execute(statement).rowcount != 1:
                raise Refusal(ErrorCode.NOT_FOUND, "No such person.")
            for event in events:
                tx.audit(event)

        await self.writer.write(job)
