"""Two gateway processes sharing one Redis: a session has one owner process (joins elsewhere
are sent there); alerts raised by one reach host pages connected to the other."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import aiohttp
import pytest

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


@pytest.fixture
def gateways(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, str, str]]:
    env = environment(tmp_path, redis_url)
    key = create_org(env)
    with serving(env, 2) as (a, b):
        yield key, a.base, b.base


async def test_presence_and_alerts_are_shared_between_gateway_processes(
    gateways: tuple[str, str, str], devices: list[aiohttp.ClientSession]
) -> None:
    key, a, b = gateways
    admin, host_device, observer_device, child_device, stranger = devices
    await ready(admin, a)
    await ready(admin, b)
    session = await supervised_session(admin, a, key)
    sid, tokens = session.id, session.tokens

    # Host and observer connect their media to A, the session's owner (its first join).
    admin_view = Admin(admin, a, key)
    host = Attendee("host", host_device, tokens["host"])
    observer = Attendee("observer", observer_device, tokens["observer"])
    try:
        assert (await host.arrive(a, admin_view))["outcome"] == "admit"
        # A join reaching the other process is sent to the owner, before anything is recorded.
        async with observer_device.post(b + "/v1/join", json=join(tokens["observer"])) as sent:
            assert sent.status == 421
            answer = await sent.json()
        assert answer["error"]["code"] == "session_elsewhere" and answer["location"] == a
        assert len(await admin_view.audit("join.decision")) == 1  # only the host's join
        assert (await observer.arrive(a, admin_view))["outcome"] == "admit"
        child_join = await post(child_device, a + "/v1/join", join(tokens["child"]))
        assert child_join["outcome"] == "admit", child_join

        # The host's live stream is on process B; a replayed invite at A raises an alert
        # that reaches it (alerts are shared between processes).
        received: list[dict[str, Any]] = []

        async def listen() -> None:
            async with aclosing(events(host_device, b, tokens["host"])) as stream:
                async for event in stream:
                    received.append(event)
                    if event.get("type") == "alert" and event.get("kind") == "invite_other_device":
                        return

        listening = asyncio.create_task(listen())
        await asyncio.sleep(1.0)
        async with stranger.post(a + "/v1/join", json=join(tokens["child"])) as response:
            assert response.status == 403
        await asyncio.wait_for(listening, timeout=10)
        alert = received[-1]
        assert alert["kind"] == "invite_other_device" and alert["session_id"] == sid
        assert "Parent" not in json.dumps(alert)  # masked display name only
    finally:
        await host.hang_up()
        await observer.hang_up()
