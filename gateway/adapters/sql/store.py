"""The `Store` port on SQL (SQLite or PostgreSQL): durable truth, every change audited."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from gateway.adapters.sql import schema as t
from gateway.adapters.sql.direct import DirectQuery
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.read_batch import ReadBatch
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.clock import Clock, from_us, to_us
from gateway.domain.audit import AuditEntry, AuditEvent, ChainReport, WitnessedHead
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import (
    Child,
    ConsentAction,
    ConsentRecord,
    Evidence,
    EvidenceMethod,
    Guardian,
    Invite,
    Participant,
    Person,
    PersonKind,
    Session,
    SessionKind,
    SessionRole,
    Staff,
    StaffRole,
    Vetting,
)
from gateway.domain.outbox import OutboxMessage
from gateway.services.ports import AuditQuery, JoinRecord, Organisation, SessionQuery


class SqlStore:
    def __init__(self, database: Database, audit_key: bytes, clock: Clock) -> None:
        self._db = database
        self._audit_key = audit_key
        self._clock = clock
        self.writer = AuditedWriter(database, audit_key, clock)
        self._join_reads: ReadBatch[str, JoinRecord | None] = ReadBatch(database, _join_record)

    async def start(self) -> None:
        await self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()
        await self._db.dispose()

    async def _change(self, events: Sequence[AuditEvent], statements: Sequence[Any]) -> None:
        def job(tx: WriteTx) -> None:
            for statement in statements:
                tx.conn.execute(statement)
            for event in events:
                tx.audit(event)

        await self.writer.write(job)

    # organisations ------------------------------------------------------------------------
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

    # registry -------------------------------------------------------------------------------
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

    async def link_guardian(
        self, child: Child, guardian: Guardian, events: Sequence[AuditEvent]
    ) -> None:
        await self._change(
            events,
            [insert(t.child_guardians).values(child_id=child.id, guardian_id=guardian.id)],
        )

    # consent -------------------------------------------------------------------------------
    async def add_consent(self, record: ConsentRecord, events: Sequence[AuditEvent]) -> None:
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
            for event in events:
                tx.audit(event)

        await self.writer.write(job)

    async def consents(self, org_id: str, subject_id: str) -> Sequence[ConsentRecord]:
        return await self._db.read(lambda conn: _consents(conn, org_id, subject_id))

    # sessions ------------------------------------------------------------------------------
    async def add_session(
        self, session: Session, title: str, password_hash: str | None, events: Sequence[AuditEvent]
    ) -> None:
        await self._change(
            events,
            [
                insert(t.sessions).values(
                    id=session.id,
                    org_id=session.org_id,
                    kind=session.kind.value,
                    title=title,
                    host_staff_id=session.host_staff_id,
                    starts_at=to_us(session.starts_at),
                    ends_at=to_us(session.ends_at),
                    recording_purpose=session.recording_purpose,
                    password_hash=password_hash,
                    out_of_hours_approved_by=session.out_of_hours_approved_by,
                    created_at=to_us(session.starts_at),
                )
            ],
        )

    async def session(self, org_id: str, session_id: str) -> Session | None:
        def read(conn: Connection) -> Session | None:
            row = conn.execute(
                select(t.sessions).where(
                    t.sessions.c.org_id == org_id, t.sessions.c.id == session_id
                )
            ).first()
            return _session(row) if row else None

        return await self._db.read(read)

    async def session_title(self, org_id: str, session_id: str) -> str | None:
        def read(conn: Connection) -> str | None:
            title = conn.scalar(
                select(t.sessions.c.title).where(
                    t.sessions.c.org_id == org_id, t.sessions.c.id == session_id
                )
            )
            return str(title) if title is not None else None

        return await self._db.read(read)

    async def end_session(
        self, org_id: str, session_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> None:
        await self._change(
            events,
            [
                update(t.sessions)
                .where(
                    t.sessions.c.org_id == org_id,
                    t.sessions.c.id == session_id,
                    t.sessions.c.ended_at.is_(None),
                )
                .values(ended_at=to_us(at))
            ],
        )

    async def add_participant(
        self, org_id: str, participant: Participant, events: Sequence[AuditEvent]
    ) -> None:
        def job(tx: WriteTx) -> None:
            taken = tx.conn.scalar(
                select(func.count())
                .select_from(t.participants)
                .where(
                    t.participants.c.session_id == participant.session_id,
                    t.participants.c.person_kind == participant.person_kind.value,
                    t.participants.c.person_id == participant.person_id,
                )
            )
            if taken:
                raise Refusal(
                    ErrorCode.CONFLICT, "That person is already on this session's roster."
                )
            tx.conn.execute(
                insert(t.participants).values(
                    id=participant.id,
                    org_id=org_id,
                    session_id=participant.session_id,
                    person_kind=participant.person_kind.value,
                    person_id=participant.person_id,
                    role=participant.role.value,
                    masked_identity=participant.masked_identity,
                    display_name=participant.display_name,
                    created_at=tx.at,
                )
            )
            for event in events:
                tx.audit(event)

        await self.writer.write(job)

    async def participants(self, org_id: str, session_id: str) -> Sequence[Participant]:
        def read(conn: Connection) -> Sequence[Participant]:
            rows = conn.execute(
                select(t.participants)
                .where(
                    t.participants.c.org_id == org_id,
                    t.participants.c.session_id == session_id,
                )
                .order_by(t.participants.c.created_at, t.participants.c.id)
            ).all()
            return [_participant(row) for row in rows]

        return await self._db.read(read)

    async def participant(self, org_id: str, participant_id: str) -> Participant | None:
        def read(conn: Connection) -> Participant | None:
            row = conn.execute(
                select(t.participants).where(
                    t.participants.c.org_id == org_id, t.participants.c.id == participant_id
                )
            ).first()
            return _participant(row) if row else None

        return await self._db.read(read)

    async def add_invite(self, invite: Invite, events: Sequence[AuditEvent]) -> None:
        await self._change(
            events,
            [
                insert(t.invites).values(
                    id=invite.id,
                    org_id=invite.org_id,
                    session_id=invite.session_id,
                    participant_id=invite.participant_id,
                    expires_at=to_us(invite.expires_at),
                    created_at=to_us(invite.created_at),
                )
            ],
        )

    async def invite(self, org_id: str, invite_id: str) -> Invite | None:
        def read(conn: Connection) -> Invite | None:
            row = conn.execute(
                select(t.invites).where(t.invites.c.org_id == org_id, t.invites.c.id == invite_id)
            ).first()
            return _invite(row._mapping) if row else None

        return await self._db.read(read)

    async def revoke_invite(
        self, org_id: str, invite_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> bool:
        return bool(await self._revoke_invites(org_id, t.invites.c.id == invite_id, at, events))

    async def revoke_participant_invites(
        self, org_id: str, participant_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> int:
        """Revoke every live invite of the participant; the events are written only when
        there was one to revoke (re-issuing a first invite revokes nothing)."""
        condition = t.invites.c.participant_id == participant_id
        return await self._revoke_invites(org_id, condition, at, events, only_if_any=True)

    async def _revoke_invites(
        self,
        org_id: str,
        which: Any,
        at: datetime,
        events: Sequence[AuditEvent],
        *,
        only_if_any: bool = False,
    ) -> int:
        def job(tx: WriteTx) -> int:
            result = tx.conn.execute(
                update(t.invites)
                .where(t.invites.c.org_id == org_id, which, t.invites.c.revoked_at.is_(None))
                .values(revoked_at=to_us(at))
            )
            if result.rowcount or not only_if_any:
                for event in events:
                    tx.audit(event)
            return int(result.rowcount)

        return await self.writer.write(job)

    async def join_record(self, invite_id: str) -> JoinRecord | None:
        # Every join reads this: joins arriving together share one hop and one snapshot.
        return await self._join_reads.get(invite_id)

    async def join_records(self, invite_ids: Collection[str]) -> Mapping[str, JoinRecord]:
        """One read snapshot for a reconciliation round: a fixed handful of queries (invites
        with their participants and sessions, the people by kind, children's guardians, the
        consents), whatever the number of live seats."""
        wanted = sorted(set(invite_ids))
        if not wanted:
            return {}
        return await self._db.read(lambda conn: _join_records(conn, wanted))

    async def remove_participant(
        self, org_id: str, participant_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> None:
        await self._change(
            events,
            [
                update(t.participants)
                .where(
                    t.participants.c.org_id == org_id,
                    t.participants.c.id == participant_id,
                    t.participants.c.removed_at.is_(None),
                )
                .values(removed_at=to_us(at)),
                update(t.invites)
                .where(
                    t.invites.c.org_id == org_id,
                    t.invites.c.participant_id == participant_id,
                    t.invites.c.revoked_at.is_(None),
                )
                .values(revoked_at=to_us(at)),
            ],
        )

    async def record_departure(
        self, org_id: str, participant_id: str, events: Sequence[AuditEvent]
    ) -> None:
        await self._change(
            events,
            [
                update(t.participants)
                .where(t.participants.c.org_id == org_id, t.participants.c.id == participant_id)
                .values(departures=t.participants.c.departures + 1)
            ],
        )

    async def bind_device(
        self, invite_id: str, device_hash: str, at: datetime, events: Sequence[AuditEvent]
    ) -> str:
        """Bind the invite to this device unless it is bound already; return the bound hash."""

        def job(tx: WriteTx) -> str:
            tx.conn.execute(
                update(t.invites)
                .where(t.invites.c.id == invite_id, t.invites.c.device_hash.is_(None))
                .values(device_hash=device_hash, redeemed_at=to_us(at))
            )
            bound = tx.conn.scalar(
                select(t.invites.c.device_hash).where(t.invites.c.id == invite_id)
            )
            if bound == device_hash:
                for event in events:
                    tx.audit(event)
            return str(bound)

        return await self.writer.write(job)

    # audit ---------------------------------------------------------------------------------
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
                after_seq=query.after_seq,
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

    # registry updates and session listing (the API's PATCH and GET /v1/sessions) -----------
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

    async def sessions_page(self, query: SessionQuery) -> Sequence[tuple[Session, str]]:
        """The organisation's sessions by start time then id, after the cursor, filtered."""
        s = t.sessions

        def read(conn: Connection) -> Sequence[tuple[Session, str]]:
            conditions: list[Any] = [s.c.org_id == query.org_id]
            now = query.now_us
            if query.status == "ended":
                conditions.append(or_(s.c.ended_at.is_not(None), s.c.ends_at <= now))
            elif query.status == "live":
                conditions += [s.c.ended_at.is_(None), s.c.starts_at <= now, s.c.ends_at > now]
            elif query.status == "upcoming":
                conditions += [s.c.ended_at.is_(None), s.c.starts_at > now]
            if query.starts_from_us is not None:
                conditions.append(s.c.starts_at >= query.starts_from_us)
            if query.starts_to_us is not None:
                conditions.append(s.c.starts_at < query.starts_to_us)
            if query.after is not None:
                starts, last_id = query.after
                conditions.append(
                    or_(s.c.starts_at > starts, and_(s.c.starts_at == starts, s.c.id > last_id))
                )
            rows = conn.execute(
                select(s).where(*conditions).order_by(s.c.starts_at, s.c.id).limit(query.limit)
            ).all()
            return [(_session(row), str(row.title)) for row in rows]

        return await self._db.read(read)


