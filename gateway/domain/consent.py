"""Consent state (R6, R7, R9): is a person's written consent for a purpose valid now, and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from gateway.domain.models import ConsentRecord, Person, PersonKind
from gateway.domain.policy import Policy


@dataclass(frozen=True, slots=True)
class ConsentState:
    purpose: str
    valid: bool
    reasons: tuple[str, ...]  # machine-readable, e.g. "guardian_consent", "no_child_assent"
    record_ids: tuple[str, ...]  # the records that make it valid (or the withdrawal that voids it)
    assent_required: bool


def age_on(date_of_birth: date, day: date) -> int:
    raise NotImplementedError


def consent_state(
    person: Person,
    records: Sequence[ConsentRecord],
    purpose: str,
    policy: Policy,
    today: date,
) -> ConsentState:
    raise NotImplementedError


def check_consent_giver(subject: Person, given_by_kind: PersonKind, given_by_id: str) -> None:
    raise NotImplementedError
