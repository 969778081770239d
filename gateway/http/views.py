"""How domain objects are shown in the JSON API. Organisation views carry what the
organisation itself registered; session-facing views carry masked identities only (R3).

Every answer is built through a pydantic model below and dumped from it: the same models are
the response schemas of the OpenAPI document (`Route.response`), so a generated client reads
exactly what the server writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

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

# Instants are written as Python's isoformat ("2026-11-23T10:00:00+00:00"), as they always were.
IsoInstant = Annotated[
    datetime,
    PlainSerializer(lambda instant: instant.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def render(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class VettingView(View):
    kind: str
    checked_on: date
    expires_on: date
    expired: bool


class StaffView(View):
    id: str
    kind: Literal["staff"]
    name: str
    email: str
    roles: list[Literal["tutor", "observer", "dsl", "admin"]]
    vetting: VettingView | None


class ChildView(View):
    id: str
    kind: Literal["child"]
    name: str
    date_of_birth: date
    guardian_ids: list[str]


class GuardianView(View):
    id: str
    kind: Literal["guardian"]
    name: str
    contact: str


class StaffList(View):
    items: list[StaffView]


class ChildList(View):
    items: list[ChildView]


class GuardianList(View):
    items: list[GuardianView]


class EvidenceView(View):
    method: Literal["signed_form", "e_signature", "written_email"]
    reference: str
    dated: date


class ConsentRecordView(View):
    id: str
    subject_kind: Literal["staff", "child", "guardian"]
    subject_id: str
    purpose: str
    action: Literal["give", "withdraw"]
    given_by_kind: Literal["staff", "child", "guardian"]
    given_by_id: str
    evidence: EvidenceView | None
    recorded_at: IsoInstant


class PurposeStateView(View):
    valid: bool
    reasons: list[str]
    record_ids: list[str]
    assent_required: bool


class ConsentStateView(View):
    purposes: dict[str, PurposeStateView]
    history: list[ConsentRecordView]


SessionStatus = Literal["upcoming", "live", "ended"]


class SessionView(View):
    id: str
    kind: Literal["tutoring", "group", "livestream"]
    title: str | None
    host_staff_id: str
    starts_at: IsoInstant
    ends_at: IsoInstant
    recording_purpose: str | None
    password_required: bool
    out_of_hours_approved_by: str | None
    ended_at: IsoInstant | None


class CreatedSessionView(SessionView):
    password: str | None = None  # the generated password, shown once; stored hashed


class SessionSummaryView(SessionView):
    status: SessionStatus


class SessionList(View):
    items: list[SessionSummaryView]
    next_cursor: str | None


class ParticipantView(View):
    id: str
    person_kind: Literal["staff", "child", "guardian"]
    person_id: str
    role: Literal["host", "observer", "child", "guardian", "viewer"]
    masked_identity: str
    display_name: str


class ParticipantList(View):
    items: list[ParticipantView]


class InviteView(View):
    id: str
    session_id: str
    participant_id: str
    expires_at: IsoInstant
    revoked: bool
    redeemed: bool


class IssuedInviteView(InviteView):
    token: str  # shown once
    link: str


class AuditEntryView(View):
    seq: int
    at: str
    org_id: str | None
    kind: str
    actor: str
    session_id: str | None
    person_id: str | None
    data: dict[str, Any]


class AuditPage(View):
    items: list[AuditEntryView]
    next_after: str | None = Field(
        description="pass as `after` for the next page (one position per chain); null on the last"
    )


class PolicyView(View):
    version: int | str
    label: str
    text: str


class Items(View):
    """A page of records whose shape belongs to another module."""

    items: list[dict[str, Any]]


# Incidents and notifications are rendered by their own modules (domain/incidents.py,
# http/notifications_api.py); these models state the shape they write, and the schema
# conformance check of tests/http/test_fuzz.py keeps the two together. They allow fields they
# do not name yet, so a field added there is not a broken answer.
class ForeignView(View):
    model_config = ConfigDict(frozen=True, extra="allow")


class ReporterView(ForeignView):
    kind: str
    identity: str | None
    participant_id: str | None = None  # the DSL only


class IncidentView(ForeignView):
    id: str
    session_id: str | None
    kind: str
    status: Literal["open", "closed"]
    reported_by: ReporterView
    summary: str
    what_gateway_did: list[str]
    created_at: IsoInstant
    closed_at: IsoInstant | None
    closed_by: str | None


class IncidentNoteView(ForeignView):
    id: str
    incident_id: str
    author_staff_id: str
    text: str
    created_at: IsoInstant


class IncidentDetailView(IncidentView):
    notes: list[IncidentNoteView] | None = None  # to those who may read them


class IncidentList(ForeignView):
    items: list[IncidentView]


class EmailChannelView(ForeignView):
    host: str
    port: int
    security: str
    from_address: str
    dsl_address: str
    second_contact_address: str | None
    username: str | None
    password_set: bool


class WebhookChannelView(ForeignView):
    url: str
    secret_set: bool


class ChannelsView(ForeignView):
    email: EmailChannelView | None
    webhook: WebhookChannelView | None


class DeliveryView(ForeignView):
    id: str
    notification_id: str
    kind: str
    recipient: str
    channel: str
    session_id: str | None
    incident_id: str | None
    state: str
    attempts: int
    last_error: str | None
    created_at: IsoInstant
    next_attempt_at: IsoInstant | None
    delivered_at: IsoInstant | None
    escalated_at: IsoInstant | None


class DeliveryList(ForeignView):
    items: list[DeliveryView]


class Readmitted(View):
    readmitted: bool


class Unlocked(View):
    unlocked: bool


def person_model(person: Person, today: date | None = None) -> StaffView | ChildView | GuardianView:
    if isinstance(person, Staff):
        vetting = person.vetting
        return StaffView(
            id=person.id,
            kind="staff",
            name=person.name,
            email=person.email,
            roles=sorted(role.value for role in person.roles),
            vetting=None
            if vetting is None
            else VettingView(
                kind=vetting.kind,
                checked_on=vetting.checked_on,
                expires_on=vetting.expires_on,
                expired=today is not None and today >= vetting.expires_on,
            ),
        )
    if isinstance(person, Child):
        return ChildView(
            id=person.id,
            kind="child",
            name=person.name,
            date_of_birth=person.date_of_birth,
            guardian_ids=sorted(person.guardian_ids),
        )
    assert isinstance(person, Guardian)
    return GuardianView(id=person.id, kind="guardian", name=person.name, contact=person.contact)


def person_view(person: Person, today: date | None = None) -> dict[str, Any]:
    return person_model(person, today).render()


def _consent_record(record: ConsentRecord) -> ConsentRecordView:
    evidence = record.evidence
    return ConsentRecordView.model_validate(
        {
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
                "dated": evidence.dated,
            },
            "recorded_at": record.recorded_at,
        }
    )


def consent_record_view(record: ConsentRecord) -> dict[str, Any]:
    return _consent_record(record).render()


def consent_state_view(
    states: Mapping[str, ConsentState], history: Sequence[ConsentRecord]
) -> dict[str, Any]:
    return ConsentStateView(
        purposes={
            purpose: PurposeStateView(
                valid=state.valid,
                reasons=list(state.reasons),
                record_ids=list(state.record_ids),
                assent_required=state.assent_required,
            )
            for purpose, state in states.items()
        },
        history=[_consent_record(record) for record in history],
    ).render()


def _session_fields(session: Session, title: str | None) -> dict[str, Any]:
    return {
        "id": session.id,
        "kind": session.kind.value,
        "title": title,
        "host_staff_id": session.host_staff_id,
        "starts_at": session.starts_at,
        "ends_at": session.ends_at,
        "recording_purpose": session.recording_purpose,
        "password_required": session.password_required,
        "out_of_hours_approved_by": session.out_of_hours_approved_by,
        "ended_at": session.ended_at,
    }


def session_view(session: Session, title: str | None = None) -> dict[str, Any]:
    return SessionView.model_validate(_session_fields(session, title)).render()


def created_session_view(session: Session, title: str, password: str | None) -> dict[str, Any]:
    fields = {**_session_fields(session, title), "password": password}
    return CreatedSessionView.model_validate(fields).render()


def session_list_view(
    sessions: Sequence[tuple[Session, str | None, str]], next_cursor: str | None
) -> dict[str, Any]:
    return SessionList(
        items=[
            SessionSummaryView.model_validate({**_session_fields(s, title), "status": status})
            for s, title, status in sessions
        ],
        next_cursor=next_cursor,
    ).render()


def _participant(participant: Participant) -> ParticipantView:
    return ParticipantView.model_validate(
        {
            "id": participant.id,
            "person_kind": participant.person_kind.value,
            "person_id": participant.person_id,
            "role": participant.role.value,
            "masked_identity": participant.masked_identity,
            "display_name": participant.display_name,
        }
    )


def participant_view(participant: Participant) -> dict[str, Any]:
    return _participant(participant).render()


def participant_list_view(participants: Sequence[Participant]) -> dict[str, Any]:
    return ParticipantList(items=[_participant(p) for p in participants]).render()


def _invite_fields(invite: Invite) -> dict[str, Any]:
    return {
        "id": invite.id,
        "session_id": invite.session_id,
        "participant_id": invite.participant_id,
        "expires_at": invite.expires_at,
        "revoked": invite.revoked_at is not None,
        "redeemed": invite.device_hash is not None,
    }


def invite_view(invite: Invite) -> dict[str, Any]:
    return InviteView.model_validate(_invite_fields(invite)).render()


def issued_invite_view(invite: Invite, token: str, link: str) -> dict[str, Any]:
    fields = {**_invite_fields(invite), "token": token, "link": link}
    return IssuedInviteView.model_validate(fields).render()
