"""Participants' side of a session: joining, media signalling, live events, concerns, leaving.

A participant proves who they are with their invite token plus the HttpOnly cookie of the
device the invite is bound to; media signalling needs the single-use credential from the join.
"""

from __future__ import annotations

import asyncio
import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from gateway.domain.errors import ErrorCode, Refusal
from gateway.http.bodies import (
    ConcernBody,
    JoinBody,
    LeaveBody,
    OfferBody,
    RemoveBody,
    parse_body,
)
from gateway.http.client_address import client_address
from gateway.http.errors import error_response
from gateway.http.keys import ATTEMPTS, SERVICES, SETTINGS
from gateway.http.routing import Route
from gateway.http.views import IssuedInviteView, issued_invite_view
from gateway.services.admission import DeviceOf
from gateway.services.live import LiveSessionService, SessionElsewhere, join_view

DEVICE_COOKIE = "sgw_device_"
LIVE = web.AppKey("live", LiveSessionService)
M = TypeVar("M", bound=BaseModel)
HEARTBEAT_SECONDS = 5  # also how soon a vanished browser's stream is noticed


def device_cookie_name(invite_id: str) -> str:
    return DEVICE_COOKIE + invite_id[:16]


async def _body(request: web.Request, model: type[M]) -> M:
    return await parse_body(request, model, request.app[SETTINGS].max_body_bytes)


def _device_of(request: web.Request) -> DeviceOf:
    """The device secret this browser presents for an invite: its cookie is named after the
    invite, known to the service only once it has verified the token."""
    cookies = request.cookies
    return lambda invite_id: cookies.get(device_cookie_name(invite_id))


async def join(request: web.Request) -> web.Response:
    body = await _body(request, JoinBody)
    source = client_address(request, request.app[SETTINGS].trusted_proxies)
    try:
        result, media = await request.app[LIVE].join(
            body.token, body.password, _device_of(request), source
        )
    except SessionElsewhere as elsewhere:
        # 421 Misdirected Request: the session is live on another process; the join page
        # goes there (same site, so the device cookie goes with it).
        answer = error_response(elsewhere)
        return web.json_response(
            {
                "error": {"code": elsewhere.code.value, "message": elsewhere.message},
                "location": elsewhere.location,
            },
            status=answer.status,
        )
    except Refusal as refusal:  # one answer, in one time, for every kind of bad invite
        raise await request.app[ATTEMPTS].refused_join(refusal, source) from None
    recording = await request.app[LIVE].recording.status_anywhere(
        result.session.id, result.participant.masked_identity
    )
    response = web.json_response(join_view(result, media, recording))
    if result.device_secret is not None:
        invite = result.record.invite
        now = request.app[SERVICES].clock.now()
        response.set_cookie(
            device_cookie_name(invite.id),
            result.device_secret,
            httponly=True,
            samesite="Strict",
            secure=request.app[SETTINGS].public_url.startswith("https://"),
            max_age=int((invite.expires_at - now).total_seconds()) + 60,
            path="/",
        )
    return response


async def leave(request: web.Request) -> web.Response:
    body = await _body(request, LeaveBody)
    await request.app[LIVE].leave(body.token, _device_of(request))
    return web.json_response({"left": True})


async def offer(request: web.Request) -> web.Response:
    body = await _body(request, OfferBody)
    answer = await request.app[LIVE].offer(body.credential, body.sdp)
    return web.json_response({"type": "answer", "sdp": answer})


async def events(request: web.Request) -> web.StreamResponse:
    body = await _body(request, LeaveBody)
    live = request.app[LIVE]
    record = await live.caller(body.token, _device_of(request))
    queue = live.subscribe(record)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    try:
        for event in await live.snapshot(record):
            await response.write(_sse(event))
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    break
                await response.write(b": heartbeat\n\n")
                # Served away from the session's authority: the recording indicator is read
                # again (nothing is pushed here), so a run started or stopped shows.
                refreshed = await live.recording_refresh(record)
                if refreshed is not None:
                    await response.write(_sse(refreshed))
                continue
            await response.write(_sse(event))
            if event.get("type") in ("removed", "ended"):
                break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        live.unsubscribe(queue)
    return response


def _sse(event: dict[str, object]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


async def concern(request: web.Request) -> web.Response:
    body = await _body(request, ConcernBody)
    report = request.app.get(REPORT_CONCERN)
    if report is None:
        raise Refusal(ErrorCode.INTERNAL, "Concerns cannot be recorded right now.")
    incident_id = await report(body.token, _device_of(request), body.note)
    return web.json_response(
        {
            "incident_id": incident_id,
            "message": "Your concern is recorded and the safeguarding lead is being told.",
        },
        status=201,
    )


async def remove(request: web.Request) -> web.Response:
    body = await _body(request, RemoveBody)
    await request.app[LIVE].remove(body.token, _device_of(request), body.identity)
    return web.json_response({"removed": True})


async def let_back_in(request: web.Request) -> web.Response:
    body = await _body(request, RemoveBody)
    org, session_id, participant_id, actor = await request.app[LIVE].let_back_in(
        body.token, _device_of(request), body.identity
    )
    # A new personal invite through the one invite-issuing path (R1, R2); the link goes to
    # the host to pass on, the token in the fragment as for the admin API's invites.
    issued = await request.app[SERVICES].sessions.issue_invite(
        org, actor, session_id, participant_id
    )
    link = f"{request.app[SETTINGS].public_url}/join#{issued.token}"
    return web.json_response(issued_invite_view(issued.invite, issued.token, link), status=201)


async def end(request: web.Request) -> web.Response:
    body = await _body(request, LeaveBody)
    await request.app[LIVE].end(body.token, _device_of(request))
    return web.json_response({"ended": True})


class ConcernReporter:
    """Turns a participant's 'report a concern' into an incident (wired in app.py)."""

    async def __call__(self, token: str, device_of: DeviceOf, note: str | None) -> str:
        raise NotImplementedError


REPORT_CONCERN = web.AppKey("report_concern", ConcernReporter)

LIVE_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/join",
        join,
        "Redeem an invite: admit, hold or deny",
        JoinBody,
        public=True,
        operation_id="joinSession",
    ),
    Route(
        "POST",
        "/v1/leave",
        leave,
        "Leave a session (always allowed)",
        LeaveBody,
        public=True,
        operation_id="leaveSession",
    ),
    Route(
        "POST",
        "/v1/media/offer",
        offer,
        "WebRTC offer with a media credential",
        OfferBody,
        public=True,
        operation_id="offerMedia",
    ),
    Route(
        "POST",
        "/v1/live/events",
        events,
        "The participant's live event stream (SSE)",
        LeaveBody,
        public=True,
        operation_id="streamLiveEvents",
    ),
    Route(
        "POST",
        "/v1/live/concern",
        concern,
        "Report a concern",
        ConcernBody,
        public=True,
        statuses=(201,),
        operation_id="reportConcern",
    ),
    Route(
        "POST",
        "/v1/live/remove",
        remove,
        "Host: remove a participant",
        RemoveBody,
        public=True,
        operation_id="removeParticipant",
    ),
    Route(
        "POST",
        "/v1/live/let-back-in",
        let_back_in,
        "Host: let a removed participant back in (a new personal invite)",
        RemoveBody,
        public=True,
        statuses=(201,),
        operation_id="letParticipantBackIn",
        response=IssuedInviteView,
    ),
    Route(
        "POST",
        "/v1/live/end",
        end,
        "Host: end the session",
        LeaveBody,
        public=True,
        operation_id="endLiveSession",
    ),
)
