"""The incident log over /v1/incidents (R14, R17): parse -> one service call -> render.

Who is looking: the API key says which organisation, and an integration always gets the masked
view (the reporter by masked identity, no notes). An API key names nobody: handling an incident
(notes, closing) is done by the DSL signed in to the staff pages (gateway/http/staff_pages.py),
whose rights come from their own sign-in, never from a parameter.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from gateway.domain.incidents import (
    IncidentStatus,
    incident_detail_view,
    incident_view,
)
from gateway.http.bodies import ASCII_DIGITS, Id, Query, parse_query
from gateway.http.live_api import ConcernReporter
from gateway.http.middleware import ORG
from gateway.http.routing import Route
from gateway.http.views import IncidentDetailView, IncidentList
from gateway.services.admission import AdmissionService, DeviceOf
from gateway.services.attempts import AttemptGuard
from gateway.services.incidents import LIST_LIMIT, IncidentDetail, IncidentService
from gateway.services.ports import Organisation

INCIDENTS = web.AppKey("incidents", IncidentService)


class IncidentListQuery(Query):
    status: IncidentStatus | None = None
    session_id: Id | None = None
    limit: Annotated[int, Field(ge=1, le=LIST_LIMIT), ASCII_DIGITS] = 100


class IncidentViewQuery(Query):
    """No parameters: an API key sees the masked view (DSL work is on the staff pages)."""


def _service(request: web.Request) -> IncidentService:
    return request.app[INCIDENTS]


def _org(request: web.Request) -> Organisation:
    return request[ORG]


def _detail(detail: IncidentDetail) -> dict[str, object]:
    return incident_detail_view(detail.incident, detail.rights, detail.notes, detail.dsl)


async def list_incidents(request: web.Request) -> web.Response:
    query = parse_query(request, IncidentListQuery)
    listing = await _service(request).list(
        _org(request),
        status=query.status,
        session_id=query.session_id,
        limit=query.limit,
    )
    reveal = listing.rights.reveal_reporter
    return web.json_response({"items": [incident_view(i, reveal) for i in listing.items]})


async def get_incident(request: web.Request) -> web.Response:
    parse_query(request, IncidentViewQuery)
    detail = await _service(request).get(_org(request), request.match_info["id"])
    return web.json_response(_detail(detail))


class IncidentConcernReporter(ConcernReporter):
    """POST /v1/live/concern: the caller is the participant whose invite token and bound
    device these are (held participants too: a child waiting alone can still tell someone; and
    removed ones, after the session ended or the invite was withdrawn: a child removed by an
    abusive host must still be able to report it. Rate limits guard this path instead)."""

    def __init__(
        self, admission: AdmissionService, incidents: IncidentService, attempts: AttemptGuard
    ) -> None:
        self._admission = admission
        self._incidents = incidents
        self._attempts = attempts

    async def __call__(self, token: str, device_of: DeviceOf, note: str | None) -> str:
        record = await self._admission.bound(token, device_of)
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
        operation_id="listIncidents",
        response=IncidentList,
    ),
    Route(
        "GET",
        "/v1/incidents/{id}",
        get_incident,
        "One incident",
        query=IncidentViewQuery,
        operation_id="getIncident",
        response=IncidentDetailView,
    ),
)
