"""Plain data the safeguarding decisions are made over.

Everything here is immutable and free of I/O; adapters build these from storage and services
hand them to the pure functions in this package.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


class StaffRole(enum.StrEnum):
    """What a member of staff may do in the organisation."""

    TUTOR = "tutor"
    OBSERVER = "observer"
    DSL = "dsl"  # designated safeguarding lead
    ADMIN = "admin"


class PersonKind(enum.StrEnum):
    STAFF = "staff"
    CHILD = "child"
    GUARDIAN = "guardian"


class SessionRole(enum.StrEnum):
    """The part a registered person plays in one session."""

    HOST = "host"
    OBSERVER = "observer"
    CHILD = "child"
    GUARDIAN = "guardian"
    VIEWER = "viewer"


class SessionKind(enum.StrEnum):
    TUTORING = "tutoring"
    GROUP = "group"
    LIVESTREAM = "livestream"


class Outcome(enum.StrEnum):
    ADMIT = "admit"
    HOLD = "hold"
    DENY = "deny"


class ConsentAction(enum.StrEnum):
    GIVE = "give"
    WITHDRAW = "withdraw"


class EvidenceMethod(enum.StrEnum):
    SIGNED_FORM = "signed_form"
    E_SIGNATURE = "e_signature"
    WRITTEN_EMAIL = "written_email"


PARTICIPATION = "participation"
RECORDING_PREFIX = "recording:"


@dataclass(frozen=True, slots=True)
class Vetting:
    """A safer-recruitment check (e.g. an enhanced DBS check) and when it lapses."""

    kind: str
    checked_on: date
    expires_on: date


@dataclass(frozen=True, slots=True)
class Staff:
    id: str
    org_id: str
    name: str
    email: str
    roles: frozenset[StaffRole]
    vetting: Vetting | None


@dataclass(frozen=True, slots=True)
class Child:
    id: str
    org_id: str
    name: str
    date_of_birth: date
    guardian_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class Guardian:
    id: str
    org_id: str
    name: str
    contact: str


Person = Staff | Child | Guardian


def person_kind(person: Person) -> PersonKind:
    if isinstance(person, Staff):
        return PersonKind.STAFF
    if isinstance(person, Child):
        return PersonKind.CHILD
    return PersonKind.GUARDIAN


@dataclass(frozen=True, slots=True)
class Evidence:
    """How written consent was captured: the method, a reference to the document, its date."""

    method: EvidenceMethod
    reference: str
    dated: date


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One append-only entry in a person's consent history."""

    id: str
    org_id: str
    subject_kind: PersonKind
    subject_id: str
    purpose: str
    action: ConsentAction
    given_by_kind: PersonKind
    given_by_id: str
    evidence: Evidence | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    org_id: str
    kind: SessionKind
    host_staff_id: str
    starts_at: datetime
    ends_at: datetime
    recording_purpose: str | None
    password_required: bool
    ended_at: datetime | None = None
    out_of_hours_approved_by: str | None = None  # a DSL's staff id (R16)


@dataclass(frozen=True, slots=True)
class Participant:
    """A registered person on a session's roster, with their masked identity for that session."""

    id: str
    session_id: str
    person_kind: PersonKind
    person_id: str
    role: SessionRole
    masked_identity: str
    display_name: str


@dataclass(frozen=True, slots=True)
class Invite:
    id: str  # the token's jti
    org_id: str
    session_id: str
    participant_id: str
    expires_at: datetime
    revoked_at: datetime | None
    device_hash: str | None  # set by the first redemption; None until then
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Presence:
    """Someone the live state says is in the session right now."""

    participant_id: str
    role: SessionRole
    person_kind: PersonKind
    vetted_adult: bool  # a staff member whose vetting is valid now, counting per policy
    held: bool = False


@dataclass(frozen=True, slots=True)
class Grants:
    """Media permissions stated explicitly (never rely on a platform's defaults)."""

    can_publish: bool
    can_subscribe: bool
    hidden: bool = False

    @staticmethod
    def none() -> Grants:
        return Grants(can_publish=False, can_subscribe=False)


@dataclass(frozen=True, slots=True)
class Decision:
    """An admission decision as plain data; written to the audit log as it is."""

    outcome: Outcome
    reasons: tuple[str, ...]
    grants: Grants = field(default_factory=Grants.none)
    policy_version: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome.value,
            "reasons": list(self.reasons),
            "grants": {
                "can_publish": self.grants.can_publish,
                "can_subscribe": self.grants.can_subscribe,
                "hidden": self.grants.hidden,
            },
            "policy_version": self.policy_version,
        }
