"""Cross-cutting request handling: errors, refusal audit, authentication, metrics, logs."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.http.errors import error_response
from gateway.http.keys import PUBLIC_PATHS, SERVICES
from gateway.services.ports import Organisation

log = logging.getLogger("gateway.http")
VALID_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ORG = web.RequestKey("org", Organisation)


def route_name(request: web.Request) -> str:
    """The route's template, never the concrete path (ids and tokens stay out of logs)."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refusal as refusal:
        org: Organisation | None = request.get(ORG)
        try:
            await request.app[SERVICES].store.record(
                [
                    AuditEvent(
                        "request.refused",
                        actor=org.id if org else "anonymous",
                        org_id=org.id if org else None,
                        data={
                            "code": refusal.code.value,
                            "method": request.method,
                            "route": route_name(request),
                        },
                    )
                ]
            )
        except Refusal:
            log.error("refusal could not be audited", extra={"code": refusal.code.value})
        headers = None
        if refusal.retry_after is not None:
            headers = {"Retry-After": str(max(1, math.ceil(refusal.retry_after)))}
        return error_response(refusal, headers)
    except web.HTTPException as exc:
        if exc.status == 404:
            return error_response(Refusal(ErrorCode.NOT_FOUND, "Not found."))
        if exc.status == 405:
            return error_response(Refusal(ErrorCode.NOT_FOUND, "Not found."))
        if exc.status == 413:
            return error_response(Refusal(ErrorCode.BODY_TOO_LARGE, "The body is too large."))
        raise
    except Exception:
        log.exception("unhandled error", extra={"route": route_name(request)})
        return error_response(Refusal(ErrorCode.INTERNAL, "Internal error."))


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/v1/") and path not in request.app[PUBLIC_PATHS]:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        org = None
        if scheme.lower() == "bearer" and key:
            org = await request.app[SERVICES].organisations.authenticate(key.strip())
        if org is None:
            raise Refusal(ErrorCode.UNAUTHENTICATED, "A valid API key is required.")
        request[ORG] = org
    # Ids in paths are opaque tokens; anything else cannot exist (and never reaches the store).
    for value in request.match_info.values():
        if not VALID_ID.match(value):
            raise Refusal(ErrorCode.NOT_FOUND, "Not found.")
    return await handler(request)


def metrics_middleware(registry: CollectorRegistry) -> Middleware:
    requests = Counter(
        "gateway_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "gateway_http_request_seconds", "HTTP request latency", ["route"], registry=registry
    )

    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        route = route_name(request)
        requests.labels(request.method, route, str(response.status)).inc()
        latency.labels(route).observe(time.perf_counter() - started)
        log.info(
            "request",
            extra={"method": request.method, "route": route, "status": response.status},
        )
        return response

    return measure
