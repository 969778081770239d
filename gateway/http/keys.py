"""Typed application state (aiohttp AppKey)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway.services.attempts import AttemptGuard
from gateway.services.bundle import Services
from gateway.settings import Settings

SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", CollectorRegistry)
PUBLIC_PATHS = web.AppKey("public_paths", frozenset)
ATTEMPTS = web.AppKey("attempts", AttemptGuard)
