"""Consent state (R6, R7, R9): is a person's written consent for a purpose valid now, and why.

A person's consent history is append-only. It is replayed in `recorded_at` order (ties broken
by record id). A withdrawal by anyone entitled to speak for the subject voids every give before
it: consent has to be given again afterwards. A give only counts when it comes from someone
entitled to give it and carries written evidence of an accepted method, dated no later than
today. Withdrawals need no evidence (anyone can always withdraw, R9).

Who must consent:
  * a child: one of their guardians, and from `consent.child_assent_age` the child themself;
  * a member of staff: themself; for "participation" staff never need a record (they take part
    as part of their work), and for recording purposes only when `staff_consent_required`
    (an explicit withdrawal is still honoured when it is not required);
  * a guardian: themself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import (
    PARTICIPATION,
    Child,
    ConsentAction,
    ConsentRecord,
    Evidence,
    Person,
    PersonKind,
    Staff,
    person_kind,
)
from gateway.domain.policy import Policy


@dataclass(frozen=True, slots=True)
class ConsentState:
    purpose: str
    valid: bool
    reasons: tuple[str, ...]  # machine-readable, e.g. "guardian_consent", "no_child_assent"
    record_ids: tuple[str, ...]  # the records that make it valid (or the withdrawal that voids it)
    assent_required: bool


def age_on(date_of_birth: date, day: date) -> int:
    """Age in whole years on `day` (a 29 February birthday turns over on 1 March)."""
    years = day.year - date_of_birth.year
    if (day.month, day.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years


def assent_required(child: Child, policy: Policy, today: date) -> bool:
    """Whether the child's own written assent is needed as well as a guardian's."""
    return age_on(child.date_of_birth, today) >= policy.consent.child_assent_age


def evidence_accepted(evidence: Evidence | None, policy: Policy, today: date) -> bool:
    """Written evidence of an accepted method, dated no later than today."""
    return (
        evidence is not None
        and evidence.method.value in policy.consent.accepted_evidence
        and evidence.dated <= today
    )


def check_evidence(evidence: Evidence | None, policy: Policy, today: date) -> None:
    """Raise EVIDENCE_NOT_ACCEPTED unless a give could count with this evidence."""
    if not evidence_accepted(evidence, policy, today):
        raise Refusal(
            ErrorCode.EVIDENCE_NOT_ACCEPTED,
            "written evidence of an accepted method, dated no later than today, is required",
        )


def check_purpose(purpose: str, policy: Policy) -> None:
    """Raise PURPOSE_UNKNOWN unless the policy names this consent purpose."""
    if purpose not in policy.consent_purposes():
        accepted = ", ".join(policy.consent_purposes())
        raise Refusal(
            ErrorCode.PURPOSE_UNKNOWN,
            f"this purpose is not in the policy: the purpose must be one of: {accepted}",
        )


def may_speak_for(subject: Person, given_by_kind: PersonKind, given_by_id: str) -> bool:
    """Whether this party may give or withdraw consent on the subject's behalf."""
    if isinstance(subject, Child):
        if given_by_kind is PersonKind.GUARDIAN:
            return given_by_id in subject.guardian_ids
        return given_by_kind is PersonKind.CHILD and given_by_id == subject.id
    return given_by_kind is person_kind(subject) and given_by_id == subject.id


def check_consent_giver(subject: Person, given_by_kind: PersonKind, given_by_id: str) -> None:
    """Raise a Refusal unless this party may give or withdraw consent for the subject."""
    if may_speak_for(subject, given_by_kind, given_by_id):
        return
    if isinstance(subject, Child) and given_by_kind is PersonKind.GUARDIAN:
        raise Refusal(ErrorCode.NOT_A_GUARDIAN, "the giver is not a guardian of this child")
    raise Refusal(
        ErrorCode.CONSENT_GIVER_NOT_ALLOWED,
        f"a {given_by_kind.value} may not give or withdraw consent for this {_kind(subject)}",
    )


def _kind(person: Person) -> str:
    return person_kind(person).value


def _history(person: Person, records: Sequence[ConsentRecord], purpose: str) -> list[ConsentRecord]:
    kind = person_kind(person)
    mine = [
        r
        for r in records
        if r.subject_id == person.id and r.subject_kind is kind and r.purpose == purpose
    ]
    mine.sort(key=lambda r: (r.recorded_at, r.id))
    return mine


