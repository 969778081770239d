"""Rows to domain objects for the SQL stores, and the reads several aggregates share (a
person with their guardians, a person's consents, the join record that gathers them all)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection, Row

from gateway.adapters.sql import schema as t
from gateway.adapters.sql.direct import DirectQuery
from gateway.adapters.sql.read_batch import each
from gateway.clock import from_us
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
from gateway.services.ports import JoinRecord, Organisation

# the join's read ---------------------------------------------------------------------------
# Every join runs these, so they are compiled once and run on the driver (see direct.py).
_hosts = t.participants.alias("hosts")
# The host's display name (the join page shows it), in the join's own statement: the first
# host on the roster, as `SessionStore.participants` orders it.
_HOST_NAME = (
    select(_hosts.c.display_name)
    .where(
        _hosts.c.session_id == t.sessions.c.id,
        _hosts.c.org_id == t.sessions.c.org_id,
        _hosts.c.role == SessionRole.HOST.value,
    )
    .order_by(_hosts.c.created_at, _hosts.c.id)
    .limit(1)
    .scalar_subquery()
    .label("host_display_name")
)
# The person, in the join's own statement too: one of these three rows matches (the others are
# NULL), named by `_PERSON_PREFIX`; whether they have any consent records at all, so that an
# adult without any (most of them) costs no second statement.
_PEOPLE = {
    PersonKind.STAFF: (t.staff, "st_"),
    PersonKind.CHILD: (t.children, "ch_"),
    PersonKind.GUARDIAN: (t.guardians, "gd_"),
}
# Each kind's columns as labelled in the join's row, and as the table names them.
_PERSON_COLUMNS = {
    kind: tuple((f"{prefix}{c.name}", c.name) for c in table.c)
    for kind, (table, prefix) in _PEOPLE.items()
}
_PERSON_ID = {kind: f"{prefix}id" for kind, (_table, prefix) in _PEOPLE.items()}
_HAS_CONSENTS = (
    select(t.consent_records.c.id)
    .where(
        t.consent_records.c.org_id == t.invites.c.org_id,
        t.consent_records.c.subject_id == t.participants.c.person_id,
    )
    .exists()
    .label("has_consents")
)
_join_from = t.invites.join(t.participants, t.participants.c.id == t.invites.c.participant_id).join(
    t.sessions, t.sessions.c.id == t.invites.c.session_id
)
for _kind, (_table, _prefix) in _PEOPLE.items():
    _join_from = _join_from.outerjoin(
        _table,
        (_table.c.id == t.participants.c.person_id)
        & (_table.c.org_id == t.invites.c.org_id)
        & (t.participants.c.person_kind == _kind.value),
    )
_JOIN_ROW = select(
    t.invites,
    *[c.label(f"p_{c.name}") for c in t.participants.c],
    *[c.label(f"s_{c.name}") for c in t.sessions.c],
    *[c.label(f"{prefix}{c.name}") for table, prefix in _PEOPLE.values() for c in table.c],
    _HOST_NAME,
    _HAS_CONSENTS,
).select_from(_join_from)
# Joins arriving together (`ReadBatch`) read their rows in one statement: one per number of
# invites (up to the batch's bound), each compiled once, so the driver keeps it prepared.
_JOIN_QUERIES_FOR: dict[int, DirectQuery] = {}


def _join_query_for(count: int) -> DirectQuery:
    query = _JOIN_QUERIES_FOR.get(count)
    if query is None:
        wanted = [bindparam(f"invite_{i}", type_=t.invites.c.id.type) for i in range(count)]
        query = _JOIN_QUERIES_FOR[count] = DirectQuery(_JOIN_ROW.where(t.invites.c.id.in_(wanted)))
    return query


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


def _join_records_together(
    conn: Connection, invite_ids: list[str]
) -> list[tuple[bool, JoinRecord | Exception | None]]:
    """Everything each join of a batch needs to be decided, in order, in one read snapshot:
    the invites' rows (with participant, session, person and host name) in one statement, then
    each mapped on its own, so one bad row is that join's failure only. An adult without
    consent records costs nothing more; a child's guardians and consents are further
    statements."""
    distinct = list(dict.fromkeys(invite_ids))
    rows = _join_query_for(len(distinct)).rows(
        conn, **{f"invite_{i}": invite_id for i, invite_id in enumerate(distinct)}
    )
    by_id = {row["id"]: row for row in rows}

    def one(conn: Connection, invite_id: str) -> JoinRecord | None:
        row = by_id.get(invite_id)
        return _join_record_from(conn, row) if row is not None else None

    return each(conn, invite_ids, one)


def _join_record_from(conn: Connection, m: Mapping[str, Any]) -> JoinRecord | None:
    participant = _participant_from(m, "p_")
    person = _joined_person(conn, m, participant.person_kind)
    if person is None:
        return None
    return JoinRecord(
        invite=_invite(m),
        participant=participant,
        session=_session_from(m, "s_"),
        session_password_hash=m["s_password_hash"],
        person=person,
        consents=(_consents(conn, m["org_id"], participant.person_id) if m["has_consents"] else []),
        session_title=m["s_title"],
        removed_at=from_us(m["p_removed_at"]) if m["p_removed_at"] is not None else None,
        departures=int(m["p_departures"] or 0),
        host_display_name=m["host_display_name"],
    )


def _joined_person(conn: Connection, m: Mapping[str, Any], kind: PersonKind) -> Person | None:
    """The person columns of a join row (prefixed), as a Person; None when there is none."""
    if m[_PERSON_ID[kind]] is None:
        return None
    fields = {name: m[labelled] for labelled, name in _PERSON_COLUMNS[kind]}
    if kind is PersonKind.STAFF:
        return _staff(fields)
    if kind is PersonKind.GUARDIAN:
        return _guardian(fields)
    guardians = frozenset(r["guardian_id"] for r in _GUARDIANS_OF.rows(conn, child_id=fields["id"]))
    return _child(fields, guardians)


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
    """`_join_records_together` for a reconciliation round's invites (no bound on their
    number: SQLAlchemy's expanding IN lists; same snapshot, constant number of queries)."""
    rows = [
        dict(row._mapping)
        for row in conn.execute(
            select(
                t.invites,
                *[c.label(f"p_{c.name}") for c in t.participants.c],
                *[c.label(f"s_{c.name}") for c in t.sessions.c],
                _HOST_NAME,
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
            host_display_name=m["host_display_name"],
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
