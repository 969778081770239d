"""Lifting an invite's lock (R1): the host from the session page, an admin over the API."""

from __future__ import annotations

from aiohttp import web

from gateway.http.bodies import EmptyBody, RemoveBody, parse_body
from gateway.http.keys import ATTEMPTS, SETTINGS
from gateway.http.live_api import LIVE, _device_of
from gateway.http.middleware import ORG
from gateway.http.routing import Route
from gateway.http.views import Readmitted, Unlocked


async def readmit(request: web.Request) -> web.Response:
    body = await parse_body(request, RemoveBody, request.app[SETTINGS].max_body_bytes)
    host = await request.app[LIVE].caller(body.token, _device_of(request))
    await request.app[ATTEMPTS].readmit(host, body.identity)
    return web.json_response({"readmitted": True})


async def unlock_invite(request: web.Request) -> web.Response:
    await parse_body(request, EmptyBody, request.app[SETTINGS].max_body_bytes)
    org = request[ORG]
    await request.app[ATTEMPTS].unlock(org.id, request.match_info["id"], f"api:{org.id}")
    return web.json_response({"unlocked": True})


ATTEMPT_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/live/readmit",
        readmit,
        "Host: let a participant locked out by wrong passwords try again",
        RemoveBody,
        public=True,
        operation_id="readmitParticipant",
        response=Readmitted,
    ),
    Route(
        "POST",
        "/v1/invites/{id}/unlock",
        unlock_invite,
        "Let an invite locked by wrong passwords be used again",
        EmptyBody,
        operation_id="unlockInvite",
        response=Unlocked,
    ),
)
