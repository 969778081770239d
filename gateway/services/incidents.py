"""The incident log (R14, R17): concerns reported in a session, incidents the gateway itself
records (supervision breaches, ...), and how the DSL works through them.

Every change commits with its audit entry ("incident.opened", "incident.note_added",
"incident.closed"). Audit data holds ids and kinds only: never a note's text, a summary or a name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.incidents import (
    ALERTED_DSL,
    ALERTED_HOST,
    CONCERN_SUMMARY,
    KIND_CONCERN,
    SUMMARY_MAX,
    SYSTEM_REPORTER,
    Incident,
    IncidentNote,
    IncidentStatus,
    ReporterKind,
    ViewerRights,
    check_can_close,
    check_may_handle,
    check_word,
    clean_actions,
    clean_note,
    clean_summary,
    clean_text,
    viewer_rights,
)
from gateway.domain.models import Participant, Staff
from gateway.services.organisations import new_id
from gateway.services.ports import Alerts, Organisation

LIST_LIMIT = 500


class IncidentStoreProtocol(Protocol):
    """Durable incidents; every change commits with its audit events, or raises."""

    async def open_incident(self, incident: Incident, events: Sequence[AuditEvent]) -> Incident: ...
    async def add_note(
        self, org_id: str, note: IncidentNote, events: Sequence[AuditEvent]
    ) -> IncidentNote: ...
    async def close_incident(
        self, org_id: str, incident_id: str, staff_id: str, events: Sequence[AuditEvent]
    ) -> Incident: ...
    async def incident(self, org_id: str, incident_id: str) -> Incident | None: ...
    async def incidents(
        self,
        org_id: str,
        status: IncidentStatus | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[Incident]: ...
    async def notes(self, org_id: str, incident_id: str) -> Sequence[IncidentNote]: ...


class RegistryLookup(Protocol):
    """Who the participants are (the `Store` port provides it)."""

    async def participant(self, org_id: str, participant_id: str) -> Participant | None: ...


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    incident: Incident
    notes: Sequence[IncidentNote] | None  # None when the viewer may not read them
    rights: ViewerRights


@dataclass(frozen=True, slots=True)
class IncidentListing:
    items: Sequence[Incident]
    rights: ViewerRights


class IncidentService:
    def __init__(
        self,
        store: IncidentStoreProtocol,
        registry_lookup: RegistryLookup,
        alerts: Alerts,
        clock: Clock,
    ) -> None:
        self._store = store
        self._registry = registry_lookup
        self._alerts = alerts
        self._clock = clock

    # opening ------------------------------------------------------------------------------------
    async def report_concern(
        self,
        org_id: str,
        session_id: str,
        participant_id: str,
        masked_identity: str,
        display_name: str,
        note: str | None,
    ) -> Incident:
        """ "Report a concern" from inside a session (R17): an incident, then an alert to the
        people looking after the session (host and DSL). The alert names the reporter by their
        display name in the session only and never carries the note."""
        participant = await self._registry.participant(org_id, participant_id)
        if (
            participant is None
            or participant.session_id != session_id
            or participant.masked_identity != masked_identity
        ):
            raise Refusal(ErrorCode.NOT_FOUND, "No such participant.")
        actions = (ALERTED_DSL, ALERTED_HOST)
        incident = Incident(
            id=new_id(),
            org_id=org_id,
            session_id=session_id,
            reported_by_kind=ReporterKind.PARTICIPANT,
            reporter_identity=masked_identity,
            reporter_participant_id=participant.id,
            kind=KIND_CONCERN,
            summary=clean_summary(note, CONCERN_SUMMARY),
            what_gateway_did=actions,
            status=IncidentStatus.OPEN,
            created_at=self._clock.now(),
        )
        stored = await self._store.open_incident(
            incident,
            [
                _opened(
                    incident,
                    actor=masked_identity,
                    extra={"participant": participant.id, "note": note is not None},
                )
            ],
        )
        # Durable first ("no audit, no action"), then the alert: the DSL's incident list shows
        # the concern even if no one was watching the session's alerts.
        await self._alerts.publish(
            org_id,
            session_id,
            {"kind": KIND_CONCERN, "incident_id": stored.id, "display_name": display_name},
        )
        return stored

    async def record_system_incident(
        self,
        org_id: str,
        session_id: str | None,
        kind: str,
        summary: str,
        actions: Sequence[str],
    ) -> Incident:
        """An incident the gateway itself records (e.g. a supervision breach), with what it
        did about it. The caller has already acted (held children, alerted the host)."""
        incident = Incident(
            id=new_id(),
            org_id=org_id,
            session_id=session_id,
            reported_by_kind=ReporterKind.SYSTEM,
            reporter_identity=SYSTEM_REPORTER,
            reporter_participant_id=None,
            kind=check_word(kind, "An incident kind"),
            summary=clean_text(summary, SUMMARY_MAX, "A summary"),
            what_gateway_did=clean_actions(actions),
            status=IncidentStatus.OPEN,
            created_at=self._clock.now(),
        )
        return await self._store.open_incident(
            incident, [_opened(incident, actor=SYSTEM_REPORTER, extra={})]
        )

    # handling -----------------------------------------------------------------------------------
    # `staff` is the member of staff signed in to the pages (never someone an API key names).
    async def add_note(
        self, org: Organisation, staff: Staff, incident_id: str, text: str
    ) -> IncidentNote:
        incident = await self._incident(org, incident_id)
        _check_member(org, staff)
        check_may_handle(staff)
        note = IncidentNote(new_id(), incident.id, staff.id, clean_note(text), self._clock.now())
        event = AuditEvent(
            "incident.note_added",
            f"staff:{staff.id}",
            org.id,
            session_id=incident.session_id,
            person_id=staff.id,
            data={"incident": incident.id, "note": note.id},
        )
        return await self._store.add_note(org.id, note, [event])

    async def close(self, org: Organisation, staff: Staff, incident_id: str) -> IncidentDetail:
        incident = await self._incident(org, incident_id)
        _check_member(org, staff)
        check_may_handle(staff)
        check_can_close(incident)
        event = AuditEvent(
            "incident.closed",
            f"staff:{staff.id}",
            org.id,
            session_id=incident.session_id,
            person_id=staff.id,
            data={"incident": incident.id},
        )
        closed = await self._store.close_incident(org.id, incident.id, staff.id, [event])
        return await self._detail(org, closed, viewer_rights(staff))

    # reading ------------------------------------------------------------------------------------
    async def get(
        self, org: Organisation, incident_id: str, viewer: Staff | None = None
    ) -> IncidentDetail:
        """One incident, as the signed-in member of staff may see it (masked without one: an
        integration's API key)."""
        incident = await self._incident(org, incident_id)
        return await self._detail(org, incident, _rights(org, viewer))

    async def list(
        self,
        org: Organisation,
        *,
        status: IncidentStatus | None = None,
        session_id: str | None = None,
        viewer: Staff | None = None,
        limit: int = 100,
    ) -> IncidentListing:
        if not 1 <= limit <= LIST_LIMIT:
            raise Refusal(ErrorCode.QUERY_INVALID, f"limit is 1 to {LIST_LIMIT}.")
        rights = _rights(org, viewer)
        items = await self._store.incidents(org.id, status, session_id, limit)
        return IncidentListing(items, rights)

    # helpers ------------------------------------------------------------------------------------
    async def _incident(self, org: Organisation, incident_id: str) -> Incident:
        incident = await self._store.incident(org.id, incident_id)
        if incident is None:
            raise Refusal(ErrorCode.NOT_FOUND, "No such incident.")
        return incident

    async def _detail(
        self, org: Organisation, incident: Incident, rights: ViewerRights
    ) -> IncidentDetail:
        notes = await self._store.notes(org.id, incident.id) if rights.read_notes else None
        return IncidentDetail(incident, notes, rights)


def _check_member(org: Organisation, staff: Staff) -> None:
    if staff.org_id != org.id:
        raise Refusal(ErrorCode.NOT_FOUND, "No such incident.")


def _rights(org: Organisation, viewer: Staff | None) -> ViewerRights:
    if viewer is not None:
        _check_member(org, viewer)
    return viewer_rights(viewer)


def _opened(incident: Incident, actor: str, extra: dict[str, object]) -> AuditEvent:
    return AuditEvent(
        "incident.opened",
        actor,
        incident.org_id,
        session_id=incident.session_id,
        data={
            "incident": incident.id,
            "kind": incident.kind,
            "reported_by": incident.reported_by_kind.value,
            "actions": list(incident.what_gateway_did),
            **extra,
        },
    )
