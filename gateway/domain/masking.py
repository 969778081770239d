"""Masked identities (R3): what others and the platform may see of a person."""

from __future__ import annotations

from gateway.domain.models import Person, SessionRole
from gateway.domain.policy import NameStyle


def new_masked_identity(random_bytes: bytes) -> str:
    raise NotImplementedError


def display_name(person: Person, role: SessionRole, style: NameStyle, ordinal: int) -> str:
    raise NotImplementedError


def validate_person_name(name: str) -> str:
    raise NotImplementedError
