"""An instance killed with SIGKILL mid-session, on PostgreSQL and Redis (issue 10 point 7):
nothing durable is lost (the consents, the concern the child reported through it, the audit
chain), the session's authority moves to the surviving instance within the lease time, and
the child re-joining there waits for two adults again (R4); the two survivors sweep the dead
one's presences once between them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp
import pytest

from gateway.adapters.live_redis import close_client, redis_client
from gateway.app import LEASE_FLOOR_SECONDS
from tests.live._gateways import (
    Admin,
    Attendee,
    Watch,
    create_org,
    join_body,
    post,
    ready,
    serving,
    supervised_session,
)
from tests.multinode.conftest import RECONCILE, Cluster

pytestmark = [pytest.mark.slow, pytest.mark.media, pytest.mark.postgres, pytest.mark.redis]

LEASE = max(3 * RECONCILE, LEASE_FLOOR_SECONDS)  # what app.py gives a session's lease
SWEPT = "live_state.orphan_removed"
WITHIN = LEASE + 5  # the lease runs out, then the next join takes it; room for a busy machine


async def test_killed_instance_loses_nothing_durable_and_its_session_moves(
    cluster: Cluster, devices: list[aiohttp.ClientSession]
) -> None:
    admin_http, tutor_device, observer_device, child_device, _ = devices
    key = await asyncio.to_thread(create_org, cluster.env)
    redis = redis_client(cluster.env["GATEWAY_REDIS_URL"])
    attendees: list[Attendee] = []
    try:
        # A live process is not taken for dead on a loaded machine: a heartbeat of a few seconds
        # (the default is 10); the dead one's presences are swept once it has run out.
        env = {**cluster.env, "GATEWAY_LIVE_HEARTBEAT_SECONDS": "3"}
        with serving(env, 3) as (a, b, c):
            await ready(admin_http, a.base, b.base, c.base)
            admin = Admin(admin_http, b.base, key)
            session = await supervised_session(admin_http, a.base, key)  # consents through A
            tutor = Attendee("host", tutor_device, session.tokens["host"])
            observer = Attendee("observer", observer_device, session.tokens["observer"])
            child = Attendee("child", child_device, session.tokens["child"])
            attendees.extend((tutor, observer, child))
            authority = f"sgw:live:authority:{session.id}"

            await tutor.arrive(a.base, admin)
            await observer.arrive(a.base, admin)
            assert (await child.arrive(a.base, admin))["outcome"] == "admit"
            assert await redis.hget(authority, "url") == a.base.encode()
            # The child tells someone, through A; acknowledged means stored.
            await post(
                child_device, a.base + "/v1/live/concern", {"token": child.token, "note": "x"}
            )

            a.process.kill()  # SIGKILL mid-session
            a.process.wait(timeout=10)
            killed = time.monotonic()
            await child.hang_up()

            answer: dict[str, object] = {}
            async with asyncio.timeout(WITHIN + 5):
                while True:
                    async with child_device.post(
                        b.base + "/v1/join", json=join_body(child.token)
                    ) as response:
                        answer = dict(await response.json())
                        if response.status == 200:
                            break
                    await asyncio.sleep(0.1)
            moved_after = time.monotonic() - killed
            assert moved_after <= WITHIN
            assert answer["outcome"] == "hold" and answer["reasons"] == ["awaiting_supervision"]
            assert await redis.hget(authority, "url") == b.base.encode()
            child.joined, child.joined_at = answer, b.base
            await child.connect()
            stream = Watch(child_device, b.base, child.token)
            try:
                await stream.until(lambda e: e["type"] == "state" and e["outcome"] == "hold", 10)
                await tutor.hang_up()
                await tutor.arrive(b.base, admin)
                await asyncio.sleep(1.0)
                assert "admit" not in stream.states()  # one adult is not enough
                await observer.hang_up()
                await observer.arrive(b.base, admin)
                await stream.until(lambda e: e["type"] == "state" and e["outcome"] == "admit", 10)
            finally:
                await stream.close()

            # Durable: what A acknowledged is all there, read through B.
            incidents = (await admin.get("/v1/incidents"))["items"]
            assert len(incidents) == 1 and incidents[0]["session_id"] == session.id
            consents = await admin.audit("consent.given")
            assert len(consents) == 1
            assert len(await admin.audit("incident.opened")) == 1
            # The dead instance's presences are swept by one survivor, not both (B and C).
            swept = Counter(
                (e["data"]["participant"], e["data"]["process"]) for e in await admin.audit(SWEPT)
            )
            assert len({process for _, process in swept}) == 1, swept  # the killed one's
            assert sorted(p for p, _ in swept) == sorted(session.participants.values())
            assert set(swept.values()) == {1}, swept
    finally:
        for attendee in attendees:
            await attendee.hang_up()
        await close_client(redis)
    verified = await asyncio.to_thread(cluster.gateway, "audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout
