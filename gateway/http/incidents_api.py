"""The incident log over /v1/incidents (R14, R17): parse -> one service call -> render.

Who is looking: the API key says which organisation; the optional `as_staff` query parameter
names the member of staff a view is for. Only a DSL sees which participant reported a
concern, and only a DSL or an admin sees the notes; without `as_staff` the view is the masked
one every member of staff may see. Changes name the acting member of staff in the body
(`staff_id`), who must be the DSL or an admin.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from gateway.domain.incidents import (
    NOTE_MAX,
    IncidentStatus,
    incident_detail_view,
    incident_view,
    note_view,
)
from gateway.http.bodies import ASCII_DIGITS, Body, Id, Query, parse_body, parse_query
from gateway.http.keys import SETTINGS
from gateway.http.live_api import ConcernReporter
from gateway.http.middleware import ORG
from gateway.http.routing import Route
from gateway.services.admission import AdmissionService, DeviceOf
from gateway.services.attempts import AttemptGuard
from gateway.services.incidents import LIST_LIMIT, IncidentDetail, IncidentService
from gateway.services.ports import Organisation

INCIDENTS = web.AppKey("incidents", IncidentService)


class IncidentViewQuery(Query):
    as_staff: Id | None = None


class IncidentListQuery(IncidentViewQuery):
    status: IncidentStatus | None = None
    session_id: Id | None = None
    limit: Annotated[int, Field(ge=1, le=LIST_LIMIT), ASCII_DIGITS] = 100


class NoteBody(Body):
    staff_id: Id
    text: Annotated[str, Field(min_length=1, max_length=NOTE_MAX)]


class CloseBody(Body):
    staff_id: Id


def _service(request: web.Request) -> IncidentService:
    return request.app[INCIDENTS]


def _org(request: web.Request) -> Organisation:
    return request[ORG]


def _actor(request: web.Request) -> str:
    return f"api:{_org(request).id}"


def _detail(detail: IncidentDetail) -> dict[str, object]:
    return incident_detail_view(detail.incident, detail.rights, detail.notes)


async def list_incidents(request: web.Request) -> web.Response:
    query = parse_query(request, IncidentListQuery)
    listing = await _service(request).list(
        _org(request),
        status=query.status,
        session_id=query.session_id,
        as_staff=query.as_staff,
        limit=query.limit,
    )
    reveal = listing.rights.reveal_reporter
    return web.json_response({"items": [incident_view(i, reveal) for i in listing.items]})


async def get_incident(request: web.Request) -> web.Response:
    query = parse_query(request, IncidentViewQuery)
    detail = await _service(request).get(_org(request), request.match_info["id"], query.as_staff)
    return web.json_response(_detail(detail))


async def add_incident_note(request: web.Request) -> web.Response:
    body = await parse_body(request, NoteBody, request.app[SETTINGS].max_body_bytes)
    note = await _service(request).add_note(
        _org(request), body.staff_id, request.match_info["id"], body.text, actor=_actor(request)
    )
    return web.json_response(note_view(note), status=201)


async def close_incident(request: web.Request) -> web.Response:
    body = await parse_body(request, CloseBody, request.app[SETTINGS].max_body_bytes)
    detail = await _service(request).close(
        _org(request), body.staff_id, request.match_info["id"], actor=_actor(request)
    )
    return web.json_response(_detail(detail))


class IncidentConcernReporter(ConcernReporter):
    """POST /v1/live/concern: the caller is the participant whose invite token and bound
    device these are (held participants too: a child waiting alone can still tell someone)."""

    def __init__(
        self, admission: AdmissionService, incidents: IncidentService, attempts: AttemptGuard
    ) -> None:
        self._admission = admission
        self._incidents = incidents
        self._attempts = attempts

    async def __call__(self, token: str, device_of: DeviceOf, note: str | None) -> str:
        record = await self._admission.participant(token, device_of)
        participant = record.participant

        async def report() -> str:
            incident = await self._incidents.report_concern(
                record.invite.org_id,
                record.invite.session_id,
                participant.id,
                participant.masked_identity,
                participant.display_name,
                note,
            )
            return incident.id

        # A run of concerns from one participant goes to one incident (services/attempts.py).
        return await self._attempts.concern(record, note, report)


INCIDENT_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v1/incidents",
        list_incidents,
        "The incident log, newest first",
        query=IncidentListQuery,
    ),
    Route("GET", "/v1/incidents/{id}", get_incident, "One incident", query=IncidentViewQuery),
    Route(
        "POST",
        "/v1/incidents/{id}/notes",
        add_incident_note,
        "Add a note to an incident (DSL or admin)",
        NoteBody,
        statuses=(201,),
    ),
    Route(
        "POST",
        "/v1/incidents/{id}/close",
        close_incident,
        "Close an incident (DSL or admin)",
        CloseBody,
    ),
)
