"""Rules for who may be registered, and in which role (R5)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime

from gateway.domain.admission import STAFF_ROLES_FOR, staff_role_allowed, vetting_reasons
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import (
    Child,
    Guardian,
    Person,
    Session,
    SessionKind,
    SessionRole,
    Staff,
    Vetting,
)
from gateway.domain.policy import Policy

# The shape of an address; the HTTP schema states the same pattern (case-insensitive domain).
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}$"
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@([a-z0-9.-]{1,253})$")
MAX_AGE_YEARS = 25  # a "child" born longer ago than this is a data-entry mistake
# Free text shown back to staff (a guardian's contact, a session's title): no control, format
# or line-separator characters, and no space at either end. The HTTP schema states the same
# pattern; the check here trims first, so a schema-valid text is never refused for its shape.
_TEXT = r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
PLAIN_TEXT_PATTERN = rf"^[^\s{_TEXT}](?:[^{_TEXT}]*[^\s{_TEXT}])?$"
PLAIN_TEXT = re.compile(PLAIN_TEXT_PATTERN)


def one_of(values: Iterable[object]) -> str:
    """The accepted values of a policy list, as an error message names them."""
    names = sorted(str(value) for value in values)
    return ", ".join(names) if names else "(none)"


def check_plain_text(text: str, what: str, low: int, high: int) -> str:
    """Trimmed free text within bounds, or BODY_INVALID naming the rule."""
    trimmed = text.strip()
    if not low <= len(trimmed) <= high or PLAIN_TEXT.fullmatch(trimmed) is None:
        raise Refusal(
            ErrorCode.BODY_INVALID,
            f"{what} is {low} to {high} printable characters, without control characters.",
        )
    return trimmed


def check_staff_email(email: str, policy: Policy) -> str:
    """Staff use organisational accounts: the domain must be one the policy allows."""
    normalised = email.strip().lower()
    match = EMAIL.match(normalised)
    if match is None:
        raise Refusal(ErrorCode.BODY_INVALID, "The email address is not valid.")
    if match.group(1) not in policy.staff.allowed_email_domains:
        raise Refusal(
            ErrorCode.EMAIL_DOMAIN_NOT_ALLOWED,
            "Staff must use an organisational email address: the email domain must be one of: "
            + one_of(policy.staff.allowed_email_domains)
            + ".",
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
        raise Refusal(
            ErrorCode.VETTING_KIND_NOT_ACCEPTED,
            "That kind of vetting check is not accepted: the vetting kind must be one of: "
            + one_of(policy.staff.accepted_vetting_kinds)
            + ".",
        )


ROSTER_ROLES: dict[SessionRole, type[Staff] | type[Child] | type[Guardian] | None] = {
    SessionRole.HOST: Staff,
    SessionRole.OBSERVER: Staff,
    SessionRole.CHILD: Child,
    SessionRole.GUARDIAN: Guardian,
    SessionRole.VIEWER: None,  # anyone registered, livestreams only
}


_KIND_NAMES: dict[type[Staff] | type[Child] | type[Guardian], str] = {
    Staff: "member of staff",
    Child: "child",
    Guardian: "guardian",
}


def check_roster_role(
    person: Person, role: SessionRole, kind: SessionKind, policy: Policy, today: date
) -> None:
    """Refuse roles a person cannot hold, e.g. a child registered as an observer, or an adult
    without current vetting as an observer: refused when the roster is written, not only when
    they try to join (R4, R5)."""
    if role is SessionRole.VIEWER:
        if kind is not SessionKind.LIVESTREAM:
            raise Refusal(ErrorCode.ROLE_NOT_ALLOWED, "Viewers take part in livestreams only.")
        return
    if role is SessionRole.HOST:
        raise Refusal(ErrorCode.ROLE_NOT_ALLOWED, "A session's host is set when it is created.")
    required = ROSTER_ROLES[role]
    if required is not None and not isinstance(person, required):
        raise Refusal(
            ErrorCode.ROLE_NOT_ALLOWED,
            f"The {role.value} role is taken by a registered {_KIND_NAMES[required]} only.",
        )
    if isinstance(person, Staff):
        check_adult_role(person, role, policy, today)


def check_adult_role(staff: Staff, role: SessionRole, policy: Policy, today: date) -> None:
    """A host or observer needs an organisational role that allows it and current vetting of a
    kind the policy accepts; the refusal says which is missing."""
    if role not in STAFF_ROLES_FOR:
        return
    if not staff_role_allowed(staff, role):
        allowed = one_of(r.value for r in STAFF_ROLES_FOR[role])
        raise Refusal(
            ErrorCode.ROLE_NOT_ALLOWED,
            f"The {role.value} role needs a member of staff with a role of one of: {allowed}.",
        )
    reasons = vetting_reasons(staff, policy, today)
    if reasons:
        raise Refusal(
            ErrorCode.VETTING_EXPIRED,
            f"The {role.value} role needs current vetting ({reasons[0]}); accepted vetting "
            f"kinds: {one_of(policy.staff.accepted_vetting_kinds)}.",
        )


def schedule_status(session: Session, now: datetime) -> str:
    """Where a session is in its schedule: "upcoming", "live" (between its start and end, not
    ended) or "ended" (ended by its host or past its end). The session listing filters on the
    same three conditions (SqlStore.sessions_page)."""
    if session.ended_at is not None or now >= session.ends_at:
        return "ended"
    return "live" if now >= session.starts_at else "upcoming"
