"""The incident log (R14, R17): concerns reported in a session, incidents the gateway itself
records (supervision breaches, ...), and how the DSL works through them.

Every change commits with its audit entry ("incident.opened", "incident.note_added",
"incident.closed"). Audit data holds ids and kinds only: never a note's text, a summary or a name.

Who must be told is told through the outbox (services/notifications.py): a concern's and a
supervision breach's messages for the DSL commit with the incident, or neither does. The
incident records that they were queued; whether the DSL was told, and when, is the outbox's
delivery state, shown with the incident (`IncidentDetail.dsl`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.incidents import (
    CONCERN_SUMMARY,
    DSL_NOTIFICATION_QUEUED,
    KIND_CONCERN,
    KIND_SUPERVISION_BREACH,
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
from gateway.domain.outbox import DslNotice, OutboxMessage
from gateway.services.notifications import Notifications, PolicyFor
from gateway.services.organisations import new_id
from gateway.services.ports import Alerts, Organisation

LIST_LIMIT = 500
log = logging.getLogger(__name__)


class IncidentStoreProtocol(Protocol):
    """Durable incidents; every change commits with its audit events, or raises."""

    async def open_incident(
        self,
        incident: Incident,
        events: Sequence[AuditEvent],
        messages: Sequence[OutboxMessage] = (),
    ) -> Incident: ...
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
    """Who the participants are and which policy their organisation follows (the `Store` port
    provides it)."""

    async def participant(self, org_id: str, participant_id: str) -> Participant | None: ...
    async def organisation(self, org_id: str) -> Organisation | None: ...


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    incident: Incident
    notes: Sequence[IncidentNote] | None  # None when the viewer may not read them
    rights: ViewerRights
    dsl: DslNotice  # whether, and when, the DSL was told (the outbox's delivery state)


@dataclass(frozen=True, slots=True)
class IncidentListing:
    items: Sequence[Incident]
    rights: ViewerRights


# (org id, session id, actor, reason) -> recordings held (services/recordings.py)
HoldRecordings = Callable[[str, str, str, str], Awaitable[int]]


class IncidentService:
    def __init__(
        self,
        store: IncidentStoreProtocol,
        registry_lookup: RegistryLookup,
        alerts: Alerts,
        notifications: Notifications,
        policies: PolicyFor,
        clock: Clock,
        *,
        hold_recordings: HoldRecordings | None = None,
    ) -> None:
        self._hold_recordings = hold_recordings  # R14: a concern holds the session's recordings
        self._store = store
        self._registry = registry_lookup
        self._alerts = alerts
        self._notifications = notifications
        self._policies = policies
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
        """ "Report a concern" from inside a session (R17): an incident and the DSL's message
        (e-mail and the organisation's webhook), committed together; then a live alert to the
        people in the session's host panel. The DSL's message names the reporter by their
        display name in the session; the host's alert says only that a concern was raised and
        the DSL is being told (the host may be the person it is about), unless the policy's
        `[concerns] host_sees_reporter`. Neither carries the note."""
        participant = await self._registry.participant(org_id, participant_id)
        if (
            participant is None
            or participant.session_id != session_id
            or participant.masked_identity != masked_identity
        ):
            raise Refusal(ErrorCode.NOT_FOUND, "No such participant.")
        incident_id = new_id()
        incident = Incident(
            id=incident_id,
            org_id=org_id,
            session_id=session_id,
            reported_by_kind=ReporterKind.PARTICIPANT,
            reporter_identity=masked_identity,
            reporter_participant_id=participant.id,
            kind=KIND_CONCERN,
            summary=clean_summary(note, CONCERN_SUMMARY),
            what_gateway_did=(DSL_NOTIFICATION_QUEUED,),
            status=IncidentStatus.OPEN,
            created_at=self._clock.now(),
        )
        messages = self._notifications.concern_raised(org_id, session_id, incident_id, display_name)
        stored = await self._store.open_incident(
            incident,
            [
                _opened(
                    incident,
                    actor=masked_identity,
                    extra={"participant": participant.id, "note": note is not None},
                )
            ],
            messages,
        )
        # Durable first ("no audit, no action"), then the alert: the DSL is told from the
        # outbox even if no one was watching the session's alerts.
        alert: dict[str, object] = {
            "kind": KIND_CONCERN,
            "incident_id": stored.id,
            "dsl": "being_told",
        }
        if await self._host_sees_reporter(org_id):
            alert["display_name"] = display_name
        await self._publish(org_id, session_id, alert)
        if self._hold_recordings is not None:
            try:  # the concern stands whatever happens here; the DSL can still hold by hand
                await self._hold_recordings(
                    org_id, session_id, "system:concern", f"concern reported (incident {stored.id})"
                )
            except Exception:
                log.exception("recordings of a concern not held")
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
        did about it. The caller has already acted (held children, alerted the host). A
        supervision breach in a session is also sent to the DSL, queued with the incident (an
        "alerted_dsl" the caller passes is recorded as what it is then: queued)."""
        incident_id = new_id()
        incident = Incident(
            id=incident_id,
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
        # Only what is queued here is recorded as queued.
        others = tuple(a for a in incident.what_gateway_did if a != DSL_NOTIFICATION_QUEUED)
        messages: list[OutboxMessage] = []
        if incident.kind == KIND_SUPERVISION_BREACH and session_id is not None:
            actions = (*others, DSL_NOTIFICATION_QUEUED)
            messages = self._notifications.supervision_breach(
                org_id, session_id, incident_id, actions
            )
        else:
            actions = others
        incident = replace(incident, what_gateway_did=actions)
        return await self._store.open_incident(
            incident, [_opened(incident, actor=SYSTEM_REPORTER, extra={})], messages
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
        dsl = await self._notifications.dsl_notice(org.id, incident.id)
        return IncidentDetail(incident, notes, rights, dsl)

    async def _host_sees_reporter(self, org_id: str) -> bool:
        """The policy's choice; when it cannot be read, the host is not told who (the safe
        side: the DSL is told either way)."""
        try:
            org = await self._registry.organisation(org_id)
            if org is None:
                return False
            return self._policies.for_path(org.policy_path).concerns.host_sees_reporter
        except Exception:
            log.exception("the policy for a concern's alert could not be read")
            return False

    async def _publish(self, org_id: str, session_id: str, alert: dict[str, object]) -> None:
        """The live alert is best effort: the concern is stored and the DSL's message queued
        already, so a fan-out that is down (Redis) must not turn the child's report into an
        error (a retry would file it twice)."""
        try:
            await self._alerts.publish(org_id, session_id, alert)
        except Exception:
            log.exception("the alert for a concern could not be published")


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
