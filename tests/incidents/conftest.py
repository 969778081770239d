"""Helpers for the incident tests; the gateway itself is the standard `gateway` fixture."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.adapters.alerts_memory import InProcessAlerts
from gateway.http.keys import SERVICES


def alerts_hub(app: web.Application) -> InProcessAlerts:
    """The in-process alert hub the gateway publishes to (the one AdmissionService uses)."""
    hub: Any = app[SERVICES].admission._alerts
    assert isinstance(hub, InProcessAlerts)
    return hub
