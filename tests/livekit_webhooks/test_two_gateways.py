"""Two gateway processes on one PostgreSQL and one Redis (as docker-compose.yml runs them) agree
on LiveKit's webhooks: LiveKit retries reach either, and every event is taken once."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.app import build_app
from gateway.clock import FrozenClock
from gateway.http.connection_limits import start_server
from gateway.settings import Settings
from tests.http.world import build_world
from tests.livekit_double import LiveKitDouble, event_body, sign_webhook
from tests.livekit_webhooks.conftest import KEY, SECRET
from tests.livekit_webhooks.test_webhooks_http import joined, post, webhook_entries
from tests.plugins.gateway_server import MONDAY_10AM, ROOT, Gateway
from tests.plugins.servers import free_port

pytestmark = pytest.mark.postgres


@pytest.fixture
async def twins(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, Gateway]]:
    keys = tmp_path / "livekit-keys.json"
    keys.write_text(json.dumps({KEY: {"secret": SECRET, "organisations": "*"}}))
    os.chmod(keys, 0o600)
    clock = FrozenClock(MONDAY_10AM)
    started: list[tuple[Gateway, web.AppRunner]] = []
    sessions: list[aiohttp.ClientSession] = []
    try:
        for _ in range(2):
            port = free_port()
            settings = Settings(
                database_url=postgres_url,
                redis_url=redis_url,
                policy_path=ROOT / "policies" / "default.toml",
                keys_dir=tmp_path / "keys",  # shared, as the compose file shares one volume
                public_url=f"http://127.0.0.1:{port}",
                reconcile_seconds=0.3,
                livekit_keys_file=keys,
            )
            app = build_app(settings, clock)
            runner, _ = await start_server(app, "127.0.0.1", port, settings)
            started.append(
                (Gateway(f"http://127.0.0.1:{port}", clock, app, settings, sessions), runner)
            )
        yield started[0][0], started[1][0]
    finally:
        for http in sessions:
            await http.close()
        for _, runner in started:
            await runner.cleanup()


async def test_each_event_is_taken_once_whichever_gateway_it_reaches(
    twins: tuple[Gateway, Gateway],
) -> None:
    a, b = twins
    world = await build_world(a)
    double = LiveKitDouble(api_key=KEY, secret=SECRET)
    bodies = [joined(double, world.session["id"], f"p_{n}") for n in range(12)]
    # Every event sent to both at once (a retry racing the original).
    answers = await asyncio.gather(
        *(post(g, body, sign_webhook(body, KEY, SECRET)) for body in bodies for g in (a, b))
    )
    outcomes = [answer["outcome"] for status, answer in answers if status == 200]
    assert len(outcomes) == 24
    for n in range(12):
        pair = sorted(outcomes[2 * n : 2 * n + 2])
        assert pair == ["duplicate", "reconcile"], (n, pair)
    entries = await webhook_entries(world)
    assert sorted(e["data"]["identity"] for e in entries) == sorted(f"p_{n}" for n in range(12))
    # Order too: a late join sent to the other process does not override a leave.
    leave = double.event("participant_left")
    leave.room.name = world.session["id"]
    leave.participant.identity = "p_0"
    leave.created_at = double.event("x").created_at + 10
    body = event_body(leave)
    assert await post(a, body, sign_webhook(body, KEY, SECRET)) == (200, {"outcome": "reconcile"})
    late = joined(double, world.session["id"], "p_0", at=leave.created_at - 1)
    assert await post(b, late, sign_webhook(late, KEY, SECRET)) == (200, {"outcome": "stale"})
