"""Fixtures for notification tests: a real SMTP server and a real webhook receiver on
loopback, and a gateway runtime (store, outbox, worker) on SQLite and PostgreSQL with a frozen
clock, so hours of an SMTP outage pass in no time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from gateway.app import Runtime, build_runtime
from gateway.clock import FrozenClock
from gateway.domain.outbox import Channels, EmailChannel, WebhookChannel
from gateway.services.ports import Organisation
from gateway.settings import Settings
from tests.notifications.receivers import SmtpServer, WebhookReceiver
from tests.plugins.gateway_server import MONDAY_10AM, ROOT
from tests.plugins.servers import free_port

DSL = "dsl@example.org"
DEPUTY = "deputy-safeguarding@example.org"  # the default policy's second contact
WEBHOOK_SECRET = "whsec_" + "c2FmZWd1YXJkaW5nLXRlc3Qtc2VjcmV0LTMyYnl0ZXM="


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Hook:
    receiver: WebhookReceiver
    url: str


@pytest.fixture
async def webhook() -> AsyncIterator[Hook]:
    from gateway.domain.outbox import webhook_secret_bytes

    receiver = WebhookReceiver(webhook_secret_bytes(WEBHOOK_SECRET))
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield Hook(receiver, f"http://127.0.0.1:{port}/hooks/safeguarding")
    finally:
        await runner.cleanup()


def settings_for(database_url: str, keys: Path) -> Settings:
    return Settings(
        database_url=database_url,
        policy_path=ROOT / "policies" / "default.toml",
        keys_dir=keys,
        public_url="https://gateway.example.org",
    )


@dataclass
class World:
    runtime: Runtime
    clock: FrozenClock
    org: Organisation


async def make_world(database_url: str, keys: Path, clock: FrozenClock) -> Runtime:
    return await build_runtime(settings_for(database_url, keys), clock)


@pytest.fixture
async def world(
    database_url: str, tmp_path: Path, schema_at_head: Callable[[str], None]
) -> AsyncIterator[World]:
    schema_at_head(database_url)
    clock = FrozenClock(MONDAY_10AM)
    runtime = await make_world(database_url, tmp_path / "keys", clock)
    try:
        org, _key = await runtime.services.organisations.create("Test Club")
        yield World(runtime, clock, org)
    finally:
        await runtime.close()


def email_channel(smtp: SmtpServer, **changes: object) -> EmailChannel:
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "port": smtp.port,
        "security": "none",
        "from_address": "gateway@example.org",
        "dsl_address": DSL,
    }
    fields.update(changes)
    return EmailChannel(**fields)  # type: ignore[arg-type]


async def configure(world: World, smtp: SmtpServer | None = None, hook: Hook | None = None) -> None:
    await world.runtime.notifications.set_channels(
        world.org,
        Channels(
            email=email_channel(smtp) if smtp else None,
            webhook=WebhookChannel(hook.url, WEBHOOK_SECRET) if hook else None,
        ),
        actor="test",
    )