@dataclass(frozen=True, slots=True)
class _Replay:
    withdrawal_id: str | None  # the last withdrawal, if any
    gives: tuple[ConsentRecord, ...]  # counting gives after it, oldest first
    rejected: tuple[str, ...]  # reasons gives after it did not count


def _replay(
    person: Person, records: Sequence[ConsentRecord], purpose: str, policy: Policy, today: date
) -> _Replay:
    withdrawal_id: str | None = None
    gives: list[ConsentRecord] = []
    rejected: list[str] = []
    for record in _history(person, records, purpose):
        if not may_speak_for(person, record.given_by_kind, record.given_by_id):
            if record.action is ConsentAction.GIVE:
                rejected.append("giver_not_allowed")
            continue
        if record.action is ConsentAction.WITHDRAW:
            withdrawal_id = record.id
            gives = []
            rejected = []
        elif evidence_accepted(record.evidence, policy, today):
            gives.append(record)
        else:
            rejected.append("evidence_not_accepted")
    return _Replay(withdrawal_id, tuple(gives), tuple(dict.fromkeys(rejected)))


def standing_gives(
    person: Person, records: Sequence[ConsentRecord], purpose: str, policy: Policy, today: date
) -> tuple[ConsentRecord, ...]:
    """The gives that count since the last withdrawal, oldest first: what a person has agreed
    to and could withdraw (a guardian's consent still waiting for the child's assent too)."""
    return _replay(person, records, purpose, policy, today).gives


def _last(gives: Sequence[ConsentRecord], kind: PersonKind) -> ConsentRecord | None:
    found = [g for g in gives if g.given_by_kind is kind]
    return found[-1] if found else None


def consent_state(
    person: Person,
    records: Sequence[ConsentRecord],
    purpose: str,
    policy: Policy,
    today: date,
) -> ConsentState:
    """The state of `person`'s consent for `purpose` on `today`, with machine-readable reasons."""
    needs_assent = isinstance(person, Child) and assent_required(person, policy, today)
    if purpose not in policy.consent_purposes():
        return ConsentState(purpose, False, ("purpose_unknown",), (), needs_assent)

    if isinstance(person, Staff) and purpose == PARTICIPATION:
        return ConsentState(purpose, True, ("staff_not_required",), (), False)

    replay = _replay(person, records, purpose, policy, today)
    withdrawn: tuple[str, ...] = ("withdrawn",) if replay.withdrawal_id else ()
    withdrawal_ids: tuple[str, ...] = (replay.withdrawal_id,) if replay.withdrawal_id else ()

    if isinstance(person, Child):
        guardian = _last(replay.gives, PersonKind.GUARDIAN)
        child = _last(replay.gives, PersonKind.CHILD)
        reasons = ["guardian_consent" if guardian else "no_guardian_consent"]
        if needs_assent:
            reasons.append("child_assent" if child else "no_child_assent")
        valid = guardian is not None and (child is not None or not needs_assent)
        if valid:
            assert guardian is not None
            ids = (guardian.id, child.id) if needs_assent and child else (guardian.id,)
            return ConsentState(purpose, True, tuple(reasons), ids, needs_assent)
        return ConsentState(
            purpose,
            False,
            (*reasons, *withdrawn, *replay.rejected),
            withdrawal_ids,
            needs_assent,
        )

    own = _last(replay.gives, person_kind(person))
    if own is not None:
        return ConsentState(purpose, True, ("own_consent",), (own.id,), False)
    if isinstance(person, Staff) and not policy.consent.staff_consent_required and not withdrawn:
        return ConsentState(purpose, True, ("not_required_by_policy",), (), False)
    return ConsentState(
        purpose, False, ("no_own_consent", *withdrawn, *replay.rejected), withdrawal_ids, False
    )


def current_consents(
    person: Person, records: Sequence[ConsentRecord], policy: Policy, today: date
) -> dict[str, ConsentState]:
    """The consent state for every purpose the policy knows, keyed by purpose."""
    return {p: consent_state(person, records, p, policy, today) for p in policy.consent_purposes()}