# the join's read ---------------------------------------------------------------------------
# Every join runs these, so they are compiled once and run on the driver (see direct.py).
_JOIN_QUERY = DirectQuery(
    select(
        t.invites,
        *[c.label(f"p_{c.name}") for c in t.participants.c],
        *[c.label(f"s_{c.name}") for c in t.sessions.c],
    )
    .join(t.participants, t.participants.c.id == t.invites.c.participant_id)
    .join(t.sessions, t.sessions.c.id == t.invites.c.session_id)
    .where(t.invites.c.id == bindparam("invite_id"))
)
_PERSON_QUERIES = {
    kind: DirectQuery(
        select(table).where(table.c.org_id == bindparam("org_id"), table.c.id == bindparam("id"))
    )
    for kind, table in (
        (PersonKind.STAFF, t.staff),
        (PersonKind.CHILD, t.children),
        (PersonKind.GUARDIAN, t.guardians),
    )
}
_GUARDIANS_OF = DirectQuery(
    select(t.child_guardians.c.guardian_id).where(
        t.child_guardians.c.child_id == bindparam("child_id")
    )
)
_CONSENTS_QUERY = DirectQuery(
    select(t.consent_records)
    .where(
        t.consent_records.c.org_id == bindparam("org_id"),
        t.consent_records.c.subject_id == bindparam("subject_id"),
    )
    .order_by(t.consent_records.c.recorded_at, t.consent_records.c.id)
)


