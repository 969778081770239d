"""Who a live recording may capture (R7, R8, R10): pure decisions over plain data.

A recording of a session is a set of per-person recordings (one catalogue entry per person's
own tracks, services/recording_ports.py). Who would be recorded: everyone connected whose role
publishes media (viewers never do, R18). A recording starts only for a purpose the policy lists
(R10) and only when every one of them has valid written consent for it (R7, domain/consent.py:
a child needs a guardian's consent and, from the assent age, their own; staff per
`consent.staff_consent_required`). Otherwise the refusal names, by the masked name shown in the
session, who lacks which consent, and nothing is recorded.

On the day (R8) a child is asked whether they are happy to be recorded. A child who says no, or
was never asked, is dealt with as `recording.child_declines` says:
  "exclude"  the child is left out of the recording (their tracks are never written), and the
             recording goes on for the others;
  "block"    the child stops the recording: it cannot start while they are in the session, and
             it stops if they join while it runs.
Someone without valid written consent who joins while a recording runs, or whose consent is
withdrawn during it, is never captured: under "exclude" they are left out (their own recording,
if any, stops), under "block" the whole recording stops.

`audio_only` of the purpose is carried to the recorder: only sound is written then.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from gateway.domain.admission import grants_for  # the one definition of who publishes
from gateway.domain.consent import consent_state
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import (
    RECORDING_PREFIX,
    Child,
    ConsentRecord,
    Person,
    SessionRole,
)
from gateway.domain.policy import Policy

__all__ = [
    "DAY_ANSWERS",
    "Candidate",
    "Lack",
    "NewcomerAction",
    "StartDecision",
    "check_recording_purpose",
    "consent_purpose",
    "decide_newcomer",
    "decide_start",
    "missing_consents",
    "would_be_recorded",
]

DAY_ANSWERS = ("yes", "no")

# What the refusal list says each missing piece is (plain words, no personal data).
MISSING_WORDS = {
    "guardian_consent": "a parent's or carer's written consent",
    "child_assent": "their own written agreement",
    "own_consent": "their own written consent",
    "declined_today": "said no to being recorded today",
    "not_asked_today": "has not been asked today whether they are happy to be recorded",
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """Someone connected to the session: their masked identity and shown name, the person
    behind them (never shown), their role, and (children) their answer today (R8)."""

    identity: str
    display_name: str
    person: Person
    role: SessionRole
    day_answer: str | None = None  # "yes", "no", or None when not asked


@dataclass(frozen=True, slots=True)
class Lack:
    """Who (masked) lacks what (keys of MISSING_WORDS)."""

    identity: str
    display_name: str
    missing: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "identity": self.identity,
            "display_name": self.display_name,
            "missing": list(self.missing),
            "says": f"{self.display_name}: " + "; ".join(MISSING_WORDS[m] for m in self.missing),
        }


@dataclass(frozen=True, slots=True)
class StartDecision:
    allowed: bool
    purpose: str
    audio_only: bool
    recorded: tuple[str, ...]  # identities whose tracks are written
    excluded: tuple[tuple[str, str], ...]  # (identity, reason): left out by policy
    lacking: tuple[Lack, ...]  # why not allowed
    consent_records: Mapping[str, tuple[str, ...]]  # identity -> the records that made it valid

    def as_dict(self) -> dict[str, object]:
        """For the audit log (masked identities only)."""
        return {
            "allowed": self.allowed,
            "purpose": self.purpose,
            "audio_only": self.audio_only,
            "recorded": list(self.recorded),
            "excluded": [{"identity": i, "reason": r} for i, r in self.excluded],
            "lacking": [{"identity": x.identity, "missing": list(x.missing)} for x in self.lacking],
        }


class NewcomerAction(enum.StrEnum):
    RECORD = "record"  # their own tracks are written too
    EXCLUDE = "exclude"  # never captured; the recording goes on
    STOP = "stop"  # the whole recording stops


def consent_purpose(purpose: str) -> str:
    """The consent purpose of a recording purpose ("recording:<purpose>")."""
    return RECORDING_PREFIX + purpose


def check_recording_purpose(purpose: str, policy: Policy) -> None:
    """Raise PURPOSE_UNKNOWN unless the policy lists this recording purpose (R10)."""
    if purpose not in policy.recording.purposes:
        listed = ", ".join(policy.recording_purpose_names()) or "(none: we do not record)"
        raise Refusal(
            ErrorCode.PURPOSE_UNKNOWN,
            f"That recording purpose is not in the policy: the purpose must be one of: {listed}",
        )


def would_be_recorded(candidates: Sequence[Candidate], policy: Policy) -> list[Candidate]:
    """Everyone connected whose role publishes media (viewers never do, R18)."""
    return [c for c in candidates if grants_for(c.role, policy).can_publish]


def missing_consents(
    person: Person, records: Sequence[ConsentRecord], purpose: str, policy: Policy, today: date
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(what is missing, the records that make consent valid) for this recording purpose."""
    state = consent_state(person, records, consent_purpose(purpose), policy, today)
    if state.valid:
        return (), state.record_ids
    missing: list[str] = []
    if "no_guardian_consent" in state.reasons:
        missing.append("guardian_consent")
    if "no_child_assent" in state.reasons:
        missing.append("child_assent")
    if "no_own_consent" in state.reasons or not missing:
        missing.append("own_consent")
    return tuple(missing), ()


