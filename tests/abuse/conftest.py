"""Gateways with the settings and policy an abuse test needs, on loopback, each stopped after."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection

from gateway.adapters.sql.schema import audit_log
from gateway.app import build_app
from gateway.clock import FrozenClock
from gateway.domain.audit import AuditEntry, decode_entry
from gateway.http.connection_limits import ConnectionCap, start_server
from gateway.services.ports import AuditQuery
from gateway.settings import Settings
from tests.plugins.gateway_server import MONDAY_10AM, ROOT, Gateway
from tests.plugins.servers import free_port

MakeGateway = Callable[..., Awaitable[Gateway]]


def policy_file(tmp_path: Path, **invites: int) -> Path:
    """The default policy with some `[invites]` figures changed."""
    text = (ROOT / "policies" / "default.toml").read_text()
    for name, value in invites.items():
        text, found = re.subn(rf"(?m)^{name} = \d+", f"{name} = {value}", text)
        assert found == 1, name
    path = tmp_path / f"policy-{len(list(tmp_path.glob('policy-*')))}.toml"
    path.write_text(text)
    return path


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[MakeGateway]:
    """`await make_gateway(database_url, policy=..., **settings)`: a running gateway; the
    servers and clients it made are stopped when the test ends."""
    stops: list[Callable[[], Awaitable[None]]] = []

    async def make(database_url: str, policy: Path | None = None, **overrides: Any) -> Gateway:
        clock = FrozenClock(MONDAY_10AM)
        port = free_port()
        settings = Settings(
            database_url=database_url,
            policy_path=policy or ROOT / "policies" / "default.toml",
            keys_dir=tmp_path / "keys",
            public_url=f"http://127.0.0.1:{port}",
            reconcile_seconds=0.3,
            media_disconnect_seconds=3.0,
            **overrides,
        )
        app = build_app(settings, clock)
        runner, cap = await start_server(app, "127.0.0.1", port, settings)
        sessions: list[aiohttp.ClientSession] = []
        gateway = Gateway(f"http://127.0.0.1:{port}", clock, app, settings, sessions)
        gateway.cap = cap  # type: ignore[attr-defined]

        async def stop() -> None:
            for http in sessions:
                await http.close()
            await runner.cleanup()

        stops.append(stop)
        return gateway

    try:
        yield make
    finally:
        for stop in reversed(stops):
            await stop()


def cap_of(gateway: Gateway) -> ConnectionCap:
    cap: ConnectionCap = gateway.cap  # type: ignore[attr-defined]
    return cap


async def audit(gateway: Gateway, org_id: str | None, kind: str) -> list[AuditEntry]:
    """The audit entries of one kind: an organisation's, or the anonymous ones (`None`)."""
    if org_id is not None:
        query = AuditQuery(org_id=org_id, kind=kind, limit=1000)
        return list(await gateway.services.store.audit_entries(query))
    store = gateway.services.store

    def read(conn: Connection) -> list[AuditEntry]:
        rows = conn.execute(
            select(audit_log.c.entry)
            .where(audit_log.c.kind == kind, audit_log.c.org_id.is_(None))
            .order_by(audit_log.c.seq)
        )
        return [decode_entry(row.entry) for row in rows]

    return await store._db.read(read)  # type: ignore[attr-defined]


async def alerts_of(gateway: Gateway, session_id: str, kind: str) -> list[dict[str, object]]:
    from gateway.http.live_api import LIVE

    recent = await gateway.app[LIVE]._alerts.recent_alerts(session_id)  # type: ignore[attr-defined]
    return [a for a in recent if a["kind"] == kind]
