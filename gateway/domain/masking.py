"""Masked identities (R3): what others and the platform may see of a person.

The platform and other participants see only an opaque per-session identity and a display name
shaped by policy ("Sam R.", "Sam" or "Student 3"); never a full surname, email or date of birth.
"""

from __future__ import annotations

import base64
import unicodedata

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import Person, PersonKind, SessionRole
from gateway.domain.policy import NameStyle, Policy

MASKED_IDENTITY_PREFIX = "p_"
MIN_IDENTITY_BYTES = 10
MAX_NAME_LENGTH = 100

# Punctuation allowed in a person's name besides letters, combining marks and spaces.
_NAME_PUNCTUATION = frozenset("'\u2019-\u2010.")  # apostrophes, hyphens, full stop

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


def _name_char_allowed(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LM" or char == " " or char in _NAME_PUNCTUATION


def validate_person_name(name: str) -> str:
    """The NFC-normalised name without surrounding spaces, or Refusal(NAME_INVALID).

    Allowed: letters, combining marks, spaces, apostrophes, hyphens and full stops, with at
    least one letter, at most 100 characters. Everything else is refused: control and format
    characters (bidi overrides, zero-width characters), line and paragraph separators, tabs,
    digits, symbols. The message never echoes the name.
    """
    normalised = unicodedata.normalize("NFC", name)
    if not all(_name_char_allowed(c) for c in normalised):
        raise Refusal(
            ErrorCode.NAME_INVALID,
            "a name may contain only letters, spaces, apostrophes, hyphens and full stops",
        )
    stripped = normalised.strip(" ")
    if not stripped:
        raise Refusal(ErrorCode.NAME_INVALID, "a name cannot be empty")
    if len(stripped) > MAX_NAME_LENGTH:
        raise Refusal(ErrorCode.NAME_INVALID, f"a name can be at most {MAX_NAME_LENGTH} characters")
    if not any(unicodedata.category(c)[0] == "L" for c in stripped):
        raise Refusal(ErrorCode.NAME_INVALID, "a name must contain at least one letter")
    return stripped


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
    first = parts[0]
    if style == "first_name" or len(parts) == 1:
        return first
    initial = _initial(parts[-1])
    return f"{first} {initial}." if initial else first


def display_style(policy: Policy, role: SessionRole, person_kind: PersonKind) -> NameStyle:
    """Which name style applies: viewers by role, otherwise children vs adults."""
    if role is SessionRole.VIEWER:
        return policy.display_names.viewers
    if person_kind is PersonKind.CHILD:
        return policy.display_names.children
    return policy.display_names.adults
