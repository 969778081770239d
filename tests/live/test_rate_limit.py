"""The attempt-limiter contract over the in-process limiter and Redis. Redis windows are Redis
TTLs (Redis time), so these tests use short real windows and the real clock for both; tests that
move a frozen clock belong with `InProcessAttemptLimiter` (tests/tokens)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from gateway.adapters.live_memory import LiveStateUnavailable
from gateway.adapters.live_redis import RedisClient, close_client, redis_client
from gateway.adapters.rate_limit import InProcessAttemptLimiter
from gateway.adapters.rate_limit_redis import RedisAttemptLimiter
from tests.plugins.servers import RedisServer

Limiter = InProcessAttemptLimiter | RedisAttemptLimiter


def now() -> datetime:
    return datetime.now(UTC)


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
def limiter(request: pytest.FixtureRequest) -> Iterator[Limiter]:
    if request.param == "memory":
        yield InProcessAttemptLimiter()
    else:
        yield RedisAttemptLimiter(request.getfixturevalue("client"), prefix="t")


async def test_allowed_below_the_limit_then_limited(limiter: Limiter) -> None:
    assert await limiter.check("k", 3, 60, now()) is None
    for _ in range(2):
        await limiter.fail("k", 60, now())
        assert await limiter.check("k", 3, 60, now()) is None
    await limiter.fail("k", 60, now())
    wait = await limiter.check("k", 3, 60, now())
    assert wait is not None and 59 < wait <= 60
    await limiter.fail("k", 60, now())  # more failures: still limited, window not extended
    wait = await limiter.check("k", 3, 60, now())
    assert wait is not None and 59 < wait <= 60
    assert await limiter.check("other", 3, 60, now()) is None


async def test_reset_forgets(limiter: Limiter) -> None:
    for _ in range(3):
        await limiter.fail("k", 60, now())
    assert await limiter.check("k", 3, 60, now()) is not None
    await limiter.reset("k")
    assert await limiter.check("k", 3, 60, now()) is None
    await limiter.reset("never-failed")


async def test_window_is_opened_by_the_first_failure_and_not_extended(limiter: Limiter) -> None:
    await limiter.fail("k", 1, now())
    await asyncio.sleep(0.5)
    await limiter.fail("k", 1, now())
    wait = await limiter.check("k", 2, 1, now())
    assert wait is not None and wait <= 0.55
    await asyncio.sleep(wait + 0.05)
    assert await limiter.check("k", 2, 1, now()) is None
    await limiter.fail("k", 1, now())  # a new window, count 1
    assert await limiter.check("k", 2, 1, now()) is None
    assert await limiter.check("k", 1, 1, now()) is not None


async def test_bad_arguments(limiter: Limiter) -> None:
    with pytest.raises(ValueError):
        await limiter.check("k", 0, 60, now())
    with pytest.raises(ValueError):
        await limiter.check("k", 1, 0, now())
    with pytest.raises(ValueError):
        await limiter.fail("k", 0, now())
    with pytest.raises(ValueError):
        await limiter.fail("k", 60, datetime(2026, 1, 1))  # naive
    with pytest.raises(ValueError):
        await limiter.check("k", 1, 60, datetime(2026, 1, 1))


async def test_redis_instances_share_counts(redis_url: str) -> None:
    a_client, b_client = redis_client(redis_url), redis_client(redis_url)
    try:
        a, b = RedisAttemptLimiter(a_client, "t"), RedisAttemptLimiter(b_client, "t")
        await a.fail("k", 60, now())
        await b.fail("k", 60, now())
        assert await a.check("k", 2, 60, now()) is not None
        await b.reset("k")
        assert await a.check("k", 2, 60, now()) is None
    finally:
        await close_client(a_client)
        await close_client(b_client)


async def test_redis_lost_raises_not_allows(redis_server: RedisServer, client: RedisClient) -> None:
    limiter = RedisAttemptLimiter(client, "t")
    await limiter.fail("k", 60, now())
    redis_server.stop(kill=True)
    try:
        for call in (
            limiter.check("k", 3, 60, now()),
            limiter.fail("k", 60, now()),
            limiter.reset("k"),
        ):
            started = time.monotonic()
            with pytest.raises(LiveStateUnavailable):
                await call
            assert time.monotonic() - started < 1.5
    finally:
        redis_server.start()
    assert await limiter.check("k", 1, 60, now()) is None  # counters are rebuildable: gone
