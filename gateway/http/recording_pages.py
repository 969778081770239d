"""The recording pages (R13, R14): the desk's list of recordings, a recording's page (masked
people, the consent snapshot it was made under, its session's timeline with the recordings'
intervals, retention, hold, destruction record), the hold form, and watching with a reason.

Same rules as the other staff pages (gateway/http/staff_pages.py): signed in, server-rendered,
CSRF and same-origin on every form, refusals rendered and audited. Another organisation's
recording, or an id that is not one, is 404 (nothing is said about whether it exists).

Watching: the "watch" form states a reason and answers with the player page, whose <video>
points at `/staff/playback/<token>`: a single-use link for this member of staff, short-lived,
whose token says nothing about the recording or anyone in it. The playback answer is the
decrypted WebM, `Cache-Control: no-store`, its exact length, no ranges (one use, one request),
streamed chunk by chunk once the whole recording has been authenticated
(services/review.py says why). A chunk that fails while streaming cuts the connection: the
response never ends cleanly, so nothing treats a partial recording as whole.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.recording_crypto import RecordingCorrupt
from gateway.domain.retention import HOLD_REASON_MAX
from gateway.domain.review import RECORDING_STATUSES, VIEW_REASON_MAX, RecordingFilters
from gateway.domain.staff_session import may_open_incident_desk
from gateway.http.staff_pages import (
    _desk,
    _field,
    _headers,
    _render,
    _see_other,
    _signed_in,
    _signed_in_form,
    page,
)
from gateway.services.recordings import RecordingsService
from gateway.services.review import ReviewService
from gateway.services.staff_auth import SignedIn

__all__ = ["RECORDINGS", "RECORDING_ROUTES", "REVIEW"]

log = logging.getLogger("gateway.http.recordings")

RECORDINGS = web.AppKey("recordings", RecordingsService)
REVIEW = web.AppKey("review", ReviewService)
_RECORDING_ID = re.compile(r"[0-9a-f]{32}")
_ID = re.compile(r"[0-9a-f]{32}")
_PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CURSOR = re.compile(r"(\d{1,19})\.([0-9a-f]{32})")


def _recording_id(request: web.Request) -> str:
    value = request.match_info["id"]
    if not _RECORDING_ID.fullmatch(value):
        raise Refusal(ErrorCode.NOT_FOUND, "no such recording")
    return value


# the list ---------------------------------------------------------------------------------------
def _query_id(request: web.Request, name: str, label: str) -> str | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    if not _ID.fullmatch(value):
        raise Refusal(ErrorCode.QUERY_INVALID, f"{label} is an id of 32 hexadecimal characters.")
    return value


def _query_time(request: web.Request, name: str, label: str) -> datetime | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    try:
        if len(value) > 40:
            raise ValueError
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Refusal(
            ErrorCode.QUERY_INVALID, f"'{label}' is a date, e.g. 2026-12-01 or 2026-12-01T09:30."
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _list_filters(request: web.Request) -> RecordingFilters:
    purpose = request.query.get("purpose", "").strip() or None
    if purpose is not None and not _PURPOSE.fullmatch(purpose):
        raise Refusal(ErrorCode.QUERY_INVALID, "purpose is a purpose's name from the policy.")
    status = request.query.get("status", "").strip() or None
    after = None
    cursor = request.query.get("after", "").strip()
    if cursor:
        found = _CURSOR.fullmatch(cursor)
        if not found:
            raise Refusal(ErrorCode.QUERY_INVALID, "after is the list's own next-page marker.")
        after = (int(found.group(1)), found.group(2))
    return RecordingFilters(
        session_id=_query_id(request, "session", "session"),
        person_id=_query_id(request, "child", "child"),
        purpose=purpose,
        status=status,
        since=_query_time(request, "since", "From"),
        until=_query_time(request, "until", "Until"),
        after=after,
    )


@page
async def recording_list(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    filters = _list_filters(request)
    shown = await request.app[REVIEW].listing(who.organisation, who.staff, filters)
    next_query = None
    if shown.next_after is not None:
        query = {k: v for k, v in request.query.items() if k != "after" and v}
        query["after"] = shown.next_after
        next_query = urlencode(query)
    return _render(
        request,
        "recordings.html",
        entries=shown.entries,
        next_query=next_query,
        filters=request.query,
        statuses=RECORDING_STATUSES,
    )


# a recording ------------------------------------------------------------------------------------
async def _signed_in_or_redirect(request: web.Request) -> SignedIn | web.StreamResponse:
    who = await _signed_in(request)
    if who is None:
        return _see_other("/staff/sign-in")
    return who


@page
async def recording_page(request: web.Request) -> web.StreamResponse:
    who = await _signed_in_or_redirect(request)
    if not isinstance(who, SignedIn):
        return who
    shown = await request.app[REVIEW].page(
        who.organisation,
        who.staff,
        _recording_id(request),
        may_manage=may_open_incident_desk(who.staff),
    )
    return _render(
        request,
        "recording.html",
        view=shown.view,
        shown=shown,
        timeline=shown.timeline,
        layout=shown.timeline.layout if shown.timeline else None,
        reason_max=HOLD_REASON_MAX,
        view_reason_max=VIEW_REASON_MAX,
    )


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


# watching ---------------------------------------------------------------------------------------
@page
async def watch(request: web.Request) -> web.StreamResponse:
    """The reason is stated; the answer is the player, its link good for one use."""
    who, form = await _signed_in_form(request)
    recording_id = _recording_id(request)
    token = await request.app[REVIEW].open_playback(
        who.organisation, who.staff, recording_id, _field(form, "reason", VIEW_REASON_MAX + 100)
    )
    return _render(
        request, "watch.html", recording_id=recording_id, source=f"/staff/playback/{token}"
    )


@page
async def playback(request: web.Request) -> web.StreamResponse:
    who = await _signed_in(request)
    if who is None:
        # No session cookie (or an ended one): the link is not even looked at.
        raise Refusal(ErrorCode.UNAUTHENTICATED, "Sign in to watch recordings.")
    shown = await request.app[REVIEW].play(who.organisation, who.staff, request.match_info["token"])
    response = web.StreamResponse(
        status=200,
        headers={
            **_headers(),
            "Content-Type": shown.content_type,
            "Content-Length": str(shown.size),
            "Accept-Ranges": "none",
            "Content-Disposition": "inline",
        },
    )
    await response.prepare(request)
    try:
        async for chunk in shown.chunks:
            await response.write(chunk)
    except (RecordingCorrupt, OSError):
        # Damage found while streaming (audited by the service), or the viewer went away. Cut
        # the connection: the length promised is never reached, nothing ends cleanly.
        if request.transport is not None:
            request.transport.close()
        return response
    finally:
        await shown.chunks.aclose()  # the file is closed now, not when collected
    await response.write_eof()
    return response


RECORDING_ROUTES = (
    ("GET", "/staff/recordings", recording_list),
    ("GET", "/staff/recordings/{id}", recording_page),
    ("POST", "/staff/recordings/{id}/hold", hold),
    ("POST", "/staff/recordings/{id}/watch", watch),
    ("GET", "/staff/playback/{token}", playback),
)