def _day_reason(candidate: Candidate) -> str | None:
    """Why a child is not happy to be recorded today (R8), or None when they said yes."""
    if not isinstance(candidate.person, Child):
        return None
    if candidate.day_answer == "yes":
        return None
    return "declined_today" if candidate.day_answer == "no" else "not_asked_today"


def decide_start(
    candidates: Sequence[Candidate],
    records: Mapping[str, Sequence[ConsentRecord]],
    purpose: str,
    policy: Policy,
    today: date,
) -> StartDecision:
    """May a recording for `purpose` start with these people connected? `records` holds each
    person's consent history by person id. Raises PURPOSE_UNKNOWN for a purpose not listed."""
    check_recording_purpose(purpose, policy)
    spec = policy.recording.purposes[purpose]
    recorded: list[str] = []
    excluded: list[tuple[str, str]] = []
    lacking: list[Lack] = []
    valid_records: dict[str, tuple[str, ...]] = {}
    for candidate in would_be_recorded(candidates, policy):
        missing, ids = missing_consents(
            candidate.person, records.get(candidate.person.id, ()), purpose, policy, today
        )
        day = _day_reason(candidate)
        if day is not None and policy.recording.child_declines == "exclude":
            excluded.append((candidate.identity, day))  # left out: their consent is moot
        elif missing or day is not None:
            both = (*missing, day) if day is not None else missing
            lacking.append(Lack(candidate.identity, candidate.display_name, both))
        else:
            recorded.append(candidate.identity)
            valid_records[candidate.identity] = ids
    allowed = not lacking and bool(recorded)
    return StartDecision(
        allowed=allowed,
        purpose=purpose,
        audio_only=spec.audio_only,
        recorded=tuple(recorded) if allowed else (),
        excluded=tuple(excluded),
        lacking=tuple(lacking),
        consent_records=valid_records if allowed else {},
    )


def decide_newcomer(
    candidate: Candidate,
    records: Sequence[ConsentRecord],
    purpose: str,
    policy: Policy,
    today: date,
) -> tuple[NewcomerAction, tuple[str, ...], tuple[str, ...]]:
    """Someone connected while a recording runs (or whose consent changed during it): is their
    own media written, are they left out, or does the recording stop? Returns (action, reasons,
    the consent records that make it valid)."""
    if not grants_for(candidate.role, policy).can_publish:
        return NewcomerAction.EXCLUDE, ("does_not_publish",), ()
    if purpose not in policy.recording.purposes:
        return NewcomerAction.STOP, ("purpose_unknown",), ()
    missing, ids = missing_consents(candidate.person, records, purpose, policy, today)
    day = _day_reason(candidate)
    reasons = missing or ((day,) if day is not None else ())
    if not reasons:
        return NewcomerAction.RECORD, (), ids
    if policy.recording.child_declines == "block":
        return NewcomerAction.STOP, reasons, ()
    return NewcomerAction.EXCLUDE, reasons, ()
