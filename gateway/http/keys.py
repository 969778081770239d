"""Typed application state (aiohttp AppKey)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway.domain.errors import ErrorCode
from gateway.services.attempts import AttemptGuard
from gateway.services.bundle import Services
from gateway.settings import Settings

SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", CollectorRegistry)
PUBLIC_PATHS = web.AppKey("public_paths", frozenset)
ATTEMPTS = web.AppKey("attempts", AttemptGuard)

# Raw dependency errors and what they mean, given by the composition root (the HTTP layer does
# not import the adapters' libraries): (exception types, modules it must have been raised
# through, or () for anywhere; the code of the 503).
DependencyErrors = tuple[tuple[tuple[type[BaseException], ...], tuple[str, ...], ErrorCode], ...]
DEPENDENCY_ERRORS: web.AppKey[DependencyErrors] = web.AppKey("dependency_errors")
