"""The DSL's desk pages (R13, R14, R15): open concerns and breaches (live), a session's
timeline as a picture, the audit log with its verification, and an incident report.

Same rules as the other staff pages (gateway/http/staff_pages.py): signed in, server-rendered,
CSRF on the one form (starting a verification). The desk updates itself with a small script
from 'self' (desk.js) polling JSON under /staff; without it the page still works on reload.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.domain.audit_cursor import MAX_LENGTH as CURSOR_MAX_LENGTH
from gateway.domain.audit_cursor import AuditCursor
from gateway.domain.errors import ErrorCode, Refusal
from gateway.http.desk_report import report_pdf
from gateway.http.staff_pages import (
    _desk,
    _headers,
    _render,
    _see_other,
    _signed_in_form,
    page,
)
from gateway.services.desk import AuditFilters, DeskItem, DeskService
from gateway.services.staff_auth import SignedIn

__all__ = ["DESK", "DESK_ROUTES"]

DESK = web.AppKey("desk", DeskService)
HERE = Path(__file__).resolve().parent
_SCRIPT = (HERE / "templates" / "staff" / "desk.js").read_bytes()
_ID_MAX = 64
_KIND_MAX = 64


def _desk_service(request: web.Request) -> DeskService:
    return request.app[DESK]


def _json(body: object) -> web.Response:
    return web.Response(
        text=json.dumps(body),
        content_type="application/json",
        headers={**_headers()},
    )


def _incident_item(item: DeskItem) -> dict[str, object]:
    incident = item.incident
    return {
        "id": incident.id,
        "kind": incident.kind,
        "title": incident.kind.replace("_", " ").capitalize(),
        "reported_at": incident.created_at.strftime("%d %b %Y %H:%M") + " UTC",
        "reported_by": item.reported_by,
        "url": f"/staff/incidents/{incident.id}",
        "timeline": (
            f"/staff/sessions/{incident.session_id}/timeline" if incident.session_id else None
        ),
    }


# the desk's home ----------------------------------------------------------------------------
@page
async def desk_home(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    items = await _desk_service(request).view_desk(who.organisation, who.staff)
    return _render(request, "desk.html", items=[_incident_item(i) for i in items])


@page
async def desk_open_json(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    items = await _desk_service(request).open_incidents(who.organisation, who.staff)
    return _json({"items": [_incident_item(i) for i in items]})


async def desk_script(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=_SCRIPT,
        headers={
            **_headers(),
            "Cache-Control": "no-cache",
            "Content-Type": "text/javascript; charset=utf-8",
        },
    )


# a session's timeline -----------------------------------------------------------------------
@page
async def timeline_page(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    session_id = _id(request.match_info["id"])
    timeline = await _desk_service(request).timeline(who.organisation, who.staff, session_id)
    return _render(request, "desk_timeline.html", timeline=timeline, layout=timeline.layout)


# the audit log ------------------------------------------------------------------------------
@page
async def audit_page(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    filters = _filters(request)
    desk = _desk_service(request)
    shown = await desk.audit_log(who.organisation, who.staff, filters)
    next_query = None
    if shown.next_after is not None:
        query = {k: v for k, v in request.query.items() if k != "after" and v}
        query["after"] = shown.next_after.text()
        next_query = "&".join(f"{k}={_quote(v)}" for k, v in query.items())
    return _render(
        request,
        "desk_audit.html",
        entries=shown.entries,
        next_query=next_query,
        filters=request.query,
        run=await desk.verification(who.organisation, who.staff),
        as_json=_entry_data,
    )


@page
async def start_verification(request: web.Request) -> web.StreamResponse:
    who, _ = await _signed_in_form(request)
    _desk_service(request).start_verification(who.organisation, who.staff)
    return _see_other("/staff/audit#verification")


@page
async def verification_json(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    run = await _desk_service(request).verification(who.organisation, who.staff)
    return _json({"run": run.as_dict() if run else None})


# the report for referral --------------------------------------------------------------------
@page
async def report_page(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    report = await _desk_service(request).report(
        who.organisation, who.staff, _id(request.match_info["id"]), "html"
    )
    return _render(request, "desk_report.html", report=report, layout=_layout(report))


@page
async def report_pdf_page(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    report = await _desk_service(request).report(
        who.organisation, who.staff, _id(request.match_info["id"]), "pdf"
    )
    return web.Response(
        body=report_pdf(report, who.organisation.name),
        headers={
            **_headers(),
            "Content-Type": "application/pdf",
            # The file name says what it is, never who: no names in file names.
            "Content-Disposition": f'attachment; filename="incident-{report.incident.id}.pdf"',
        },
    )


# helpers ------------------------------------------------------------------------------------
def _layout(report: Any) -> Any:
    return report.timeline.layout if report.timeline is not None else None


def _id(value: str) -> str:
    if not value or len(value) > _ID_MAX or not value.replace("-", "").isalnum():
        raise Refusal(ErrorCode.NOT_FOUND, "Not found.")
    return value


def _optional(request: web.Request, name: str, limit: int) -> str | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    if len(value) > limit:
        raise Refusal(ErrorCode.QUERY_INVALID, f"{name} is at most {limit} characters.")
    return value


def _time(request: web.Request, name: str, label: str) -> datetime | None:
    value = _optional(request, name, 40)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Refusal(
            ErrorCode.QUERY_INVALID, f"'{label}' is a date and time, e.g. 2026-12-01T09:30."
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _filters(request: web.Request) -> AuditFilters:
    after = _optional(request, "after", CURSOR_MAX_LENGTH)
    try:
        cursor = AuditCursor.parse(after) if after is not None else None
    except ValueError as error:
        raise Refusal(ErrorCode.QUERY_INVALID, f"after: {error}.") from None
    return AuditFilters(
        kind=_optional(request, "kind", _KIND_MAX),
        session_id=_optional(request, "session", _ID_MAX),
        person_id=_optional(request, "person", _ID_MAX),
        since=_time(request, "since", "From"),
        until=_time(request, "until", "Until"),
        after=cursor,
    )


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _entry_data(data: object) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


DESK_ROUTES: tuple[tuple[str, str, Any], ...] = (
    ("GET", "/staff/desk", desk_home),
    ("GET", "/staff/desk/open.json", desk_open_json),
    ("GET", "/staff/desk/desk.js", desk_script),
    ("GET", "/staff/sessions/{id}/timeline", timeline_page),
    ("GET", "/staff/audit", audit_page),
    ("POST", "/staff/audit/verify", start_verification),
    ("GET", "/staff/audit/verify.json", verification_json),
    ("GET", "/staff/incidents/{id}/report", report_page),
    ("GET", "/staff/incidents/{id}/report.pdf", report_pdf_page),
)
