"""Rules for who may be registered, and in which role (R5)."""

from __future__ import annotations

import re
from datetime import date

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import Child, Guardian, Person, SessionKind, SessionRole, Staff, Vetting
from gateway.domain.policy import Policy

EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@([a-z0-9.-]{1,253})$")
MAX_AGE_YEARS = 25  # a "child" born longer ago than this is a data-entry mistake


def check_staff_email(email: str, policy: Policy) -> str:
    """Staff use organisational accounts: the domain must be one the policy allows."""
    normalised = email.strip().lower()
    match = EMAIL.match(normalised)
    if match is None:
        raise Refusal(ErrorCode.BODY_INVALID, "The email address is not valid.")
    if match.group(1) not in policy.staff.allowed_email_domains:
        raise Refusal(
            ErrorCode.EMAIL_DOMAIN_NOT_ALLOWED,
            "Staff must use an organisational email address from an allowed domain.",
        )
    return normalised


def check_date_of_birth(date_of_birth: date, today: date) -> None:
    if date_of_birth > today:
        raise Refusal(ErrorCode.DATE_OF_BIRTH_IN_FUTURE, "The date of birth is in the future.")
    if today.year - date_of_birth.year > MAX_AGE_YEARS:
        raise Refusal(ErrorCode.DATE_INVALID, "The date of birth is not a child's.")


def check_vetting(vetting: Vetting, policy: Policy, today: date) -> None:
    if vetting.checked_on > today:
        raise Refusal(ErrorCode.DATE_INVALID, "A vetting check cannot be dated in the future.")
    if vetting.expires_on <= vetting.checked_on:
        raise Refusal(ErrorCode.DATE_INVALID, "A vetting check must expire after it was made.")
    if vetting.kind not in policy.staff.accepted_vetting_kinds:
        raise Refusal(ErrorCode.BODY_INVALID, "That kind of vetting check is not accepted.")


ROSTER_ROLES: dict[SessionRole, type[Staff] | type[Child] | type[Guardian] | None] = {
    SessionRole.HOST: Staff,
    SessionRole.OBSERVER: Staff,
    SessionRole.CHILD: Child,
    SessionRole.GUARDIAN: Guardian,
    SessionRole.VIEWER: None,  # anyone registered, livestreams only
}


def check_roster_role(person: Person, role: SessionRole, kind: SessionKind) -> None:
    """Refuse roles a person cannot hold, e.g. a child registered as an observer."""
    if role is SessionRole.VIEWER:
        if kind is not SessionKind.LIVESTREAM:
            raise Refusal(ErrorCode.ROLE_NOT_ALLOWED, "Viewers take part in livestreams only.")
        return
    if role is SessionRole.HOST:
        raise Refusal(ErrorCode.ROLE_NOT_ALLOWED, "A session's host is set when it is created.")
    required = ROSTER_ROLES[role]
    if required is not None and not isinstance(person, required):
        raise Refusal(ErrorCode.ROLE_NOT_ALLOWED, f"That person cannot take the {role} role.")
