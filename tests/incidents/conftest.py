"""Until gateway/app.py wires the incident log, this `gateway` fixture (shadowing the standard
one for tests/incidents only) serves a real gateway with INCIDENT_ROUTES and the INCIDENTS key
added the way app.py will: routes before the app starts, the service built once the runtime
(store, alerts, live service) exists; the concern route and supervision's incident hook
are wired too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.adapters.alerts_memory import InProcessAlerts
from gateway.adapters.sql.incidents import SqlIncidentStore
from gateway.app import build_app
from gateway.clock import FrozenClock
from gateway.http.incidents_api import INCIDENT_ROUTES, INCIDENTS, IncidentConcernReporter
from gateway.http.keys import SERVICES
from gateway.http.live_api import LIVE, REPORT_CONCERN
from gateway.services.incidents import IncidentService
from gateway.settings import Settings
from tests.plugins.gateway_server import MONDAY_10AM, ROOT, Gateway
from tests.plugins.servers import free_port


def alerts_hub(app: web.Application) -> InProcessAlerts:
    """The in-process alert hub the gateway publishes to (the one AdmissionService uses)."""
    hub: Any = app[SERVICES].admission._alerts
    assert isinstance(hub, InProcessAlerts)
    return hub


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    clock = FrozenClock(MONDAY_10AM)
    port = free_port()
    settings = Settings(
        database_url=database_url,
        policy_path=ROOT / "policies" / "default.toml",
        keys_dir=tmp_path / "keys",
        public_url=f"http://127.0.0.1:{port}",
        max_body_bytes=65536,
    )
    app = build_app(settings, clock)
    for route in INCIDENT_ROUTES:
        app.router.add_route(route.method, route.path, route.handler)

    async def wire_incidents(app: web.Application) -> None:
        services = app[SERVICES]
        store: Any = services.store
        incidents = IncidentService(
            SqlIncidentStore(store.writer, store._reader), store, alerts_hub(app), clock
        )
        app[INCIDENTS] = incidents
        app[REPORT_CONCERN] = IncidentConcernReporter(services.admission, incidents)
        app[LIVE].record_incident = incidents.record_system_incident

    app.on_startup.append(wire_incidents)  # after build_app's cleanup_ctx built the runtime
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    sessions: list[Any] = []
    try:
        yield Gateway(f"http://127.0.0.1:{port}", clock, app, settings, sessions)
    finally:
        for http in sessions:
            await http.close()
        await runner.cleanup()
