"""Alerts over both implementations, then Redis fan-out between gateway instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from gateway.adapters.alerts_memory import InProcessAlerts
from gateway.adapters.alerts_redis import RedisAlerts
from gateway.adapters.live_memory import LiveStateUnavailable
from gateway.adapters.live_redis import RedisClient, close_client, redis_client
from gateway.clock import FrozenClock
from tests.plugins.servers import RedisServer

AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
AlertsImpl = InProcessAlerts | RedisAlerts


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(AT)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[RedisClient]:
    c = redis_client(redis_url, timeout_seconds=1.0)
    try:
        yield c
    finally:
        await close_client(c)


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for in-process, else the Redis URL."""
    return None if request.param == "memory" else str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def alerts(backend: str | None, clock: FrozenClock) -> AsyncIterator[AlertsImpl]:
    impl: AlertsImpl
    c = None if backend is None else redis_client(backend, timeout_seconds=1.0)
    if c is None:
        impl = InProcessAlerts(clock, backlog=5)
    else:
        impl = RedisAlerts(c, clock, "t:alerts", backlog=5)
    await impl.start()
    try:
        yield impl
    finally:
        await impl.stop()
        if c is not None:
            await close_client(c)


async def next_alert(queue: asyncio.Queue[dict[str, object]]) -> dict[str, object]:
    return await asyncio.wait_for(queue.get(), 2)


async def drain(alerts: AlertsImpl) -> None:
    """Wait until every alert published so far has been delivered (delivery keeps order)."""
    marker = alerts.subscribe("marker")
    await alerts.publish("org", "marker", {"kind": "marker"})
    await next_alert(marker)
    alerts.unsubscribe("marker", marker)


async def test_subscriber_gets_its_sessions_alerts(alerts: AlertsImpl) -> None:
    queue = alerts.subscribe("s1")
    other = alerts.subscribe("s2")
    await alerts.publish("org", "s1", {"kind": "adult_left", "participant": "P-1"})
    assert await next_alert(queue) == {
        "session_id": "s1",
        "at": AT.isoformat(),
        "kind": "adult_left",
        "participant": "P-1",
    }
    await alerts.publish("org", "s2", {"kind": "concern"})
    assert (await next_alert(other))["kind"] == "concern"
    await drain(alerts)
    assert queue.empty()  # exactly once, and not s2's


async def test_unsubscribed_queue_gets_nothing(alerts: AlertsImpl) -> None:
    gone = alerts.subscribe("s1")
    kept = alerts.subscribe("s1")
    alerts.unsubscribe("s1", gone)
    alerts.unsubscribe("s1", gone)  # twice is fine
    await alerts.publish("org", "s1", {"kind": "x"})
    assert (await next_alert(kept))["kind"] == "x"
    await drain(alerts)
    assert gone.empty()


async def test_recent_alerts_oldest_first_and_bounded(alerts: AlertsImpl) -> None:
    assert await alerts.recent_alerts("s1") == []
    for i in range(7):
        await alerts.publish("org", "s1", {"n": i})
    assert [a["n"] for a in await alerts.recent_alerts("s1")] == [2, 3, 4, 5, 6]
    assert await alerts.recent_alerts("s2") == []


async def test_slow_subscriber_queue_is_bounded(alerts: AlertsImpl) -> None:
    queue = alerts.subscribe("s1")
    for i in range(8):
        await alerts.publish("org", "s1", {"n": i})
    await drain(alerts)
    await next_alert(queue)
    assert queue.qsize() == 4  # 5 kept, 1 taken


# --- Redis: across gateway instances -------------------------------------------------------


async def test_alert_published_on_one_instance_reaches_another(
    redis_url: str, clock: FrozenClock
) -> None:
    a_client, b_client = redis_client(redis_url), redis_client(redis_url)
    a = RedisAlerts(a_client, clock, "t:alerts")
    b = RedisAlerts(b_client, clock, "t:alerts")
    other_deployment = RedisAlerts(b_client, clock, "u:alerts")
    await a.start()
    await b.start()
    await other_deployment.start()
    try:
        assert a.listening and b.listening
        on_a, on_b = a.subscribe("s1"), b.subscribe("s1")
        on_other = other_deployment.subscribe("s1")
        await b.publish("org", "s1", {"kind": "adult_left"})
        assert (await next_alert(on_a))["kind"] == "adult_left"
        assert (await next_alert(on_b))["kind"] == "adult_left"
        assert [x["kind"] for x in await a.recent_alerts("s1")] == ["adult_left"]
        await drain(a)
        await drain(other_deployment)
        assert on_a.empty() and on_b.empty() and on_other.empty()
    finally:
        await a.stop()
        await b.stop()
        await other_deployment.stop()
        await close_client(a_client)
        await close_client(b_client)


async def test_redis_lost_publish_delivers_locally_and_raises_then_listener_recovers(
    redis_server: RedisServer, client: RedisClient, clock: FrozenClock
) -> None:
    alerts = RedisAlerts(client, clock, "t:alerts", reconnect_seconds=0.1)
    await alerts.start()
    try:
        queue = alerts.subscribe("s1")
        redis_server.stop(kill=True)
        try:
            started = time.monotonic()
            with pytest.raises(LiveStateUnavailable):
                await alerts.publish("org", "s1", {"kind": "concern"})
            assert time.monotonic() - started < 1.5
            assert (await next_alert(queue))["kind"] == "concern"
            with pytest.raises(LiveStateUnavailable):
                await alerts.recent_alerts("s1")
            deadline = time.monotonic() + 3
            while alerts.listening and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert not alerts.listening
        finally:
            redis_server.start()
        deadline = time.monotonic() + 5
        while not alerts.listening and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert alerts.listening
        await alerts.publish("org", "s1", {"kind": "after"})
        assert (await next_alert(queue))["kind"] == "after"
    finally:
        await alerts.stop()


async def test_start_and_stop_are_idempotent(client: RedisClient, clock: FrozenClock) -> None:
    alerts = RedisAlerts(client, clock, "t:alerts")
    await alerts.start()
    await alerts.start()
    await alerts.stop()
    assert not alerts.listening
    await alerts.stop()
