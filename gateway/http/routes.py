"""Every JSON route the server has, in one tuple: the router and OpenAPI are built from it."""

from __future__ import annotations

from gateway.http.api import ROUTES as ORGANISATION_ROUTES
from gateway.http.attempts_api import ATTEMPT_ROUTES
from gateway.http.consent_links_api import CONSENT_LINK_ROUTES
from gateway.http.incidents_api import INCIDENT_ROUTES
from gateway.http.live_api import LIVE_ROUTES
from gateway.http.notifications_api import NOTIFICATION_ROUTES
from gateway.http.recording_api import RECORDING_LIVE_ROUTES
from gateway.http.routing import Route

ALL_ROUTES: tuple[Route, ...] = (
    ORGANISATION_ROUTES
    + LIVE_ROUTES
    + INCIDENT_ROUTES
    + ATTEMPT_ROUTES
    + NOTIFICATION_ROUTES
    + RECORDING_LIVE_ROUTES
    + CONSENT_LINK_ROUTES
)
PUBLIC_PATHS = frozenset(
    [route.path for route in ALL_ROUTES if route.public] + ["/v1/openapi.json"]
)
