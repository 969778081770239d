"""Builders for domain tests: a policy from policies/default.toml, people, sessions, records.

Every builder takes keyword overrides so a test states only what matters to it.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.domain.models import (
    Child,
    ConsentAction,
    ConsentRecord,
    Evidence,
    EvidenceMethod,
    Guardian,
    Participant,
    PersonKind,
    Presence,
    Session,
    SessionKind,
    SessionRole,
    Staff,
    StaffRole,
    Vetting,
    person_kind,
)
from gateway.domain.policy import Policy, parse_policy

DEFAULT_POLICY_TEXT = (Path(__file__).resolve().parents[2] / "policies" / "default.toml").read_text(
    encoding="utf-8"
)

# Monday 23 November 2026, 10:00 in London (GMT, so also 10:00 UTC).
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TODAY = NOW.date()
ORG = "org_1"


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_policy(**sections: Any) -> Policy:
    """The default policy (through parse_policy), with sections overridden and re-validated.

    make_policy(hours={"out_of_hours": "dsl_approval"}, supervision={"grace_seconds": 0})
    """
    policy = parse_policy(DEFAULT_POLICY_TEXT)
    if not sections:
        return policy
    raw = _merge(tomllib.loads(DEFAULT_POLICY_TEXT), sections)
    raw["digest"] = policy.digest
    return Policy.model_validate(raw)


DEFAULT_POLICY = make_policy()


def vetting(
    kind: str = "dbs_enhanced",
    checked_on: date = date(2025, 1, 1),
    expires_on: date = date(2028, 1, 1),
) -> Vetting:
    return Vetting(kind=kind, checked_on=checked_on, expires_on=expires_on)


_DEFAULT = object()


def staff(
    id: str = "staff_1",
    *,
    name: str = "Robin Tutor",
    roles: frozenset[StaffRole] = frozenset({StaffRole.TUTOR}),
    vetting_: Vetting | object | None = _DEFAULT,
    org_id: str = ORG,
) -> Staff:
    return Staff(
        id=id,
        org_id=org_id,
        name=name,
        email=f"{id}@example.org",
        roles=roles,
        vetting=vetting() if vetting_ is _DEFAULT else vetting_,  # type: ignore[arg-type]
    )


def child(
    id: str = "child_1",
    *,
    name: str = "Sam Rivers",
    date_of_birth: date = date(2016, 5, 1),  # 10 on TODAY: below the default assent age
    guardian_ids: frozenset[str] = frozenset({"guardian_1"}),
    org_id: str = ORG,
) -> Child:
    return Child(
        id=id,
        org_id=org_id,
        name=name,
        date_of_birth=date_of_birth,
        guardian_ids=guardian_ids,
    )


def guardian(id: str = "guardian_1", *, name: str = "Pat Rivers", org_id: str = ORG) -> Guardian:
    return Guardian(id=id, org_id=org_id, name=name, contact="pat@example.net")


def session(
    id: str = "session_1",
    *,
    kind: SessionKind = SessionKind.TUTORING,
    starts_at: datetime = NOW,
    ends_at: datetime | None = None,
    ended_at: datetime | None = None,
    out_of_hours_approved_by: str | None = None,
    org_id: str = ORG,
) -> Session:
    return Session(
        id=id,
        org_id=org_id,
        kind=kind,
        host_staff_id="staff_1",
        starts_at=starts_at,
        ends_at=ends_at if ends_at is not None else starts_at + timedelta(hours=1),
        recording_purpose=None,
        password_required=True,
        ended_at=ended_at,
        out_of_hours_approved_by=out_of_hours_approved_by,
    )


def evidence(
    method: EvidenceMethod = EvidenceMethod.SIGNED_FORM, dated: date = date(2026, 9, 1)
) -> Evidence:
    return Evidence(method=method, reference="form-ref", dated=dated)


_counter = iter(range(1, 1_000_000))


def record(
    subject: Staff | Child | Guardian,
    *,
    by: Staff | Child | Guardian | None = None,
    by_kind: PersonKind | None = None,
    by_id: str | None = None,
    purpose: str = "participation",
    action: ConsentAction = ConsentAction.GIVE,
    evidence_: Evidence | object | None = _DEFAULT,
    at: datetime = datetime(2026, 9, 1, 9, 0, tzinfo=UTC),
    id: str | None = None,
) -> ConsentRecord:
    """A consent record about `subject`, given by `by` (default: the subject themself)."""
    giver = by if by is not None else subject
    return ConsentRecord(
        id=id if id is not None else f"rec_{next(_counter):06d}",
        org_id=ORG,
        subject_kind=person_kind(subject),
        subject_id=subject.id,
        purpose=purpose,
        action=action,
        given_by_kind=by_kind if by_kind is not None else person_kind(giver),
        given_by_id=by_id if by_id is not None else giver.id,
        evidence=evidence() if evidence_ is _DEFAULT else evidence_,  # type: ignore[arg-type]
        recorded_at=at,
    )


def participant(
    person: Staff | Child | Guardian,
    role: SessionRole,
    *,
    id: str | None = None,
    session_id: str = "session_1",
) -> Participant:
    return Participant(
        id=id if id is not None else f"part_{person.id}",
        session_id=session_id,
        person_kind=person_kind(person),
        person_id=person.id,
        role=role,
        masked_identity="p_test",
        display_name="Test",
    )


def adult(pid: str, role: SessionRole = SessionRole.HOST, *, vetted: bool = True) -> Presence:
    return Presence(
        participant_id=pid, role=role, person_kind=PersonKind.STAFF, vetted_adult=vetted
    )


def kid(pid: str, *, held: bool = False, role: SessionRole = SessionRole.CHILD) -> Presence:
    return Presence(
        participant_id=pid,
        role=role,
        person_kind=PersonKind.CHILD,
        vetted_adult=False,
        held=held,
    )


TWO_ADULTS = (adult("a_host", SessionRole.HOST), adult("a_obs", SessionRole.OBSERVER))