def _join_record(conn: Connection, invite_id: str) -> JoinRecord | None:
    """Everything a join decision needs about one invite, in one read snapshot."""
    found = _JOIN_QUERY.rows(conn, invite_id=invite_id)
    if not found:
        return None
    m = found[0]
    participant = _participant_from(m, "p_")
    person = _load_person(conn, m["org_id"], participant.person_kind, participant.person_id)
    if person is None:
        return None
    return JoinRecord(
        invite=_invite(m),
        participant=participant,
        session=_session_from(m, "s_"),
        session_password_hash=m["s_password_hash"],
        person=person,
        consents=_consents(conn, m["org_id"], participant.person_id),
        session_title=m["s_title"],
        removed_at=from_us(m["p_removed_at"]) if m["p_removed_at"] is not None else None,
        departures=int(m["p_departures"] or 0),
    )


def _load_person(conn: Connection, org_id: str, kind: PersonKind, person_id: str) -> Person | None:
    found = _PERSON_QUERIES[kind].rows(conn, org_id=org_id, id=person_id)
    if not found:
        return None
    m = found[0]
    if kind is PersonKind.STAFF:
        return _staff(m)
    if kind is PersonKind.GUARDIAN:
        return _guardian(m)
    guardians = frozenset(r["guardian_id"] for r in _GUARDIANS_OF.rows(conn, child_id=person_id))
    return _child(m, guardians)


