"""The JSON API under /v1: each handler parses, calls one service, renders."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, Field

from gateway.clock import to_us
from gateway.domain.audit_cursor import MAX_LENGTH as CURSOR_MAX_LENGTH
from gateway.domain.audit_cursor import PATTERN as CURSOR_PATTERN
from gateway.domain.audit_cursor import AuditCursor
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.hours import local_date
from gateway.domain.models import (
    ConsentAction,
    Evidence,
    EvidenceMethod,
    PersonKind,
    SessionKind,
    SessionRole,
    StaffRole,
    Vetting,
)
from gateway.http.bodies import (
    ASCII_DIGITS,
    ChildBody,
    ChildPatchBody,
    ConsentBody,
    EmptyBody,
    GuardianBody,
    GuardianPatchBody,
    Id,
    Instant,
    ParticipantBody,
    Query,
    SessionBody,
    StaffBody,
    StaffPatchBody,
    VettingBody,
    parse_body,
    parse_query,
)
from gateway.http.keys import SERVICES, SETTINGS
from gateway.http.middleware import ORG
from gateway.http.routing import Route
from gateway.http.views import (
    AuditPage,
    ChildList,
    ChildView,
    ConsentRecordView,
    ConsentStateView,
    CreatedSessionView,
    GuardianList,
    GuardianView,
    InviteView,
    IssuedInviteView,
    ParticipantList,
    ParticipantView,
    PolicyView,
    SessionList,
    SessionView,
    StaffList,
    StaffView,
    consent_record_view,
    consent_state_view,
    created_session_view,
    invite_view,
    issued_invite_view,
    participant_list_view,
    participant_view,
    person_view,
    session_list_view,
    session_view,
)
from gateway.services.bundle import Services
from gateway.services.ports import AuditQuery, Organisation

M = TypeVar("M", bound=BaseModel)


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _org(request: web.Request) -> Organisation:
    return request[ORG]


def _actor(request: web.Request) -> str:
    return f"api:{_org(request).id}"


async def _body(request: web.Request, model: type[M]) -> M:
    return await parse_body(request, model, request.app[SETTINGS].max_body_bytes)


def _today(request: web.Request) -> date:
    services = _services(request)
    return local_date(services.clock.now(), services.policies.for_path(_org(request).policy_path))


# registry ----------------------------------------------------------------------------------
def _vetting(body: VettingBody | None) -> Vetting | None:
    return Vetting(body.kind, body.checked_on, body.expires_on) if body else None


async def add_staff(request: web.Request) -> web.Response:
    body = await _body(request, StaffBody)
    vetting = _vetting(body.vetting)
    staff = await _services(request).registry.add_staff(
        _org(request),
        _actor(request),
        body.name,
        body.email,
        [StaffRole(r) for r in body.roles],
        vetting,
    )
    return web.json_response(person_view(staff, _today(request)), status=201)


async def add_guardian(request: web.Request) -> web.Response:
    body = await _body(request, GuardianBody)
    guardian = await _services(request).registry.add_guardian(
        _org(request), _actor(request), body.name, body.contact
    )
    return web.json_response(person_view(guardian), status=201)


async def add_child(request: web.Request) -> web.Response:
    body = await _body(request, ChildBody)
    child = await _services(request).registry.add_child(
        _org(request), _actor(request), body.name, body.date_of_birth, body.guardian_ids
    )
    return web.json_response(person_view(child), status=201)


def _kind_of(request: web.Request) -> PersonKind:
    return {
        "staff": PersonKind.STAFF,
        "children": PersonKind.CHILD,
        "guardians": PersonKind.GUARDIAN,
    }[request.path.split("/")[2]]


async def list_people(request: web.Request) -> web.Response:
    people = await _services(request).registry.list(_org(request), _kind_of(request))
    today = _today(request)
    return web.json_response({"items": [person_view(p, today) for p in people]})


async def update_staff(request: web.Request) -> web.Response:
    body = await _body(request, StaffPatchBody)
    staff = await _services(request).registry.update_staff(
        _org(request),
        _actor(request),
        request.match_info["id"],
        body.name,
        body.email,
        [StaffRole(r) for r in body.roles] if body.roles is not None else None,
        _vetting(body.vetting),
    )
    return web.json_response(person_view(staff, _today(request)))


async def update_guardian(request: web.Request) -> web.Response:
    body = await _body(request, GuardianPatchBody)
    guardian = await _services(request).registry.update_guardian(
        _org(request), _actor(request), request.match_info["id"], body.name, body.contact
    )
    return web.json_response(person_view(guardian))


async def update_child(request: web.Request) -> web.Response:
    body = await _body(request, ChildPatchBody)
    child = await _services(request).registry.update_child(
        _org(request), _actor(request), request.match_info["id"], body.name, body.date_of_birth
    )
    return web.json_response(person_view(child))


async def get_person(request: web.Request) -> web.Response:
    person = await _services(request).registry.get(
        _org(request), _kind_of(request), request.match_info["id"]
    )
    return web.json_response(person_view(person, _today(request)))


# consent -----------------------------------------------------------------------------------
async def record_consent(request: web.Request) -> web.Response:
    body = await _body(request, ConsentBody)
    evidence = (
        Evidence(EvidenceMethod(body.evidence.method), body.evidence.reference, body.evidence.dated)
        if body.evidence
        else None
    )
    record = await _services(request).consent.record(
        _org(request),
        _actor(request),
        PersonKind(body.subject_kind),
        body.subject_id,
        body.purpose,
        ConsentAction(body.action),
        PersonKind(body.given_by_kind),
        body.given_by_id,
        evidence,
    )
    return web.json_response(consent_record_view(record), status=201)


async def consent_state(request: web.Request) -> web.Response:
    _, states, history = await _services(request).consent.state(
        _org(request), _kind_of(request), request.match_info["id"]
    )
    return web.json_response(consent_state_view(states, history))


# sessions ----------------------------------------------------------------------------------
async def create_session(request: web.Request) -> web.Response:
    body = await _body(request, SessionBody)  # times with a UTC offset, within range
    created = await _services(request).sessions.create(
        _org(request),
        _actor(request),
        SessionKind(body.kind),
        body.title,
        body.host_staff_id,
        body.starts_at,
        body.ends_at,
        body.recording_purpose,
        body.password,
        body.out_of_hours_approved_by,
    )
    # A generated password is shown once; it is stored hashed.
    view = created_session_view(created.session, created.title, created.password)
    return web.json_response(view, status=201)


SessionStatus = Literal["upcoming", "live", "ended"]
Cursor = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,18}\.[A-Za-z0-9_-]{1,64}$",
        description="`next_cursor` from the previous page.",
    ),
]


class SessionListQuery(Query):
    status: SessionStatus | None = Field(
        None,
        description="upcoming: not started; live: between its start and end and not ended; "
        "ended: ended by its host or past its end.",
    )
    starts_from: Instant | None = Field(None, alias="from")
    starts_to: Instant | None = Field(None, alias="to")
    cursor: Cursor | None = None
    limit: Annotated[int, Field(ge=1, le=200), ASCII_DIGITS] = 50


async def list_sessions(request: web.Request) -> web.Response:
    params = parse_query(request, SessionListQuery)
    after = None
    if params.cursor is not None:
        starts, last_id = params.cursor.split(".", 1)
        after = (int(starts), last_id)
    items, next_after = await _services(request).sessions.listing(
        _org(request), params.status, params.starts_from, params.starts_to, after, params.limit
    )
    cursor = f"{next_after[0]}.{next_after[1]}" if next_after else None
    return web.json_response(session_list_view(items, cursor))


async def get_session(request: web.Request) -> web.Response:
    session, title = await _services(request).sessions.titled(
        _org(request), request.match_info["id"]
    )
    return web.json_response(session_view(session, title))


async def end_session(request: web.Request) -> web.Response:
    await _body(request, EmptyBody)
    session = await _services(request).sessions.end(
        _org(request), _actor(request), request.match_info["id"]
    )
    return web.json_response(session_view(session))


async def add_participant(request: web.Request) -> web.Response:
    body = await _body(request, ParticipantBody)
    participant = await _services(request).sessions.add_participant(
        _org(request),
        _actor(request),
        request.match_info["id"],
        PersonKind(body.person_kind),
        body.person_id,
        SessionRole(body.role),
    )
    return web.json_response(participant_view(participant), status=201)


async def roster(request: web.Request) -> web.Response:
    participants = await _services(request).sessions.roster(_org(request), request.match_info["id"])
    return web.json_response(participant_list_view(participants))


async def issue_invite(request: web.Request) -> web.Response:
    await _body(request, EmptyBody)
    issued = await _services(request).sessions.issue_invite(
        _org(request), _actor(request), request.match_info["id"], request.match_info["participant"]
    )
    # The token travels in the fragment: browsers never send it to a server, so it stays out
    # of access logs and Referer headers.
    link = f"{request.app[SETTINGS].public_url}/join#{issued.token}"
    return web.json_response(issued_invite_view(issued.invite, issued.token, link), status=201)


async def revoke_invite(request: web.Request) -> web.Response:
    await _body(request, EmptyBody)
    invite = await _services(request).sessions.revoke_invite(
        _org(request), _actor(request), request.match_info["id"]
    )
    return web.json_response(invite_view(invite))


# joining -----------------------------------------------------------------------------------


# audit and policy --------------------------------------------------------------------------
AuditKind = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class AuditLogQuery(Query):
    session_id: Id | None = None
    person_id: Id | None = None
    kind: AuditKind | None = None
    since: Instant | None = None
    until: Instant | None = None
    after: (
        Annotated[
            str,
            Field(
                max_length=CURSOR_MAX_LENGTH,
                pattern=CURSOR_PATTERN,
                description="`next_after` of the previous page",
            ),
        ]
        | None
    ) = None
    limit: Annotated[int, Field(ge=1, le=500), ASCII_DIGITS] = 100


async def audit_log(request: web.Request) -> web.Response:
    params = parse_query(request, AuditLogQuery)
    try:
        after = AuditCursor.parse(params.after) if params.after is not None else None
    except ValueError as error:
        raise Refusal(ErrorCode.QUERY_INVALID, f"after: {error}.") from None
    query = AuditQuery(
        org_id=_org(request).id,
        session_id=params.session_id,
        person_id=params.person_id,
        kind=params.kind,
        since_us=to_us(params.since) if params.since else None,
        until_us=to_us(params.until) if params.until else None,
        after=after,
        limit=params.limit,
    )
    entries = await _services(request).audit.entries(query)
    next_after = (
        (after or AuditCursor()).advanced((e.chain, e.seq) for e in entries).text()
        if len(entries) == params.limit
        else None
    )
    page = AuditPage.model_validate(
        {"items": [entry.as_dict() for entry in entries], "next_after": next_after}
    )
    return web.json_response(page.render())


async def policy(request: web.Request) -> web.Response:
    from gateway.domain.policy_text import render_policy

    current = _services(request).policies.for_path(_org(request).policy_path)
    view = PolicyView(version=current.version, label=current.label, text=render_policy(current))
    return web.json_response(view.render())


ROUTES: tuple[Route, ...] = (
    # registry
    Route(
        "POST",
        "/v1/staff",
        add_staff,
        "Register a member of staff",
        StaffBody,
        statuses=(201,),
        operation_id="createStaff",
        response=StaffView,
    ),
    Route(
        "GET", "/v1/staff", list_people, "List staff", operation_id="listStaff", response=StaffList
    ),
    Route(
        "GET",
        "/v1/staff/{id}",
        get_person,
        "One member of staff",
        operation_id="getStaff",
        response=StaffView,
    ),
    Route(
        "PATCH",
        "/v1/staff/{id}",
        update_staff,
        "Update a member of staff: fix a name or e-mail, change roles, renew vetting (audited)",
        StaffPatchBody,
        operation_id="updateStaff",
        response=StaffView,
    ),
    Route(
        "GET",
        "/v1/staff/{id}/consent",
        consent_state,
        "A staff member's consent state",
        operation_id="getStaffConsent",
        response=ConsentStateView,
    ),
    Route(
        "POST",
        "/v1/guardians",
        add_guardian,
        "Register a guardian",
        GuardianBody,
        statuses=(201,),
        operation_id="createGuardian",
        response=GuardianView,
    ),
    Route(
        "GET",
        "/v1/guardians",
        list_people,
        "List guardians",
        operation_id="listGuardians",
        response=GuardianList,
    ),
    Route(
        "GET",
        "/v1/guardians/{id}",
        get_person,
        "One guardian",
        operation_id="getGuardian",
        response=GuardianView,
    ),
    Route(
        "PATCH",
        "/v1/guardians/{id}",
        update_guardian,
        "Update a guardian: fix a name or contact (audited)",
        GuardianPatchBody,
        operation_id="updateGuardian",
        response=GuardianView,
    ),
    Route(
        "GET",
        "/v1/guardians/{id}/consent",
        consent_state,
        "A guardian's consent state",
        operation_id="getGuardianConsent",
        response=ConsentStateView,
    ),
    Route(
        "POST",
        "/v1/children",
        add_child,
        "Register a child",
        ChildBody,
        statuses=(201,),
        operation_id="createChild",
        response=ChildView,
    ),
    Route(
        "GET",
        "/v1/children",
        list_people,
        "List children",
        operation_id="listChildren",
        response=ChildList,
    ),
    Route(
        "GET",
        "/v1/children/{id}",
        get_person,
        "One child",
        operation_id="getChild",
        response=ChildView,
    ),
    Route(
        "PATCH",
        "/v1/children/{id}",
        update_child,
        "Update a child: fix a name or date of birth (audited)",
        ChildPatchBody,
        operation_id="updateChild",
        response=ChildView,
    ),
    Route(
        "GET",
        "/v1/children/{id}/consent",
        consent_state,
        "A child's consent state and why",
        operation_id="getChildConsent",
        response=ConsentStateView,
    ),
    # consent
    Route(
        "POST",
        "/v1/consents",
        record_consent,
        "Give or withdraw consent",
        ConsentBody,
        statuses=(201,),
        operation_id="recordConsent",
        response=ConsentRecordView,
    ),
    # sessions
    Route(
        "POST",
        "/v1/sessions",
        create_session,
        "Create a session",
        SessionBody,
        statuses=(201,),
        operation_id="createSession",
        response=CreatedSessionView,
    ),
    Route(
        "GET",
        "/v1/sessions",
        list_sessions,
        "The organisation's sessions by start time, filtered, a page at a time",
        query=SessionListQuery,
        operation_id="listSessions",
        response=SessionList,
    ),
    Route(
        "GET",
        "/v1/sessions/{id}",
        get_session,
        "One session",
        operation_id="getSession",
        response=SessionView,
    ),
    Route(
        "POST",
        "/v1/sessions/{id}/end",
        end_session,
        "End a session",
        EmptyBody,
        operation_id="endSession",
        response=SessionView,
    ),
    Route(
        "POST",
        "/v1/sessions/{id}/participants",
        add_participant,
        "Register a participant (a host or observer needs current vetting)",
        ParticipantBody,
        statuses=(201,),
        operation_id="addParticipant",
        response=ParticipantView,
    ),
    Route(
        "GET",
        "/v1/sessions/{id}/participants",
        roster,
        "The session's roster",
        operation_id="listParticipants",
        response=ParticipantList,
    ),
    Route(
        "POST",
        "/v1/sessions/{id}/participants/{participant}/invite",
        issue_invite,
        "Issue a personal invite",
        EmptyBody,
        statuses=(201,),
        operation_id="issueInvite",
        response=IssuedInviteView,
    ),
    Route(
        "POST",
        "/v1/invites/{id}/revoke",
        revoke_invite,
        "Revoke an invite",
        EmptyBody,
        operation_id="revokeInvite",
        response=InviteView,
    ),
    # audit and policy
    Route(
        "GET",
        "/v1/audit",
        audit_log,
        "Page through the audit log",
        query=AuditLogQuery,
        operation_id="listAuditEntries",
        response=AuditPage,
    ),
    Route(
        "GET",
        "/v1/policy",
        policy,
        "The written policy that applies, in plain English",
        operation_id="getPolicy",
        response=PolicyView,
    ),
)

__all__ = ["ROUTES", "Route"]
