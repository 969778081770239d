"""Consent collected online (R7, R9): the guardian's consent page behind a personal link, the
admin's page that sends those links, and a member of staff's page for their own consent.

Server-rendered (Jinja2, autoescaped), no script. Parse -> one service call -> render, like the
staff pages (gateway/http/staff_pages.py), whose rules the staff parts share: signed in, CSRF
and same-origin on every form, refusals rendered and audited.

The guardian's part:
  * `GET /consent/link?token=…` shows a button only: opening the link uses nothing (mail
    scanners open links). The button posts the token from our own page.
  * `POST /consent/link/use` binds the link to this browser: cookie `gw_consent` (random, only
    its SHA-256 stored; HttpOnly, SameSite=Strict, Path=/consent, Secure under https), then
    `/consent`. From another browser the same link is a replay: refused, audited.
  * `GET /consent`, `POST /consent/give`, `POST /consent/withdraw` (per child and purpose; a
    child's own assent is a give signed by the child), `POST /consent/own/give|withdraw` (the
    guardian's own recording consent): the page and its forms; each form carries an HMAC of
    the cookie as its CSRF token and must come from our own origin.
  A withdrawal that meets a database outage answers 503 with Retry-After and a page whose
  button sends the same withdrawal again (exits are retried, never dropped: DESIGN §3).
  * After the link expires the bound browser's `/consent` is withdraw-only for a grace period
    (the cookie lasts that long); `POST /consent/link/renew` ("send me a new link"), from that
    page or from the refusal page of any link that cannot be used, e-mails a fresh link to the
    registry's address and answers the same whatever happened (services/consent_links.py).
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

from gateway.domain.audit import AuditEvent
from gateway.domain.consent_links import RENEWAL_ANSWER, TOKEN_MAX, token_link_id
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.esignature import TYPED_NAME_MAX, Signer
from gateway.domain.staff_session import token_matches
from gateway.http.errors import STATUS
from gateway.http.keys import SERVICES
from gateway.http.middleware import route_name
from gateway.http.staff_pages import (
    _check_origin,
    _field,
    _form,
    _headers,
    _render,
    _see_other,
    _signed_in,
    _signed_in_form,
    page,
)
from gateway.services.consent_links import (
    NOT_ONLINE,
    SIGNING_CLOSED,
    GuardianVisit,
    OnlineConsentService,
)
from gateway.services.staff_auth import SignedIn

__all__ = ["CONSENT_PAGES", "CONSENT_PAGE_ROUTES", "ConsentPages"]

log = logging.getLogger("gateway.http.consent")
TEMPLATES = Path(__file__).resolve().parent / "templates" / "consent"
COOKIE = "gw_consent"
COOKIE_PATH = "/consent"
VISIT = web.RequestKey("guardian_visit", GuardianVisit)


@dataclass(frozen=True, slots=True)
class WithdrawalRetry:
    child: str
    purpose: str
    csrf: str
    own: bool = False  # the guardian's own consent, not a child's


_RETRY = web.RequestKey("withdrawal_retry", WithdrawalRetry)
_RENEW = web.RequestKey("renewal_token", str)  # a refused link's page offers a new one
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


class ConsentPages:
    """What the consent pages need, wired by app.py."""

    def __init__(self, service: OnlineConsentService, public_url: str) -> None:
        self.service = service
        self.secure_cookies = public_url.startswith("https://")


CONSENT_PAGES = web.AppKey("consent_pages", ConsentPages)


def _service(request: web.Request) -> OnlineConsentService:
    return request.app[CONSENT_PAGES].service


# the guardian's pages ---------------------------------------------------------------------------
def _guardian_render(
    request: web.Request, template: str, status: int = 200, **context: Any
) -> web.Response:
    visit = request.get(VISIT)
    html = _env.get_template(template).render(
        visit=visit, csrf=visit.csrf_token if visit else "", **context
    )
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8", headers=_headers()
    )


def guardian_page(handler: Handler) -> Handler:
    """A refusal becomes a page with its status, audited under the guardian when known
    (anonymous ones at the sampled rate of every anonymous refusal)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refusal as refusal:
            visit = request.get(VISIT)
            services = request.app[SERVICES]
            route = route_name(request)
            try:
                if visit is not None:
                    await services.store.record(
                        [
                            AuditEvent(
                                "request.refused",
                                actor=visit.actor,
                                org_id=visit.organisation.id,
                                person_id=visit.guardian.id,
                                data={
                                    "code": refusal.code.value,
                                    "method": request.method,
                                    "route": route,
                                },
                            )
                        ]
                    )
                else:  # anonymous: one by one up to a rate, then counted (request_audit.py)
                    await services.audit.refused(
                        None, request.remote or "unknown", refusal.code.value, request.method, route
                    )
            except Refusal:
                log.error("refusal could not be audited", extra={"code": refusal.code.value})
            retry = request.get(_RETRY)
            response = _guardian_render(
                request,
                "refused.html",
                status=STATUS.get(refusal.code, 400),
                message=refusal.message,
                code=refusal.code.value,
                retry=retry if isinstance(refusal, Unavailable) else None,
                renew=request.get(_RENEW)
                if refusal.code is ErrorCode.CONSENT_LINK_INVALID
                else None,
            )
            if refusal.retry_after is not None:
                response.headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after)))
            return response

    return wrapped