def _consents(conn: Connection, org_id: str, subject_id: str) -> list[ConsentRecord]:
    return [_consent(m) for m in _CONSENTS_QUERY.rows(conn, org_id=org_id, subject_id=subject_id)]


def _consent(m: Mapping[Any, Any]) -> ConsentRecord:
    return ConsentRecord(
        id=m["id"],
        org_id=m["org_id"],
        subject_kind=PersonKind(m["subject_kind"]),
        subject_id=m["subject_id"],
        purpose=m["purpose"],
        action=ConsentAction(m["action"]),
        given_by_kind=PersonKind(m["given_by_kind"]),
        given_by_id=m["given_by_id"],
        evidence=(
            Evidence(
                EvidenceMethod(m["evidence_method"]),
                m["evidence_reference"],
                _day(m["evidence_date"]),
            )
            if m["evidence_method"]
            else None
        ),
        recorded_at=from_us(m["recorded_at"]),
    )


_PERSON_TABLES = {
    PersonKind.STAFF: t.staff,
    PersonKind.CHILD: t.children,
    PersonKind.GUARDIAN: t.guardians,
}


def _join_records(conn: Connection, invite_ids: list[str]) -> dict[str, JoinRecord]:
    """`_join_record` for many invites at once (same snapshot, constant number of queries)."""
    rows = [
        dict(row._mapping)
        for row in conn.execute(
            select(
                t.invites,
                *[c.label(f"p_{c.name}") for c in t.participants.c],
                *[c.label(f"s_{c.name}") for c in t.sessions.c],
            )
            .join(t.participants, t.participants.c.id == t.invites.c.participant_id)
            .join(t.sessions, t.sessions.c.id == t.invites.c.session_id)
            .where(t.invites.c.id.in_(invite_ids))
        )
    ]
    wanted: dict[PersonKind, set[str]] = {}
    for m in rows:
        wanted.setdefault(PersonKind(m["p_person_kind"]), set()).add(m["p_person_id"])
    guardians = _guardian_links(conn, sorted(wanted.get(PersonKind.CHILD, ())))
    people: dict[tuple[PersonKind, str], tuple[str, Person]] = {}
    for kind, ids in wanted.items():
        table = _PERSON_TABLES[kind]
        for row in conn.execute(select(table).where(table.c.id.in_(sorted(ids)))):
            fields = row._mapping
            person: Person
            if kind is PersonKind.STAFF:
                person = _staff(fields)
            elif kind is PersonKind.GUARDIAN:
                person = _guardian(fields)
            else:
                person = _child(fields, guardians.get(fields["id"], frozenset()))
            people[(kind, fields["id"])] = (fields["org_id"], person)
    subjects = sorted({pid for ids in wanted.values() for pid in ids})
    consents: dict[str, list[ConsentRecord]] = {}
    if subjects:
        for row in conn.execute(
            select(t.consent_records)
            .where(t.consent_records.c.subject_id.in_(subjects))
            .order_by(t.consent_records.c.recorded_at, t.consent_records.c.id)
        ):
            record = _consent(row._mapping)
            consents.setdefault(record.subject_id, []).append(record)
    found: dict[str, JoinRecord] = {}
    for m in rows:
        participant = _participant_from(m, "p_")
        owner = people.get((participant.person_kind, participant.person_id))
        if owner is None or owner[0] != m["org_id"]:
            continue
        found[m["id"]] = JoinRecord(
            invite=_invite(m),
            participant=participant,
            session=_session_from(m, "s_"),
            session_password_hash=m["s_password_hash"],
            person=owner[1],
            consents=[
                c for c in consents.get(participant.person_id, []) if c.org_id == m["org_id"]
            ],
            session_title=m["s_title"],
            removed_at=from_us(m["p_removed_at"]) if m["p_removed_at"] is not None else None,
            departures=int(m["p_departures"] or 0),
        )
    return found


