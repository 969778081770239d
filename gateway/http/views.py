"""How domain objects are shown in the JSON API. Organisation views carry what the
organisation itself registered; session-facing views carry masked identities only (R3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from gateway.domain.consent import ConsentState
from gateway.domain.models import (
    Child,
    ConsentRecord,
    Guardian,
    Invite,
    Participant,
    Person,
    Session,
    Staff,
)


def person_view(person: Person, today: date | None = None) -> dict[str, object]:
    if isinstance(person, Staff):
        vetting = person.vetting
        return {
            "id": person.id,
            "kind": "staff",
            "name": person.name,
            "email": person.email,
            "roles": sorted(role.value for role in person.roles),
            "vetting": None
            if vetting is None
            else {
                "kind": vetting.kind,
                "checked_on": vetting.checked_on.isoformat(),
                "expires_on": vetting.expires_on.isoformat(),
                "expired": today is not None and today >= vetting.expires_on,
            },
        }
    if isinstance(person, Child):
        return {
            "id": person.id,
            "kind": "child",
            "name": person.name,
            "date_of_birth": person.date_of_birth.isoformat(),
            "guardian_ids": sorted(person.guardian_ids),
        }
    assert isinstance(person, Guardian)
    return {"id": person.id, "kind": "guardian", "name": person.name, "contact": person.contact}


def consent_record_view(record: ConsentRecord) -> dict[str, object]:
    evidence = record.evidence
    return {
        "id": record.id,
        "subject_kind": record.subject_kind.value,
        "subject_id": record.subject_id,
        "purpose": record.purpose,
        "action": record.action.value,
        "given_by_kind": record.given_by_kind.value,
        "given_by_id": record.given_by_id,
        "evidence": None
        if evidence is None
        else {
            "method": evidence.method.value,
            "reference": evidence.reference,
            "dated": evidence.dated.isoformat(),
        },
        "recorded_at": record.recorded_at.isoformat(),
    }


def consent_state_view(
    states: Mapping[str, ConsentState], history: Sequence[ConsentRecord]
) -> dict[str, object]:
    return {
        "purposes": {
            purpose: {
                "valid": state.valid,
                "reasons": list(state.reasons),
                "record_ids": list(state.record_ids),
                "assent_required": state.assent_required,
            }
            for purpose, state in states.items()
        },
        "history": [consent_record_view(record) for record in history],
    }


def session_view(session: Session, title: str | None = None) -> dict[str, object]:
    return {
        "id": session.id,
        "kind": session.kind.value,
        "title": title,
        "host_staff_id": session.host_staff_id,
        "starts_at": session.starts_at.isoformat(),
        "ends_at": session.ends_at.isoformat(),
        "recording_purpose": session.recording_purpose,
        "password_required": session.password_required,
        "out_of_hours_approved_by": session.out_of_hours_approved_by,
        "ended_at": session.ended_at.isoformat() if session.ended_at else None,
    }


def participant_view(participant: Participant) -> dict[str, object]:
    return {
        "id": participant.id,
        "person_kind": participant.person_kind.value,
        "person_id": participant.person_id,
        "role": participant.role.value,
        "masked_identity": participant.masked_identity,
        "display_name": participant.display_name,
    }


def invite_view(invite: Invite) -> dict[str, object]:
    return {
        "id": invite.id,
        "session_id": invite.session_id,
        "participant_id": invite.participant_id,
        "expires_at": invite.expires_at.isoformat(),
        "revoked": invite.revoked_at is not None,
        "redeemed": invite.device_hash is not None,
    }
