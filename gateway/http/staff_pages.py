"""The staff pages (R5, R13, R14): sign-in, the staff home, and the DSL's incident desk.

Server-rendered (Jinja2, autoescaped), no script needed. Parse -> one service call -> render.

Cookies:
  * `gw_staff`: the staff session (random; only its SHA-256 is stored). HttpOnly, SameSite=Strict,
    Path=/, Secure when GATEWAY_PUBLIC_URL is https.
  * `gw_staff_pre`: before sign-in, a random value that binds the sign-in forms (their CSRF
    token is an HMAC of it) and the sign-in links asked for from this browser.

Every POST must come from the gateway's own origin (Origin, else Referer) and carry the form's
CSRF token: the session's synchronizer token once signed in, the HMAC of the pre-sign-in cookie
before. A refusal is rendered as a page with the refusal's status and audited, like the JSON
API's ("request.refused" with the code and route, never the values sent).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.incidents import IncidentStatus, check_can_close
from gateway.domain.staff_session import (
    CLOSING_OUTCOMES,
    PRE_COOKIE,
    REASON_MAX,
    SESSION_COOKIE,
    check_closing,
    check_may_open_incident_desk,
    closing_note,
    form_token,
    new_secret,
    role_names,
    same_origin,
    token_matches,
    well_formed_secret,
)
from gateway.http.errors import STATUS
from gateway.http.keys import SERVICES
from gateway.http.middleware import route_name
from gateway.http.pages import SECURITY_HEADERS
from gateway.services.incidents import IncidentService
from gateway.services.staff_auth import SignedIn, StaffAuthService

__all__ = ["STAFF_PAGES", "STAFF_PAGE_ROUTES", "StaffPages"]

log = logging.getLogger("gateway.http.staff")
TEMPLATES = Path(__file__).resolve().parent / "templates" / "staff"
FORM_LIMIT = 16_384  # bytes: the largest form (a note) is 4,000 characters
PRE_COOKIE_SECONDS = 24 * 3600
SIGNED_IN = web.RequestKey("staff_signed_in", SignedIn)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class StaffPages:
    """What the staff pages need, wired by app.py."""

    auth: StaffAuthService
    incidents: IncidentService
    form_key: bytes  # HMAC key for the pre-sign-in forms' CSRF tokens
    public_url: str

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


STAFF_PAGES = web.AppKey("staff_pages", StaffPages)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# rendering --------------------------------------------------------------------------------------
def _headers() -> dict[str, str]:
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on form
    # posts, and the Origin check is one of our CSRF defences.
    return {**SECURITY_HEADERS, "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def _render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    who = request.get(SIGNED_IN)
    html = _env.get_template(template).render(
        who=who,
        roles=role_names(who.staff) if who else [],
        csrf=who.csrf_token if who else "",
        **context,
    )
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8", headers=_headers()
    )


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={**_headers(), "Location": location})


def page(handler: Handler) -> Handler:
    """A refusal becomes a page (same status and message as the API would give), audited."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refusal as refusal:
            who = request.get(SIGNED_IN)
            try:
                await request.app[SERVICES].store.record(
                    [
                        AuditEvent(
                            "request.refused",
                            actor=who.actor if who else "anonymous",
                            org_id=who.organisation.id if who else None,
                            person_id=who.staff.id if who else None,
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
            response = _render(
                request,
                "refused.html",
                status=STATUS.get(refusal.code, 400),
                message=refusal.message,
                code=refusal.code.value,
            )
            if refusal.retry_after is not None:
                response.headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after)))
            return response

    return wrapped


# request helpers --------------------------------------------------------------------------------
def _pages(request: web.Request) -> StaffPages:
    return request.app[STAFF_PAGES]


def _source(request: web.Request) -> str:
    return request.remote or "unknown"


def _pre_cookie(request: web.Request) -> str | None:
    value = request.cookies.get(PRE_COOKIE)
    return value if well_formed_secret(value) else None


def _set_cookie(
    response: web.StreamResponse, pages: StaffPages, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=pages.secure_cookies,
        samesite="Strict",
    )


def _clear_session_cookie(response: web.StreamResponse, pages: StaffPages) -> None:
    response.del_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=pages.secure_cookies, samesite="Strict"
    )


