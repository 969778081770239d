"""What the live plane shows people: the join answer and state events (masked identities only,
R3; plain words for the page, R8, R17)."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.domain.models import Decision, Grants, Outcome, SessionRole
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


def join_view(
    result: JoinResult,
    media: Mapping[str, object] | None,
    recording: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The join answer; `recording`: whether a recording runs now, and whether this person is
    in it (services/live/recording.py `status`)."""
    decision: Decision = result.decision
    policy = result.policy
    purpose = result.session.recording_purpose
    running = bool(recording and recording.get("active"))
    may_record = RECORDING_AVAILABLE and bool(policy.recording.purposes)
    notice = None
    if running:
        notice = "This session is being recorded, only for those who have agreed in writing."
    elif purpose is not None and not RECORDING_AVAILABLE:
        notice = "This session is not being recorded."
    elif purpose is not None and purpose in policy.recording.purposes:
        notice = (
            "This session may be recorded, only if everyone in it has agreed in writing. "
            f"Why: {policy.recording.purposes[purpose].description}"
        )
    role = result.participant.role
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
            # R8: a child is asked on the day whether they are happy to be recorded, wherever
            # the host may start a recording (any purpose the policy lists).
            "recording_ask_today": may_record and role is SessionRole.CHILD,
            "recording": dict(recording) if recording is not None else {"active": False},
            # The purposes the host may record for (the host's Start control only).
            "recording_purposes": (
                [
                    {"name": name, "why": spec.description, "audio_only": spec.audio_only}
                    for name, spec in sorted(policy.recording.purposes.items())
                ]
                if may_record and role is SessionRole.HOST
                else []
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