async def _visit(request: web.Request) -> GuardianVisit:
    visit = await _service(request).visit(request.cookies.get(COOKIE))
    if visit is None:
        raise Refusal(
            ErrorCode.UNAUTHENTICATED,
            "Open the personal link from your e-mail on this device first.",
        )
    request[VISIT] = visit
    return visit


async def _visit_form(request: web.Request) -> tuple[GuardianVisit, Mapping[str, Any]]:
    visit = await _visit(request)
    _check_origin(request)
    form = await _form(request)
    if not token_matches(visit.csrf_token, _field(form, "csrf", 200)):
        raise Refusal(ErrorCode.CSRF_REFUSED, "This form has expired; open the page again.")
    return visit, form


@guardian_page
async def link_page(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")
    return _guardian_render(request, "use_link.html", token=token if token_link_id(token) else "")


@guardian_page
async def use_link(request: web.Request) -> web.StreamResponse:
    # No form token: the e-mail's link is the secret; it is bound to this browser when used.
    _check_origin(request)
    form = await _form(request)
    pages = request.app[CONSENT_PAGES]
    token = _field(form, "token", TOKEN_MAX)
    if token_link_id(token):
        request[_RENEW] = token
    cookie = await pages.service.open_link(token, request.cookies.get(COOKIE))
    response = _see_other(COOKIE_PATH)
    response.set_cookie(
        COOKIE,
        cookie,
        # Past the link's expiry the browser keeps a withdraw-only page for a while (R9).
        max_age=_service(request).cookie_lifetime_seconds,
        path=COOKIE_PATH,
        httponly=True,
        secure=pages.secure_cookies,
        samesite="Strict",
    )
    return response


@guardian_page
async def renew_link(request: web.Request) -> web.StreamResponse:
    """ "Send me a new link": with a link's token (the refusal page), or from the bound
    browser's own page (its cookie and form token). One answer whatever happened."""
    _check_origin(request)
    form = await _form(request)
    token = _field(form, "token", TOKEN_MAX)
    cookie = None
    if not token:
        await _visit_form(request)
        cookie = request.cookies.get(COOKIE)
    if not await _service(request).request_new_link(token, cookie, _source(request)):
        # A token naming no link of ours: audited like every anonymous refusal, answered alike.
        await request.app[SERVICES].audit.refused(
            None,
            _source(request),
            ErrorCode.CONSENT_LINK_INVALID.value,
            request.method,
            route_name(request),
        )
    return _guardian_render(request, "renewed.html", message=RENEWAL_ANSWER)


def _source(request: web.Request) -> str:
    return request.remote or "unknown"


@guardian_page
async def guardian_consent_page(request: web.Request) -> web.StreamResponse:
    visit = await _visit(request)
    service = _service(request)
    children = await service.children_of(visit)
    own = await service.guardian_own_offers(visit)
    return _guardian_render(
        request,
        "page.html",
        children=children,
        own=own,
        typed_name_max=TYPED_NAME_MAX,
        signing_closed=SIGNING_CLOSED,
        organisation_only_on_paper=NOT_ONLINE,
    )


@guardian_page
async def guardian_give(request: web.Request) -> web.StreamResponse:
    visit, form = await _visit_form(request)
    signer = _field(form, "signer", 16)
    if signer not in (Signer.GUARDIAN.value, Signer.CHILD.value):
        raise Refusal(ErrorCode.BODY_INVALID, "Choose who is signing.")
    await _service(request).guardian_gives(
        visit,
        _field(form, "child", 64),
        _field(form, "purpose", 100),
        Signer(signer),
        _field(form, "typed_name", TYPED_NAME_MAX * 4),
        _field(form, "shown", 100),
    )
    return _see_other(f"{COOKIE_PATH}#done")


async def _retry_on_outage(request: web.Request, *, own: bool) -> Mapping[str, Any]:
    """Before anything can meet an outage (even finding the browser's link), keep what a
    withdrawal's refusal page needs to send the same withdrawal again. The form token is
    echoed as sent (escaped, bounded) and checked again when the withdrawal is retried."""
    _check_origin(request)
    form = await _form(request)
    request[_RETRY] = WithdrawalRetry(
        "" if own else _field(form, "child", 64),
        _field(form, "purpose", 100),
        _field(form, "csrf", 200),
        own,
    )
    return form


@guardian_page
async def guardian_withdraw(request: web.Request) -> web.StreamResponse:
    form = await _retry_on_outage(request, own=False)
    visit, _ = await _visit_form(request)
    await _service(request).guardian_withdraws(
        visit, _field(form, "child", 64), _field(form, "purpose", 100)
    )
    return _see_other(f"{COOKIE_PATH}#done")


@guardian_page
async def guardian_give_own(request: web.Request) -> web.StreamResponse:
    visit, form = await _visit_form(request)
    await _service(request).guardian_gives_own(
        visit,
        _field(form, "purpose", 100),
        _field(form, "typed_name", TYPED_NAME_MAX * 4),
        _field(form, "shown", 100),
    )
    return _see_other(f"{COOKIE_PATH}#own")


@guardian_page
async def guardian_withdraw_own(request: web.Request) -> web.StreamResponse:
    form = await _retry_on_outage(request, own=True)
    visit, _ = await _visit_form(request)
    await _service(request).guardian_withdraws_own(visit, _field(form, "purpose", 100))
    return _see_other(f"{COOKIE_PATH}#own")


# a member of staff's own consent ----------------------------------------------------------------
@page
async def staff_consent_page(request: web.Request) -> web.StreamResponse:
    who = await _signed_in(request)
    if who is None:
        return _see_other("/staff/sign-in")
    offers = await _service(request).staff_offers(who.organisation, who.staff)
    return _render(request, "my_consent.html", offers=offers, typed_name_max=TYPED_NAME_MAX)


@page
async def staff_give(request: web.Request) -> web.StreamResponse:
    who, form = await _signed_in_form(request)
    await _service(request).staff_gives(
        who.organisation,
        who.staff,
        _field(form, "purpose", 100),
        _field(form, "typed_name", TYPED_NAME_MAX * 4),
        _field(form, "shown", 100),
    )
    return _see_other("/staff/consent")


@page
async def staff_withdraw(request: web.Request) -> web.StreamResponse:
    who, form = await _signed_in_form(request)
    await _service(request).staff_withdraws(
        who.organisation, who.staff, _field(form, "purpose", 100)
    )
    return _see_other("/staff/consent")


# an admin sends consent links -------------------------------------------------------------------
async def _admin(request: web.Request) -> SignedIn | web.StreamResponse:
    who = await _signed_in(request)
    if who is None:
        return _see_other("/staff/sign-in")
    return who


@page
async def consent_links_page(request: web.Request) -> web.StreamResponse:
    who = await _admin(request)
    if not isinstance(who, SignedIn):
        return who
    service = _service(request)
    guardians = await service.guardians(who.organisation, who.staff)
    return _render(
        request,
        "consent_links.html",
        guardians=guardians,
        sent=None,
        can_email=await service.can_email(who.organisation),
    )


@page
async def send_consent_link(request: web.Request) -> web.StreamResponse:
    who, form = await _signed_in_form(request)
    service = _service(request)
    sent = await service.send_link(who.organisation, who.staff, _field(form, "guardian", 64))
    guardians = await service.guardians(who.organisation, who.staff)
    return _render(request, "consent_links.html", guardians=guardians, sent=sent, can_email=True)


CONSENT_PAGE_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/consent/link", link_page),
    ("POST", "/consent/link/use", use_link),
    ("POST", "/consent/link/renew", renew_link),
    ("GET", "/consent", guardian_consent_page),
    ("POST", "/consent/give", guardian_give),
    ("POST", "/consent/withdraw", guardian_withdraw),
    ("POST", "/consent/own/give", guardian_give_own),
    ("POST", "/consent/own/withdraw", guardian_withdraw_own),
    ("GET", "/staff/consent", staff_consent_page),
    ("POST", "/staff/consent/give", staff_give),
    ("POST", "/staff/consent/withdraw", staff_withdraw),
    ("GET", "/staff/consent-links", consent_links_page),
    ("POST", "/staff/consent-links", send_consent_link),
)
