"""A real gateway on a loopback port, with a frozen clock, for HTTP tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.app import build_app
from gateway.clock import FrozenClock
from gateway.http.connection_limits import start_server
from gateway.http.keys import SERVICES
from gateway.services.bundle import Services
from gateway.settings import Settings
from tests.plugins.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
# A Monday, 10:00 in London (UTC in winter): inside the default policy's hours.
MONDAY_10AM = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
STOP_SECONDS = 0.5  # what requests still open when a test ends get to finish


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and "error" in self.body:
            return str(self.body["error"]["code"])
        return None


@dataclass
class Client:
    """An HTTP client with its own cookie jar (one browser / device)."""

    base: str
    http: aiohttp.ClientSession
    key: str | None = None

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        token = key if key is not None else self.key
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        async with self.http.request(method, self.base + path, data=data, headers=sent) as resp:
            text = await resp.text()
            try:
                parsed = json.loads(text) if text else None
            except json.JSONDecodeError:
                parsed = text
            return Answer(resp.status, parsed, resp.headers)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return await self.call("POST", path, body if body is not None else {}, **kw)

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.call("GET", path, **kw)


@dataclass
class Gateway:
    base: str
    clock: FrozenClock
    app: web.Application
    settings: Settings
    _sessions: list[aiohttp.ClientSession]

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    async def client(self, key: str | None = None) -> Client:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self._sessions.append(http)
        return Client(self.base, http, key)

    async def organisation(self, name: str = "Test Club") -> tuple[str, str]:
        org, key = await self.services.organisations.create(name)
        return org.id, key


@pytest.fixture
def gateway_settings() -> dict[str, Any]:
    """Settings to change for one test module's gateway (override this fixture there)."""
    return {}


@pytest.fixture
async def gateway(
    database_url: str,
    tmp_path: Path,
    gateway_settings: dict[str, Any],
    schema_at_head: Callable[[str], None],
) -> AsyncIterator[Gateway]:
    schema_at_head(database_url)
    clock = FrozenClock(MONDAY_10AM)
    port = free_port()
    settings = Settings(
        database_url=database_url,
        policy_path=ROOT / "policies" / "default.toml",
        keys_dir=tmp_path / "keys",
        public_url=f"http://127.0.0.1:{port}",
        max_body_bytes=65536,
        reconcile_seconds=0.3,
        media_disconnect_seconds=3.0,
    )
    settings = replace(settings, **gateway_settings)
    app = build_app(settings, clock)
    # A test ends with the live event streams its pages or clients opened: their handlers
    # (waiting for the next event) need not be given the production 5 s at the stop.
    runner, _ = await start_server(app, "127.0.0.1", port, settings, stop_seconds=STOP_SECONDS)
    sessions: list[aiohttp.ClientSession] = []
    try:
        yield Gateway(f"http://127.0.0.1:{port}", clock, app, settings, sessions)
    finally:
        for http in sessions:
            await http.close()
        await runner.cleanup()