async def _form(request: web.Request) -> MultiDictProxy[str | bytes | Any]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise Refusal(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Send the page's form.")
    if request.content_length is not None and request.content_length > FORM_LIMIT:
        raise Refusal(ErrorCode.BODY_TOO_LARGE, f"The form is over {FORM_LIMIT} bytes.")
    return await request.post()


def _field(form: Mapping[str, Any], name: str, limit: int = 4000) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if len(value) > limit:
        raise Refusal(ErrorCode.BODY_INVALID, f"{name} is at most {limit} characters.")
    return value


def _check_origin(request: web.Request) -> None:
    if not same_origin(
        _pages(request).public_url, request.headers.get("Origin"), request.headers.get("Referer")
    ):
        raise Refusal(ErrorCode.CSRF_REFUSED, "This form did not come from the gateway's pages.")


async def _anonymous_form(request: web.Request) -> Mapping[str, Any]:
    """A sign-in form: same origin, and its token is the HMAC of this browser's cookie."""
    _check_origin(request)
    form = await _form(request)
    pre = _pre_cookie(request)
    expected = form_token(_pages(request).form_key, pre) if pre else None
    if not token_matches(expected, _field(form, "csrf", 200)):
        raise Refusal(ErrorCode.CSRF_REFUSED, "This form has expired; open the sign-in page again.")
    return form


async def _signed_in(request: web.Request) -> SignedIn | None:
    who = await _pages(request).auth.signed_in(request.cookies.get(SESSION_COOKIE))
    if who is not None:
        request[SIGNED_IN] = who
    return who


async def _signed_in_form(request: web.Request) -> tuple[SignedIn, Mapping[str, Any]]:
    """A form from a signed-in page: same origin, the session's own CSRF token."""
    who = await _signed_in(request)
    if who is None:
        raise Refusal(ErrorCode.UNAUTHENTICATED, "You are signed out; sign in again.")
    _check_origin(request)
    form = await _form(request)
    if not token_matches(who.csrf_token, _field(form, "csrf", 200)):
        raise Refusal(ErrorCode.CSRF_REFUSED, "This form has expired; open the page again.")
    return who, form


def _open_session(location: str, pages: StaffPages, cookie: str) -> web.StreamResponse:
    response = _see_other(location)
    _set_cookie(
        response,
        pages,
        SESSION_COOKIE,
        cookie,
        int(pages.auth.timeouts.absolute.total_seconds()),
    )
    return response


# sign-in ----------------------------------------------------------------------------------------
@page
async def sign_in_page(request: web.Request) -> web.StreamResponse:
    if await _signed_in(request) is not None:
        return _see_other("/staff")
    pages = _pages(request)
    pre = _pre_cookie(request) or new_secret()
    response = _render(
        request,
        "sign_in.html",
        form_csrf=form_token(pages.form_key, pre),
        link_enabled=pages.auth.links_enabled,
    )
    _set_cookie(response, pages, PRE_COOKIE, pre, PRE_COOKIE_SECONDS)
    return response


@page
async def request_link(request: web.Request) -> web.StreamResponse:
    form = await _anonymous_form(request)
    pre = _pre_cookie(request)
    assert pre is not None  # checked by the form token
    await _pages(request).auth.request_link(_field(form, "email", 320), pre, _source(request))
    return _render(request, "check_email.html")


@page
async def link_page(request: web.Request) -> web.StreamResponse:
    """The link from the e-mail only shows a button: opening it uses nothing (mail scanners
    open links), and the post that uses it comes from our own page, with this browser's
    cookies."""
    token = request.query.get("token", "")
    return _render(request, "use_link.html", token=token if well_formed_secret(token) else "")


@page
async def use_link(request: web.Request) -> web.StreamResponse:
    # No form token here: this browser's cookie may not have been sent when the e-mail's link
    # was opened (SameSite=Strict); the link itself is the secret, bound to the cookie.
    _check_origin(request)
    form = await _form(request)
    pages = _pages(request)
    opened = await pages.auth.redeem_link(
        _field(form, "token", 200), _pre_cookie(request), _source(request)
    )
    return _open_session(
        "/staff" if opened.has_password else "/staff/password", pages, opened.cookie
    )


@page
async def sign_in_with_password(request: web.Request) -> web.StreamResponse:
    form = await _anonymous_form(request)
    pages = _pages(request)
    opened = await pages.auth.sign_in_with_password(
        _field(form, "email", 320), _field(form, "password", 1024), _source(request)
    )
    return _open_session("/staff", pages, opened.cookie)


# signed in --------------------------------------------------------------------------------------
@page
async def home(request: web.Request) -> web.StreamResponse:
    who = await _signed_in(request)
    if who is None:
        return _see_other("/staff/sign-in")
    return _render(
        request,
        "home.html",
        may_set_password=_pages(request).auth.may_set_password(who),
        desk=_may_open_desk(who),
    )


@page
async def password_page(request: web.Request) -> web.StreamResponse:
    who = await _signed_in(request)
    if who is None:
        return _see_other("/staff/sign-in")
    return _render(
        request, "password.html", allowed=_pages(request).auth.may_set_password(who), done=False
    )


@page
async def set_password(request: web.Request) -> web.StreamResponse:
    who, form = await _signed_in_form(request)
    await _pages(request).auth.set_password(
        who, _field(form, "password", 1024), _field(form, "confirmation", 1024)
    )
    return _render(request, "password.html", allowed=False, done=True)


@page
async def sign_out(request: web.Request) -> web.StreamResponse:
    who, _ = await _signed_in_form(request)
    pages = _pages(request)
    await pages.auth.sign_out(who)
    response = _see_other("/staff/sign-in")
    _clear_session_cookie(response, pages)
    return response


@page
async def sign_out_everywhere(request: web.Request) -> web.StreamResponse:
    who, _ = await _signed_in_form(request)
    pages = _pages(request)
    await pages.auth.sign_out_everywhere(who)
    response = _see_other("/staff/sign-in")
    _clear_session_cookie(response, pages)
    return response


# the incident desk ------------------------------------------------------------------------------
def _may_open_desk(who: SignedIn) -> bool:
    try:
        check_may_open_incident_desk(who.staff)
    except Refusal:
        return False
    return True


async def _desk(request: web.Request) -> SignedIn | web.StreamResponse:
    who = await _signed_in(request)
    if who is None:
        return _see_other("/staff/sign-in")
    check_may_open_incident_desk(who.staff)
    return who


@page
async def incident_list(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    status_text = request.query.get("status", "open")
    status = IncidentStatus(status_text) if status_text in ("open", "closed") else None
    listing = await _pages(request).incidents.list(
        who.organisation, status=status, viewer=who.staff
    )
    return _render(request, "incidents.html", items=listing.items, showing=status_text)


async def _incident_page(
    request: web.Request, who: SignedIn, status: int = 200, error: str | None = None
) -> web.Response:
    detail = await _pages(request).incidents.get(
        who.organisation, request.match_info["id"], viewer=who.staff
    )
    return _render(
        request,
        "incident.html",
        status=status,
        incident=detail.incident,
        notes=detail.notes,
        rights=detail.rights,
        dsl=detail.dsl,
        outcomes=CLOSING_OUTCOMES,
        reason_max=REASON_MAX,
        error=error,
    )


@page
async def incident_detail(request: web.Request) -> web.StreamResponse:
    who = await _desk(request)
    if not isinstance(who, SignedIn):
        return who
    return await _incident_page(request, who)


@page
async def add_note(request: web.Request) -> web.StreamResponse:
    who, form = await _signed_in_form(request)
    check_may_open_incident_desk(who.staff)
    incident_id = request.match_info["id"]
    await _pages(request).incidents.add_note(
        who.organisation, who.staff, incident_id, _field(form, "text")
    )
    return _see_other(f"/staff/incidents/{incident_id}")


@page
async def close_incident(request: web.Request) -> web.StreamResponse:
    who, form = await _signed_in_form(request)
    check_may_open_incident_desk(who.staff)
    incident_id = request.match_info["id"]
    outcome, reason = check_closing(
        _field(form, "outcome", 64), _field(form, "reason", REASON_MAX + 100)
    )
    incidents = _pages(request).incidents
    detail = await incidents.get(who.organisation, incident_id, viewer=who.staff)
    check_can_close(detail.incident)
    # The outcome and reason are the case record's last note, then the incident is closed.
    await incidents.add_note(
        who.organisation, who.staff, incident_id, closing_note(outcome, reason)
    )
    await incidents.close(who.organisation, who.staff, incident_id)
    return _see_other(f"/staff/incidents/{incident_id}")


_STYLESHEET = (TEMPLATES / "staff.css").read_bytes()


async def stylesheet(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=_STYLESHEET,
        headers={**_headers(), "Cache-Control": "no-cache", "Content-Type": "text/css"},
    )


STAFF_PAGE_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/staff", home),
    ("GET", "/staff/staff.css", stylesheet),
    ("GET", "/staff/sign-in", sign_in_page),
    ("POST", "/staff/sign-in/link", request_link),
    ("GET", "/staff/sign-in/link", link_page),
    ("POST", "/staff/sign-in/link/use", use_link),
    ("POST", "/staff/sign-in/password", sign_in_with_password),
    ("GET", "/staff/password", password_page),
    ("POST", "/staff/password", set_password),
    ("POST", "/staff/sign-out", sign_out),
    ("POST", "/staff/sign-out-everywhere", sign_out_everywhere),
    ("GET", "/staff/incidents", incident_list),
    ("GET", "/staff/incidents/{id}", incident_detail),
    ("POST", "/staff/incidents/{id}/notes", add_note),
    ("POST", "/staff/incidents/{id}/close", close_incident),
)