def _guardian_links(conn: Connection, child_ids: list[str]) -> dict[str, frozenset[str]]:
    if not child_ids:
        return {}
    rows = conn.execute(
        select(t.child_guardians).where(t.child_guardians.c.child_id.in_(child_ids))
    ).all()
    links: dict[str, set[str]] = {}
    for row in rows:
        links.setdefault(row.child_id, set()).add(row.guardian_id)
    return {child: frozenset(ids) for child, ids in links.items()}


# row -> domain (mappings: SQLAlchemy rows' ._mapping, or DirectQuery's dicts) ---------------
def _day(value: Any) -> date:
    """DATE columns: SQLAlchemy and asyncpg give dates, SQLite's driver ISO strings."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def _org(row: Row[Any]) -> Organisation:
    return Organisation(id=row.id, name=row.name, policy_path=row.policy_path)


def _staff(m: Mapping[Any, Any]) -> Staff:
    vetting = None
    if m["vetting_kind"] is not None:
        vetting = Vetting(
            m["vetting_kind"], _day(m["vetting_checked_on"]), _day(m["vetting_expires_on"])
        )
    return Staff(
        id=m["id"],
        org_id=m["org_id"],
        name=m["name"],
        email=m["email"],
        roles=frozenset(StaffRole(role) for role in m["roles"].split(",") if role),
        vetting=vetting,
    )


def _guardian(m: Mapping[Any, Any]) -> Guardian:
    return Guardian(id=m["id"], org_id=m["org_id"], name=m["name"], contact=m["contact"])


def _child(m: Mapping[Any, Any], guardian_ids: frozenset[str]) -> Child:
    return Child(
        id=m["id"],
        org_id=m["org_id"],
        name=m["name"],
        date_of_birth=_day(m["date_of_birth"]),
        guardian_ids=guardian_ids,
    )


def _session(row: Row[Any]) -> Session:
    return _session_from(row._mapping, "")


def _session_from(m: Any, prefix: str) -> Session:
    return Session(
        id=m[f"{prefix}id"],
        org_id=m[f"{prefix}org_id"],
        kind=SessionKind(m[f"{prefix}kind"]),
        host_staff_id=m[f"{prefix}host_staff_id"],
        starts_at=from_us(m[f"{prefix}starts_at"]),
        ends_at=from_us(m[f"{prefix}ends_at"]),
        recording_purpose=m[f"{prefix}recording_purpose"],
        password_required=m[f"{prefix}password_hash"] is not None,
        ended_at=from_us(m[f"{prefix}ended_at"]) if m[f"{prefix}ended_at"] is not None else None,
        out_of_hours_approved_by=m[f"{prefix}out_of_hours_approved_by"],
    )


def _participant(row: Row[Any]) -> Participant:
    return _participant_from(row._mapping, "")


def _participant_from(m: Any, prefix: str) -> Participant:
    return Participant(
        id=m[f"{prefix}id"],
        session_id=m[f"{prefix}session_id"],
        person_kind=PersonKind(m[f"{prefix}person_kind"]),
        person_id=m[f"{prefix}person_id"],
        role=SessionRole(m[f"{prefix}role"]),
        masked_identity=m[f"{prefix}masked_identity"],
        display_name=m[f"{prefix}display_name"],
    )


def _invite(m: Mapping[Any, Any]) -> Invite:
    return Invite(
        id=m["id"],
        org_id=m["org_id"],
        session_id=m["session_id"],
        participant_id=m["participant_id"],
        expires_at=from_us(m["expires_at"]),
        revoked_at=from_us(m["revoked_at"]) if m["revoked_at"] is not None else None,
        device_hash=m["device_hash"],
        created_at=from_us(m["created_at"]),
    )
