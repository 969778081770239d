"""Cross-cutting request handling: request ids, errors, refusal audit, authentication, metrics,
logs and the headers every answer carries.

Order (outermost first): `request_context` (request id, metrics, one log line), `refusals`
(every exception becomes one JSON answer with a stable code, in one place), `authentication`.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.http.client_address import client_address
from gateway.http.errors import error_response
from gateway.http.keys import (
    DEPENDENCY_ERRORS,
    PUBLIC_PATHS,
    SERVICES,
    SETTINGS,
    DependencyErrors,
)
from gateway.services.ports import Organisation

log = logging.getLogger("gateway.http")
VALID_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ORG = web.RequestKey("org", Organisation)
REQUEST_ID = web.RequestKey("request_id", str)
SERVER = "safeguarding-gateway"  # what the Server header says: no product or version numbers


def route_name(request: web.Request) -> str:
    """The route's template, never the concrete path (ids and tokens stay out of logs)."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def client_source(request: web.Request) -> str:
    """Who sent a request, to rate anonymous refusals; kept in memory only, never logged. Behind
    a trusted proxy, the client it forwarded for (one rule for the whole gateway)."""
    return client_address(request, request.app[SETTINGS].trusted_proxies)


def request_id(request: web.Request) -> str:
    found = request.get(REQUEST_ID)
    if found is None:
        found = request[REQUEST_ID] = secrets.token_hex(8)
    return found


async def response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every answer of the app, errors and static files included.
    Answers are personal (one carries a media credential): never cached unless the handler
    said otherwise (static files revalidate), never content-sniffed."""
    response.headers["X-Request-Id"] = request_id(request)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Server"] = SERVER


def request_context(registry: CollectorRegistry) -> Middleware:
    requests = Counter(
        "gateway_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "gateway_http_request_seconds", "HTTP request latency", ["route"], registry=registry
    )

    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        ident = request_id(request)
        response = await handler(request)
        route = route_name(request)
        requests.labels(request.method, route, str(response.status)).inc()
        latency.labels(route).observe(time.perf_counter() - started)
        log.info(
            "request",
            extra={
                "method": request.method,
                "route": route,
                "status": response.status,
                "request_id": ident,
            },
        )
        return response

    return measure


# Statuses aiohttp raises itself (routing, its own body limit), as our refusals.
ROUTING: dict[int, tuple[ErrorCode, str]] = {
    404: (ErrorCode.NOT_FOUND, "Not found."),
    405: (ErrorCode.METHOD_NOT_ALLOWED, "This method is not allowed here."),
    413: (ErrorCode.BODY_TOO_LARGE, "The body is too large."),
    415: (ErrorCode.UNSUPPORTED_MEDIA_TYPE, "The body must be application/json."),
}


@web.middleware
async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place where an exception becomes an answer: refusals with their status and
    `Retry-After`; aiohttp's routing errors as refusals (405 keeps its `Allow`); a dependency
    that failed without saying so (a raw SQL, Redis or network error) as 503; anything else as
    a 500 that is logged and audited under the request id it returns."""
    try:
        return await handler(request)
    except Refusal as refusal:
        await _audit_refusal(request, refusal)
        return _answer(refusal)
    except web.HTTPException as exc:
        if exc.status not in ROUTING:
            raise
        code, message = ROUTING[exc.status]
        routing = Refusal(code, message)
        await _audit_refusal(request, routing)
        allow = exc.headers.get("Allow")
        return _answer(routing, {"Allow": allow} if allow is not None else None)
    except Exception as exc:
        unavailable = _dependency_failure(exc, request.app.get(DEPENDENCY_ERRORS, ()))
        if unavailable is not None:
            log.warning(
                "dependency unavailable",
                extra=_log_fields(request, code=unavailable.code.value, error=_kind(exc)),
            )
            await _audit_refusal(request, unavailable)
            return _answer(unavailable)
        return await _failed(request, exc)


async def _failed(request: web.Request, exc: Exception) -> web.Response:
    ident = request_id(request)
    log.error(
        "unhandled error",
        exc_info=exc,
        extra=_log_fields(request, code=ErrorCode.INTERNAL.value, error=_kind(exc)),
    )
    org: Organisation | None = request.get(ORG)
    try:
        await request.app[SERVICES].audit.failed(
            org.id if org else None, ident, _kind(exc), request.method, route_name(request)
        )
    except Exception as audit_error:
        log.error(
            "failure could not be audited",
            extra=_log_fields(request, code=ErrorCode.INTERNAL.value, error=_kind(audit_error)),
        )
    refusal = Refusal(ErrorCode.INTERNAL, "Internal error. Quote the request id if you report it.")
    return error_response(refusal, request_id=ident)


def _answer(refusal: Refusal, headers: dict[str, str] | None = None) -> web.Response:
    if refusal.retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(max(1, math.ceil(refusal.retry_after)))}
    return error_response(refusal, headers)


async def _audit_refusal(request: web.Request, refusal: Refusal) -> None:
    """Refusals are audited: one by one for an organisation's key, sampled past a rate for
    anonymous callers (see `RequestAudit`); those of an outage too (the host of a child
    refused while Redis is down must be able to see it), except when the database itself, where
    the audit log lives, is the one that is down."""
    if refusal.code is ErrorCode.DATABASE_UNAVAILABLE or SERVICES not in request.app:
        return
    org: Organisation | None = request.get(ORG)
    try:
        await request.app[SERVICES].audit.refused(
            org.id if org else None,
            client_source(request),
            refusal.code.value,
            request.method,
            route_name(request),
        )
    except Exception as exc:
        log.error(
            "refusal could not be audited",
            extra=_log_fields(request, code=refusal.code.value, error=_kind(exc)),
        )


def _dependency_failure(exc: BaseException, table: DependencyErrors) -> Unavailable | None:
    """The `Unavailable` a raw dependency error stands for, or None. The composition root
    gives the table: a row matches an exception of one of its types, raised (when the row
    names modules) through code of one of those modules, e.g. a bare `OSError` from the Redis
    client, or a driver error raised while the SQL pool was connecting."""
    for types, modules, code in table:
        if isinstance(exc, types) and (not modules or _raised_in(exc.__traceback__, modules)):
            return Unavailable(code, _UNAVAILABLE_MESSAGE)
    return None


_UNAVAILABLE_MESSAGE = "A service the gateway depends on is unavailable. Try again shortly."


def _raised_in(trace: TracebackType | None, modules: Sequence[str]) -> bool:
    while trace is not None:
        name = str(trace.tb_frame.f_globals.get("__name__", ""))
        if any(name == module or name.startswith(module + ".") for module in modules):
            return True
        trace = trace.tb_next
    return False


def _kind(exc: BaseException) -> str:
    return type(exc).__name__


def _log_fields(request: web.Request, **fields: object) -> dict[str, object]:
    return {
        "method": request.method,
        "route": route_name(request),
        "request_id": request_id(request),
        **fields,
    }


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
        if not VALID_ID.fullmatch(value):
            raise Refusal(ErrorCode.NOT_FOUND, "Not found.")
    return await handler(request)


def bearer_matches(request: web.Request, expected: str) -> bool:
    """Whether the request carries `Authorization: Bearer <expected>` (constant time)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        given.strip().encode(), expected.encode()
    )
