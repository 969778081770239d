"""The incident log over /v1/incidents (R14, R17): parse -> one service call -> render.

Who is looking: the API key says which organisation, and an integration always gets the masked
view (the reporter by masked identity, no notes). An API key names nobody: handling an incident
(notes, closing) is done by the DSL signed in to the staff pages (gateway/http/staff_pages.py),
whose rights come from their own sign-in, never from a parameter.
"""

from __future__ import annotations

from aiohttp import web

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.incidents import (
    IncidentStatus,
    incident_detail_view,
    incident_view,
)
from gateway.http.live_api import ConcernReporter
from gateway.http.middleware import ORG
from gateway.http.routing import Route
from gateway.services.admission import AdmissionService, DeviceOf
from gateway.services.incidents import LIST_LIMIT, IncidentDetail, IncidentService
from gateway.services.ports import Organisation

INCIDENTS = web.AppKey("incidents", IncidentService)

LIST_QUERY = ("status", "session_id", "limit")
GET_QUERY: tuple[str, ...] = ()


def _service(request: web.Request) -> IncidentService:
    return request.app[INCIDENTS]


def _org(request: web.Request) -> Organisation:
    return request[ORG]


def _query(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = set(request.query) - set(allowed)
    if unknown:
        raise Refusal(ErrorCode.QUERY_INVALID, f"Unknown query parameter: {sorted(unknown)[0]}.")
    values: dict[str, str] = {}
    for name in allowed:
        raw = request.query.getall(name, [])
        if len(raw) > 1:
            raise Refusal(ErrorCode.QUERY_INVALID, f"{name} is given once.")
        if raw:
            if not 1 <= len(raw[0]) <= 64:
                raise Refusal(ErrorCode.QUERY_INVALID, f"{name} is 1 to 64 characters.")
            values[name] = raw[0]
    return values


def _status(raw: str | None) -> IncidentStatus | None:
    if raw is None:
        return None
    try:
        return IncidentStatus(raw)
    except ValueError as exc:
        raise Refusal(ErrorCode.QUERY_INVALID, "status is open or closed.") from exc


def _limit(raw: str | None) -> int:
    if raw is None:
        return 100
    if not raw.isdigit() or not 1 <= int(raw) <= LIST_LIMIT:
        raise Refusal(ErrorCode.QUERY_INVALID, f"limit is a whole number from 1 to {LIST_LIMIT}.")
    return int(raw)


def _detail(detail: IncidentDetail) -> dict[str, object]:
    return incident_detail_view(detail.incident, detail.rights, detail.notes)


async def list_incidents(request: web.Request) -> web.Response:
    query = _query(request, LIST_QUERY)
    listing = await _service(request).list(
        _org(request),
        status=_status(query.get("status")),
        session_id=query.get("session_id"),
        limit=_limit(query.get("limit")),
    )
    reveal = listing.rights.reveal_reporter
    return web.json_response({"items": [incident_view(i, reveal) for i in listing.items]})


async def get_incident(request: web.Request) -> web.Response:
    _query(request, GET_QUERY)
    detail = await _service(request).get(_org(request), request.match_info["id"])
    return web.json_response(_detail(detail))


class IncidentConcernReporter(ConcernReporter):
    """POST /v1/live/concern: the caller is the participant whose invite token and bound
    device these are (held participants too: a child waiting alone can still tell someone)."""

    def __init__(self, admission: AdmissionService, incidents: IncidentService) -> None:
        self._admission = admission
        self._incidents = incidents

    async def __call__(self, token: str, device_of: DeviceOf, note: str | None) -> str:
        record = await self._admission.participant(token, device_of)
        participant = record.participant
        incident = await self._incidents.report_concern(
            record.invite.org_id,
            record.invite.session_id,
            participant.id,
            participant.masked_identity,
            participant.display_name,
            note,
        )
        return incident.id


INCIDENT_ROUTES: tuple[Route, ...] = (
    Route(
        "GET", "/v1/incidents", list_incidents, "The incident log, newest first", query=LIST_QUERY
    ),
    Route("GET", "/v1/incidents/{id}", get_incident, "One incident", query=GET_QUERY),
)
