"""The flood limiter's contract (`InProcessAttemptLimiter`) in real time: short real windows and
the real clock. It counts floods per process only; the durable failure tallies (wrong passwords,
second devices) are in SQL and are tested over HTTP in tests/abuse."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from gateway.adapters.rate_limit import InProcessAttemptLimiter

Limiter = InProcessAttemptLimiter


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def limiter() -> Limiter:
    return InProcessAttemptLimiter()


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
