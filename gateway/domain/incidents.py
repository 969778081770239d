"""The incident log (R14, R17): what an incident is, who may handle it, and how it is shown.

An incident is opened by a participant ("report a concern"), a member of staff, or the gateway
itself (a supervision breach, an invite used on another device). Its content never changes
afterwards: staff add notes (append-only) and it is closed once. Only the safeguarding lead
(DSL) or an admin handles incidents; only the DSL sees which participant reported a concern,
everyone else sees the reporter's masked identity (R3).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import Staff, StaffRole
from gateway.domain.outbox import DslNotice

SUMMARY_MAX = 2000
NOTE_MAX = 4000
ACTIONS_MAX = 20
SYSTEM_REPORTER = "gateway"
CONCERN_SUMMARY = "A participant reported a concern."

KIND_CONCERN = "concern"
KIND_SUPERVISION_BREACH = "supervision_breach"
KIND_OTHER_DEVICE = "other_device"

# What the gateway did about an incident; recorded with it. Open-ended (other services add
# theirs), but always a short snake_case word, never free text. The column is frozen when the
# incident is opened (migration 0002), so it holds only what was true then: the DSL's message
# was queued in the outbox with the incident, never that the DSL was told. Whether and when the
# DSL was told comes from the outbox's delivery state (`DslNotice`), shown next to it.
DSL_NOTIFICATION_QUEUED = "dsl_notification_queued"
ALERTED_HOST = "alerted_host"
# Recorded by incidents opened before the outbox (and still passed by callers that alerted the
# host themselves): read as "queued", never stored again for a new incident.
ALERTED_DSL = "alerted_dsl"

_WORD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Bidirectional overrides and isolates can make text read differently from what was stored.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ALLOWED_CONTROLS = frozenset("\n\t")


class IncidentStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ReporterKind(enum.StrEnum):
    PARTICIPANT = "participant"
    STAFF = "staff"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    org_id: str
    session_id: str | None
    reported_by_kind: ReporterKind
    reporter_identity: str  # masked identity, staff id, or "gateway"
    reporter_participant_id: str | None  # who reported, shown to the DSL only
    kind: str
    summary: str
    what_gateway_did: tuple[str, ...]
    status: IncidentStatus
    created_at: datetime
    closed_at: datetime | None = None
    closed_by: str | None = None  # a staff id


@dataclass(frozen=True, slots=True)
class IncidentNote:
    id: str
    incident_id: str
    author_staff_id: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ViewerRights:
    """What a member of staff looking at incidents may see."""

    reveal_reporter: bool  # which participant reported (DSL only)
    read_notes: bool  # the case notes (those who may handle incidents)


# rules ------------------------------------------------------------------------------------------
def may_handle(staff: Staff) -> bool:
    """Adding notes and closing: the safeguarding lead or an admin."""
    return bool(staff.roles & {StaffRole.DSL, StaffRole.ADMIN})


def check_may_handle(staff: Staff) -> None:
    if not may_handle(staff):
        raise Refusal(
            ErrorCode.FORBIDDEN, "Only the safeguarding lead or an admin can handle incidents."
        )


def viewer_rights(staff: Staff | None) -> ViewerRights:
    """No named viewer sees what any member of staff may see: the masked view, no notes."""
    if staff is None:
        return ViewerRights(reveal_reporter=False, read_notes=False)
    return ViewerRights(reveal_reporter=StaffRole.DSL in staff.roles, read_notes=may_handle(staff))


def check_can_close(incident: Incident) -> None:
    if incident.status is not IncidentStatus.OPEN:
        raise Refusal(ErrorCode.CONFLICT, "The incident is already closed.")


def clean_text(text: str, limit: int, what: str) -> str:
    """Free text as stored: stripped, 1..limit characters, no control or bidi characters
    besides new lines and tabs. The message names the rule, never the text."""
    text = text.replace("\r\n", "\n").strip()
    if not 1 <= len(text) <= limit:
        raise Refusal(ErrorCode.BODY_INVALID, f"{what} is 1 to {limit} characters.")
    for char in text:
        if char in _BIDI or (
            char not in _ALLOWED_CONTROLS and (ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0)
        ):
            raise Refusal(ErrorCode.BODY_INVALID, f"{what} holds characters that are not allowed.")
    return text


def clean_summary(text: str | None, default: str) -> str:
    if text is None or not text.strip():
        return default
    return clean_text(text, SUMMARY_MAX, "A summary")


def clean_note(text: str) -> str:
    return clean_text(text, NOTE_MAX, "A note")


def check_word(value: str, what: str) -> str:
    if not _WORD.match(value):
        raise Refusal(ErrorCode.BODY_INVALID, f"{what} is a short lower-case word.")
    return value


def clean_actions(actions: Iterable[str]) -> tuple[str, ...]:
    """Checked actions, each once. A claim that the DSL was alerted becomes what is true when
    the incident is opened: their message is queued (the outbox tells them, later)."""
    words = (check_word(a, "An action") for a in actions)
    cleaned = tuple(
        dict.fromkeys(DSL_NOTIFICATION_QUEUED if word == ALERTED_DSL else word for word in words)
    )
    if len(cleaned) > ACTIONS_MAX:
        raise Refusal(ErrorCode.BODY_INVALID, f"At most {ACTIONS_MAX} actions are recorded.")
    return cleaned


# views ------------------------------------------------------------------------------------------
def incident_view(incident: Incident, reveal_reporter: bool) -> dict[str, object]:
    """An incident as staff see it. The reporting participant's id only when `reveal_reporter`
    (the DSL); otherwise the reporter is known only by their masked identity."""
    reporter: dict[str, object] = {
        "kind": incident.reported_by_kind.value,
        "identity": incident.reporter_identity,
    }
    if reveal_reporter and incident.reporter_participant_id is not None:
        reporter["participant_id"] = incident.reporter_participant_id
    return {
        "id": incident.id,
        "session_id": incident.session_id,
        "kind": incident.kind,
        "status": incident.status.value,
        "reported_by": reporter,
        "summary": incident.summary,
        "what_gateway_did": list(incident.what_gateway_did),
        "created_at": incident.created_at.isoformat(),
        "closed_at": incident.closed_at.isoformat() if incident.closed_at else None,
        "closed_by": incident.closed_by,
    }


def note_view(note: IncidentNote) -> dict[str, object]:
    return {
        "id": note.id,
        "incident_id": note.incident_id,
        "author_staff_id": note.author_staff_id,
        "text": note.text,
        "created_at": note.created_at.isoformat(),
    }


def dsl_notice_view(notice: DslNotice) -> dict[str, object]:
    """Whether the DSL has been told: "told" once a mail server accepted their message,
    "being_told" while it waits (retried, escalated when overdue), "not_notified" when no
    message was queued (an incident the DSL is not sent, or one from before the outbox)."""
    if notice.delivered_at is not None:
        state = "told"
    elif notice.queued:
        state = "being_told"
    else:
        state = "not_notified"
    return {
        "state": state,
        "told_at": notice.delivered_at.isoformat() if notice.delivered_at else None,
        "escalated_at": notice.escalated_at.isoformat() if notice.escalated_at else None,
    }


def incident_detail_view(
    incident: Incident,
    rights: ViewerRights,
    notes: Sequence[IncidentNote] | None,
    dsl: DslNotice | None = None,
) -> dict[str, object]:
    view = incident_view(incident, rights.reveal_reporter)
    if dsl is not None:
        view["dsl_notification"] = dsl_notice_view(dsl)
    if rights.read_notes and notes is not None:
        view["notes"] = [note_view(note) for note in notes]
    return view
