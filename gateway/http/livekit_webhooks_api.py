"""`POST /platform/livekit/webhook`: LiveKit's webhooks, read raw (bounded), handed to the
service before anything parses them (the signature covers the raw bytes).

Answers: 200 `{"outcome": ...}` for anything verified and not refused (duplicates, stale and
unknown rooms included: LiveKit must not retry them); 401 `unauthenticated` for any signature
problem (one answer whatever failed); 403 `forbidden` for another organisation's room; 413 over
the body limit; 415 unless `application/webhook+json` (what LiveKit sends) or JSON.
"""

from __future__ import annotations

from aiohttp import web

from gateway.domain.errors import ErrorCode, Refusal
from gateway.http.bodies import read_bounded
from gateway.http.keys import SETTINGS
from gateway.services.livekit_webhooks import LiveKitWebhooks

__all__ = ["LIVEKIT_WEBHOOKS", "WEBHOOK_PATH", "WEBHOOK_ROUTES"]

LIVEKIT_WEBHOOKS = web.AppKey("livekit_webhooks", LiveKitWebhooks)
WEBHOOK_PATH = "/platform/livekit/webhook"
CONTENT_TYPES = ("application/webhook+json", "application/json")


async def livekit_webhook(request: web.Request) -> web.Response:
    if request.content_type not in CONTENT_TYPES:
        raise Refusal(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "The body must be a LiveKit webhook.")
    raw = await read_bounded(request, request.app[SETTINGS].max_body_bytes)
    outcome = await request.app[LIVEKIT_WEBHOOKS].receive(
        raw, request.headers.get("Authorization"), WEBHOOK_PATH
    )
    return web.json_response({"outcome": outcome.value})


WEBHOOK_ROUTES = (("POST", WEBHOOK_PATH, livekit_webhook),)
