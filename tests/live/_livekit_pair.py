"""Two gateway processes on PostgreSQL and Redis, every organisation on a real LiveKit
server, a supervised session with a tutor, an observer and a child (each on a device of their
own), a LiveKit client driver and LiveKit's RoomService as an operator sees it: the set-up the
takeover tests share (tests/live and tests/multinode)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from livekit import api

from tests.live._gateways import (
    Admin,
    Attendee,
    Served,
    SupervisedSession,
    environment,
    new_org,
    ready,
    serving,
    supervised_session,
)
from tests.platforms._drivers import LiveKitDriver
from tests.plugins.livekit_server import LiveKitServer


@dataclass
class Pair:
    a: Served
    b: Served
    admin: Admin
    session: SupervisedSession
    people: dict[str, Attendee]
    driver: LiveKitDriver
    rooms: Any  # LiveKit's RoomService, as an operator sees it


@contextlib.asynccontextmanager
async def livekit_pair(
    tmp_path: Path,
    redis_url: str,
    postgres_url: str,
    livekit_server: LiveKitServer,
    **settings: Any,
) -> AsyncIterator[Pair]:
    """`settings`: the test's own (`grace_seconds`, GATEWAY_... variables), besides LiveKit's.
    `postgres_url` is at the newest schema (`schema_at_head`)."""
    secret = tmp_path / "livekit.secret"
    secret.write_text(livekit_server.api_secret + "\n")
    secret.chmod(0o600)
    env = environment(
        tmp_path,
        redis_url,
        database_url=postgres_url,
        GATEWAY_LIVEKIT_URL=livekit_server.url,
        GATEWAY_LIVEKIT_API_KEY=livekit_server.api_key,
        GATEWAY_LIVEKIT_API_SECRET_FILE=str(secret),
        GATEWAY_LIVEKIT_ORGANISATIONS="*",
        **settings,
    )
    key = await new_org(env)  # in this process: no CLI process to start
    devices = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(4)]
    driver = LiveKitDriver(livekit_server)
    operator = api.LiveKitAPI(
        livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret
    )
    try:
        with serving(env, 2) as (a, b):
            admin_http = devices[0]
            await ready(admin_http, a.base, b.base)
            session = await supervised_session(admin_http, b.base, key)
            people = {
                role: Attendee(role, device, session.tokens[role])
                for device, role in zip(devices[1:], ("host", "observer", "child"), strict=True)
            }
            yield Pair(a, b, Admin(admin_http, b.base, key), session, people, driver, operator.room)
    finally:
        await driver.close()
        await operator.aclose()
        for device in devices:
            await device.close()


async def until(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.1)
