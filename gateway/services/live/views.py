"""What the live plane shows people: the join answer and state events (masked identities only,
R3; plain words for the page, R8, R17)."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.domain.models import Decision, Grants, Outcome
from gateway.domain.recording_status import RECORDING_AVAILABLE
from gateway.services.admission import JoinResult
from gateway.services.live.state import Event

__all__ = ["grants_dict", "join_view", "state_event"]


def grants_dict(grants: Grants) -> dict[str, object]:
    return {"can_publish": grants.can_publish, "can_subscribe": grants.can_subscribe}


def state_event(outcome: Outcome, grants: Grants, reasons: list[str]) -> Event:
    return {
        "type": "state",
        "outcome": outcome.value,
        "grants": grants_dict(grants),
        "reasons": reasons,
    }


def join_view(result: JoinResult, media: Mapping[str, object] | None) -> dict[str, object]:
    """The join answer."""
    decision: Decision = result.decision
    policy = result.policy
    purpose = result.session.recording_purpose
    notice = None
    if purpose is not None and not RECORDING_AVAILABLE:
        notice = "This session is not being recorded."
    elif purpose is not None and purpose in policy.recording.purposes:
        notice = (
            "This session may be recorded, only if everyone in it has agreed in writing. "
            f"Why: {policy.recording.purposes[purpose].description}"
        )
    view: dict[str, object] = {
        "outcome": decision.outcome.value,
        "reasons": list(decision.reasons),
        "grants": decision.as_dict()["grants"],
        "policy_version": decision.policy_version,
        "session": {
            "id": result.session.id,
            "kind": result.session.kind.value,
            "title": result.record.session_title,
            "recording_purpose": purpose,
            "recording_notice": notice,
            "recording_why": (
                policy.recording.purposes[purpose].description
                if purpose is not None and purpose in policy.recording.purposes
                else None
            ),
            "starts_at": result.session.starts_at.isoformat(),
            "ends_at": result.session.ends_at.isoformat(),
            "host_display_name": result.host_display_name,
            "safeguarding_contact": policy.contact.safeguarding_contact,
        },
        "participant": {
            "identity": result.participant.masked_identity,
            "display_name": result.participant.display_name,
            "role": result.participant.role.value,
        },
    }
    if media is not None:
        view["media"] = dict(media)
    return view
