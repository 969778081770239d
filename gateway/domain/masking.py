"""Masked identities (R3): what others and the platform may see of a person.

The platform and other participants see only an opaque per-session identity and a display name
shaped by policy ("Sam R.", "Sam" or "Student 3"); never a full surname, email or date of birth.
"""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Iterable

from gateway.domain.models import Person, PersonKind, SessionRole, person_kind
from gateway.domain.names import (
    check_person_name,
    distinct_display_name,
    graphemes,
    looks_like_reserved,
)
from gateway.domain.policy import NameStyle, Policy

MASKED_IDENTITY_PREFIX = "p_"
MIN_IDENTITY_BYTES = 10
# A shown first name is cut to this many characters (grapheme clusters) and code points, so a
# display name with its initial and a " (12)" suffix fits the stored column (120).
MAX_SHOWN_CLUSTERS = 40
MAX_SHOWN_CODE_POINTS = 100

ROLE_LABELS: dict[SessionRole, str] = {
    SessionRole.HOST: "Tutor",
    SessionRole.OBSERVER: "Observer",
    SessionRole.CHILD: "Student",
    SessionRole.GUARDIAN: "Guardian",
    SessionRole.VIEWER: "Viewer",
}


def new_masked_identity(random_bytes: bytes) -> str:
    """An opaque identity from caller-supplied random bytes: 'p_' + lower-case base32."""
    if len(random_bytes) < MIN_IDENTITY_BYTES:
        raise ValueError(f"need at least {MIN_IDENTITY_BYTES} random bytes")
    encoded = base64.b32encode(random_bytes).decode("ascii").rstrip("=").lower()
    return MASKED_IDENTITY_PREFIX + encoded


def reserved_titles(policy: Policy | None) -> tuple[str, ...]:
    """Titles no name may be or begin with: the policy's list and the gateway's own labels
    ("Student 3" must not be someone's name)."""
    reserved = policy.names.reserved if policy is not None else ()
    unique: dict[str, str] = {}
    for title in (*reserved, *ROLE_LABELS.values()):
        unique.setdefault(title.casefold(), title)
    return tuple(unique.values())


def validate_person_name(name: str, policy: Policy | None = None) -> str:
    """The name as stored (PRECIS Nickname enforcement, see names.py), or
    Refusal(NAME_INVALID) naming the rule broken; never echoing the name."""
    return check_person_name(name, reserved_titles(policy))


def _initial(part: str) -> str:
    """The first letter of a name part with any combining marks that follow it, or ''."""
    for index, char in enumerate(part):
        if unicodedata.category(char)[0] == "L":
            end = index + 1
            while end < len(part) and unicodedata.category(part[end])[0] == "M":
                end += 1
            return part[index:end]
    return ""


def role_label(role: SessionRole, ordinal: int) -> str:
    """'Student 3', 'Tutor 1', ...: a 1-based number within the role."""
    if ordinal < 1:
        raise ValueError("ordinal is 1-based")
    return f"{ROLE_LABELS[role]} {ordinal}"


def display_name(person: Person, role: SessionRole, style: NameStyle, ordinal: int) -> str:
    """What others see of this person in a session, shaped by the policy's name style.

    "first_name_initial": first given name and the initial of the last name part ("Sam R.");
    "first_name": first given name only; "role_number": "Student 3", "Tutor 1", ...
    A name with no usable first part falls back to the role number.
    """
    label = role_label(role, ordinal)
    if style == "role_number":
        return label
    parts = unicodedata.normalize("NFC", person.name).split()
    if not parts or not _initial(parts[0]):
        return label
    first = _shortened(parts[0])
    if style == "first_name" or len(parts) == 1:
        return first
    initial = _initial(parts[-1])
    return f"{first} {initial}." if initial else first


def _shortened(part: str) -> str:
    """At most MAX_SHOWN_CLUSTERS whole characters (never splitting a letter from its accents)
    and MAX_SHOWN_CODE_POINTS code points."""
    shown = ""
    for count, cluster in enumerate(graphemes(part)):
        if count == MAX_SHOWN_CLUSTERS or len(shown) + len(cluster) > MAX_SHOWN_CODE_POINTS:
            break
        shown += cluster
    return shown


def session_display_name(
    person: Person, role: SessionRole, policy: Policy, ordinal: int, taken: Iterable[str]
) -> str:
    """The display name a person gets when added to a session's roster.

    Shaped by the policy's style; the role label when the shaped name looks like a reserved
    title (a title reserved after the person was registered); and told apart from everyone
    already on the roster (`taken`) whose display name looks alike ("Sam R. (2)").
    """
    shown = display_name(person, role, display_style(policy, role, person_kind(person)), ordinal)
    if shown != role_label(role, ordinal) and looks_like_reserved(shown, reserved_titles(policy)):
        shown = role_label(role, ordinal)
    return distinct_display_name(shown, taken)


def display_style(policy: Policy, role: SessionRole, person_kind: PersonKind) -> NameStyle:
    """Which name style applies: viewers by role, otherwise children vs adults."""
    if role is SessionRole.VIEWER:
        return policy.display_names.viewers
    if person_kind is PersonKind.CHILD:
        return policy.display_names.children
    return policy.display_names.adults
