"""A gateway process killed outright (kill -9) while an adult's presence is in the shared live
state: the adult must stop counting, so a child on another process is held (R4).

Process B is started first, so it holds the sweep's lease; the observer joins through B (and
connects media there), the tutor and the child through A. B is killed: its heartbeat runs out,
A takes the lease over, sweeps B's presences away, and A's reconciliation holds the child once
the grace period ends (a dead process is a dropped connection, not a deliberate departure).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.adapters.live_redis import RedisClient, close_client, redis_client
from tests.live._gateways import (
    Admin,
    Attendee,
    create_org,
    environment,
    events,
    post,
    ready,
    serving,
    supervised_session,
)
from tests.live._gateways import join_body as join

pytestmark = [pytest.mark.slow, pytest.mark.media]

RECONCILE, HEARTBEAT, SWEEP, GRACE = 0.3, 1.0, 0.3, 1
LEASE = 3 * SWEEP
# B's heartbeat runs out, then A's lease round, a sweep, the grace period and a reconciliation;
# the rest is room for a busy machine.
WITHIN = HEARTBEAT + LEASE + SWEEP + GRACE + RECONCILE + 10


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


async def test_killed_gateways_adult_stops_counting_and_the_child_is_held(
    tmp_path: Path, redis_url: str, redis: RedisClient, devices: list[aiohttp.ClientSession]
) -> None:
    admin, tutor_device, observer_device, child_device, _ = devices
    env = environment(
        tmp_path,
        redis_url,
        grace_seconds=GRACE,
        GATEWAY_RECONCILE_SECONDS=str(RECONCILE),
        GATEWAY_LIVE_HEARTBEAT_SECONDS=str(HEARTBEAT),
        GATEWAY_LIVE_SWEEP_SECONDS=str(SWEEP),
    )
    key = create_org(env)
    lease = "sgw:leader:live.sweep"
    attendees: list[Attendee] = []
    try:
        await _watch_killed(
            env, key, lease, redis, admin, tutor_device, observer_device, child_device, attendees
        )
    finally:
        for attendee in attendees:
            await attendee.hang_up()


async def _watch_killed(
    env: dict[str, str],
    key: str,
    lease: str,
    redis: RedisClient,
    admin: aiohttp.ClientSession,
    tutor_device: aiohttp.ClientSession,
    observer_device: aiohttp.ClientSession,
    child_device: aiohttp.ClientSession,
    attendees: list[Attendee],
) -> None:
    with serving(env) as (b,):
        await ready(admin, b.base)

        async def leased() -> bool:
            return await redis.get(lease) is not None

        await _until(leased, 10)
        b_token = await redis.get(lease)
        assert b_token is not None
        with serving(env) as (a,):
            await ready(admin, a.base)
            session = await supervised_session(admin, a.base, key)
            tokens = session.tokens
            # Adults count once their media is connected: the observer's is on B.
            watcher = Admin(admin, a.base, key)
            tutor = Attendee("host", tutor_device, tokens["host"])
            observer = Attendee("observer", observer_device, tokens["observer"])
            attendees.extend((tutor, observer))
            assert (await tutor.arrive(a.base, watcher))["outcome"] == "admit"
            assert (await observer.arrive(b.base, watcher))["outcome"] == "admit"
            joined = await post(child_device, a.base + "/v1/join", join(tokens["child"]))
            assert joined["outcome"] == "admit", joined  # two vetted adults, on two processes

            states: list[dict[str, Any]] = []

            async def child_state() -> None:
                async with aclosing(events(child_device, a.base, tokens["child"])) as stream:
                    async for event in stream:
                        if event["type"] == "state":
                            states.append(event)
                            if event["outcome"] == "hold":
                                return

            async def streaming() -> bool:
                return bool(states)

            watching = asyncio.create_task(child_state())
            try:
                await _until(streaming, 10)
                assert states[0]["outcome"] == "admit"  # not held while both adults count
                assert await redis.get(lease) == b_token

                b.process.kill()  # SIGKILL: no shutdown, no leaving, no lease released
                b.process.wait(timeout=10)
                killed = time.monotonic()
                await asyncio.wait_for(asyncio.shield(watching), WITHIN)
                held_after = time.monotonic() - killed
            finally:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
            assert states[-1]["outcome"] == "hold"
            assert states[-1]["reasons"] == ["awaiting_supervision"]
            assert states[-1]["grants"] == {"can_publish": False, "can_subscribe": False}
            assert held_after >= GRACE  # the grace period still ran its course
            taken_over = await redis.get(lease)
            assert taken_over is not None and taken_over != b_token

            # audited (ids only); the child's process recorded the hold and the breach
            entries: list[dict[str, Any]] = []

            async def audited() -> bool:
                async with admin.get(
                    a.base + "/v1/audit?limit=500", headers={"Authorization": f"Bearer {key}"}
                ) as response:
                    entries[:] = (await response.json())["items"]
                kinds = {e["kind"] for e in entries}
                return {"supervision.hold", "supervision.breach"} <= kinds

            await _until(audited, 10)
            removed = [e for e in entries if e["kind"] == "live_state.orphan_removed"]
            assert [e["data"]["participant"] for e in removed] == [session.participants["observer"]]
            assert removed[0]["session_id"] == session.id
            assert removed[0]["org_id"] is not None
            assert set(removed[0]["data"]) == {"participant", "process"}
            assert removed[0]["data"]["process"] == b_token.decode()  # B's id is its token
