"""The process that owns a live session is killed outright (kill -9): the session's authority
moves to another process once the lease runs out, and the children who come back through it are
held until two adults have connected again there (R4; DESIGN.md "One authority per live
session"). The dead owner's adults stop counting: their media died with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from gateway.adapters.live_redis import RedisClient, close_client, redis_client
from gateway.app import LEASE_FLOOR_SECONDS
from tests.live._gateways import (
    Admin,
    Attendee,
    Watch,
    create_org,
    environment,
    join_body,
    ready,
    serving,
    supervised_session,
)

pytestmark = [pytest.mark.slow, pytest.mark.media]

RECONCILE, HEARTBEAT, SWEEP, GRACE = 0.3, 1.0, 0.3, 60
LEASE = max(3 * RECONCILE, LEASE_FLOOR_SECONDS)  # what app.py gives a session's lease
WITHIN = LEASE + 5  # the lease runs out, then the next join takes it; room for a busy machine


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    client = redis_client(redis_url)
    try:
        yield client
    finally:
        await close_client(client)


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


async def test_killed_owner_hands_the_session_over_and_children_wait_for_two_adults(
    tmp_path: Path, redis_url: str, redis: RedisClient, devices: list[aiohttp.ClientSession]
) -> None:
    admin_http, tutor_device, observer_device, child_device, _ = devices
    env = environment(
        tmp_path,
        redis_url,
        grace_seconds=GRACE,
        GATEWAY_RECONCILE_SECONDS=str(RECONCILE),
        GATEWAY_LIVE_HEARTBEAT_SECONDS=str(HEARTBEAT),
        GATEWAY_LIVE_SWEEP_SECONDS=str(SWEEP),
    )
    key = create_org(env)
    attendees: list[Attendee] = []
    with serving(env, 2) as (a, b):
        await ready(admin_http, a.base)
        await ready(admin_http, b.base)
        admin = Admin(admin_http, b.base, key)
        session = await supervised_session(admin_http, b.base, key)
        tokens = session.tokens
        tutor = Attendee("host", tutor_device, tokens["host"])
        observer = Attendee("observer", observer_device, tokens["observer"])
        child = Attendee("child", child_device, tokens["child"])
        attendees.extend((tutor, observer, child))
        authority = f"sgw:live:authority:{session.id}"
        try:
            # Everyone on A, the owner (the first join landed there).
            await tutor.arrive(a.base, admin)
            await observer.arrive(a.base, admin)
            assert (await child.arrive(a.base, admin))["outcome"] == "admit"
            assert await redis.hget(authority, "url") == a.base.encode()

            a.process.kill()  # SIGKILL: no shutdown, no leaving, no lease released
            a.process.wait(timeout=10)
            killed = time.monotonic()
            await child.hang_up()

            # The child's page re-joins through B: sent to A (dead) until the lease runs out,
            # then B owns the session, and the child is held: A's adults died with A.
            answer: dict[str, object] = {}

            async def rejoined() -> bool:
                async with child_device.post(
                    b.base + "/v1/join", json=join_body(child.token)
                ) as response:
                    answer.update(await response.json())
                    return response.status == 200

            await _until(rejoined, WITHIN)
            moved_after = time.monotonic() - killed
            assert answer["outcome"] == "hold", answer
            assert answer["reasons"] == ["awaiting_supervision"]
            assert moved_after <= WITHIN
            assert await redis.hget(authority, "url") == b.base.encode()
            child.joined, child.joined_at = dict(answer), b.base
            await child.connect()

            stream = Watch(child_device, b.base, child.token)
            try:
                await stream.until(lambda e: e["type"] == "state" and e["outcome"] == "hold", 10)
                await tutor.hang_up()
                await tutor.arrive(b.base, admin)  # one adult is not enough
                await asyncio.sleep(1.0)
                assert "admit" not in stream.states()
                await observer.hang_up()
                await observer.arrive(b.base, admin)  # two adults again, on B
                await stream.until(lambda e: e["type"] == "state" and e["outcome"] == "admit", 10)
            finally:
                await stream.close()
        finally:
            for attendee in attendees:
                await attendee.hang_up()
