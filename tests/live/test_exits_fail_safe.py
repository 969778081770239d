"""Exits fail safe (DESIGN.md "Exits, deadlines, health"): with the live state (Redis) down,
leaving, removing someone, withdrawing a consent and ending a session are still accepted and
stored in SQL; they take effect live once it is back."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.live._gateways import (
    Admin,
    create_org,
    environment,
    join_body,
    post,
    ready,
    serving,
    supervised_session,
)
from tests.plugins.servers import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.redis]


async def test_exits_work_with_the_live_state_down(
    tmp_path: Path,
    redis_server: RedisServer,
    redis_url: str,
    devices: list[aiohttp.ClientSession],
) -> None:
    admin_http, host_device, observer_device, child_device, _ = devices
    env = environment(tmp_path, redis_url)
    key = create_org(env)
    with serving(env) as (gateway,):
        base = gateway.base
        await ready(admin_http, base)
        session = await supervised_session(admin_http, base, key)
        tokens = session.tokens
        admin = Admin(admin_http, base, key)
        await post(host_device, base + "/v1/join", join_body(tokens["host"]))
        await post(observer_device, base + "/v1/join", join_body(tokens["observer"]))
        child = await post(child_device, base + "/v1/join", join_body(tokens["child"]))

        redis_server.stop(kill=True)  # the live state is gone
        try:
            async with observer_device.post(
                base + "/v1/leave", json={"token": tokens["observer"]}
            ) as left:
                assert left.status == 200
            async with host_device.post(
                base + "/v1/live/remove",
                json={"token": tokens["host"], "identity": child["participant"]["identity"]},
            ) as removed:
                assert removed.status == 200
            async with host_device.post(
                base + "/v1/live/end", json={"token": tokens["host"]}
            ) as ended:
                assert ended.status == 200
            ended_session = await admin.get(f"/v1/sessions/{session.id}")
            assert ended_session["ended_at"] is not None
            kinds = {e["kind"] for e in await admin.audit()}
            assert {"participant.left", "participant.removed", "session.ended"} <= kinds
        finally:
            redis_server.start()
        # Back up: the durable exits hold (the child's invite stays revoked).
        async with child_device.post(base + "/v1/join", json=join_body(tokens["child"])) as again:
            assert again.status == 403


async def test_a_first_join_during_a_live_state_outage_burns_nothing(
    tmp_path: Path,
    redis_server: RedisServer,
    redis_url: str,
    devices: list[aiohttp.ClientSession],
) -> None:
    """The device is bound only once the whole admission succeeded: a join refused because
    the live state is down can be retried from the same device, with no false "used on
    another device" alert."""
    admin_http, host_device, _, _, _ = devices
    env = environment(tmp_path, redis_url)
    key = create_org(env)
    with serving(env) as (gateway,):
        base = gateway.base
        await ready(admin_http, base)
        session = await supervised_session(admin_http, base, key)
        redis_server.stop(kill=True)
        try:
            async with host_device.post(
                base + "/v1/join", json=join_body(session.tokens["host"])
            ) as refused:
                assert refused.status == 503
        finally:
            redis_server.start()
        joined = await post(host_device, base + "/v1/join", join_body(session.tokens["host"]))
        assert joined["outcome"] == "admit"
        admin = Admin(admin_http, base, key)
        assert await admin.audit("invite.other_device") == []
