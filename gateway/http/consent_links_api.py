"""A guardian's personal consent link, sent through the JSON API by an organisation that
integrates the gateway (its API key, like every /v1 admin route).

`POST /v1/guardians/{id}/consent-links` follows the staff page's rules and audit exactly
(services/consent_links.py `send_link_as`): the e-mail goes through the outbox to the
registry's address, older unused links are revoked, and the answer never carries the token
or the address (the link exists only in the e-mail).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from gateway.http.bodies import EmptyBody, parse_body
from gateway.http.consent_pages import CONSENT_PAGES
from gateway.http.keys import SETTINGS
from gateway.http.middleware import ORG
from gateway.http.routing import Route
from gateway.http.views import View


class ConsentLinkSent(View):
    guardian_id: str
    link_id: str
    expires_at: datetime
    revoked: int  # the guardian's older unused links this one replaced


async def send_consent_link(request: web.Request) -> web.Response:
    await parse_body(request, EmptyBody, request.app[SETTINGS].max_body_bytes)
    org = request[ORG]
    guardian, link, revoked = await request.app[CONSENT_PAGES].service.send_link_as(
        org, f"api:{org.id}", "api", request.match_info["id"][:64]
    )
    view = ConsentLinkSent(
        guardian_id=guardian.id, link_id=link.id, expires_at=link.expires_at, revoked=revoked
    )
    return web.json_response(view.render(), status=202)


CONSENT_LINK_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/guardians/{id}/consent-links",
        send_consent_link,
        "E-mail a guardian a personal consent link (revokes their older unused links; audited)",
        EmptyBody,
        statuses=(202,),
        operation_id="sendGuardianConsentLink",
        response=ConsentLinkSent,
    ),
)
