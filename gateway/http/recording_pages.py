"""The DSL's recording page (R14): a recording's catalogue entry (people by masked name, the
consent snapshot it was made under, retention date, hold, destruction record) and the form that
places or lifts a safeguarding hold with a reason. Same rules as the other staff pages
(gateway/http/staff_pages.py): signed in, server-rendered, CSRF and same-origin on the form,
refusals rendered and audited. Another organisation's recording, or an id that is not one, is
404 (nothing is said about whether it exists).
"""

from __future__ import annotations

import re

from aiohttp import web

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.retention import HOLD_REASON_MAX
from gateway.http.staff_pages import _desk, _field, _render, _see_other, _signed_in_form, page
from gateway.services.recordings import RecordingsService
from gateway.services.staff_auth import SignedIn

__all__ = ["RECORDINGS", "RECORDING_ROUTES"]

RECORDINGS = web.AppKey("recordings", RecordingsService)
_RECORDING_ID = re.compile(r"[0-9a-f]{32}")


def _recording_id(request: web.Request) -> str:
    value = request.match_info["id"]
    if not _RECORDING_ID.fullmatch(value):
        raise Refusal(ErrorCode.NOT_FOUND, "no such recording")
    return value


async def _page(request: web.Request, who: SignedIn, status: int = 200) -> web.Response:
    view = await request.app[RECORDINGS].view(who.organisation, _recording_id(request))
    return _render(request, "recording.html", status=status, view=view, reason_max=HOLD_REASON_MAX)


@page
async def recording_page(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    return await _page(request, who)


@page
async def hold(request: web.Request) -> web.StreamResponse:
    who, form = await _signed_in_form(request)
    recording_id = _recording_id(request)
    action = _field(form, "action", 16)
    if action not in ("place", "lift"):
        raise Refusal(ErrorCode.BODY_INVALID, "Choose to place or to lift the hold.")
    await request.app[RECORDINGS].hold_by_staff(
        who.organisation,
        who.staff,
        recording_id,
        action == "place",
        _field(form, "reason", HOLD_REASON_MAX + 100),
    )
    return _see_other(f"/staff/recordings/{recording_id}")


RECORDING_ROUTES = (
    ("GET", "/staff/recordings/{id}", recording_page),
    ("POST", "/staff/recordings/{id}/hold", hold),
)
