"""Password guessing past the limit: N failures, then a Retry-After until the window closes."""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest

from gateway.adapters.rate_limit import (
    AttemptLimiter,
    InProcessAttemptLimiter,
    retry_after_header,
)

from ._craft import NOW

LIMIT = 5
WINDOW = 15 * 60


@pytest.fixture
def limiter() -> InProcessAttemptLimiter:
    return InProcessAttemptLimiter()


def test_implements_the_services_port(limiter: InProcessAttemptLimiter) -> None:
    mine: AttemptLimiter = limiter
    ports = pytest.importorskip("gateway.services.ports")
    for name in ("check", "fail", "reset"):
        assert inspect.signature(getattr(ports.AttemptLimiter, name)).parameters.keys() == (
            inspect.signature(getattr(type(mine), name)).parameters.keys()
        )


async def test_allows_limit_failures_then_refuses(limiter: InProcessAttemptLimiter) -> None:
    key = "invite:abc"
    for attempt in range(LIMIT):
        at = NOW + timedelta(seconds=attempt)
        assert await limiter.check(key, LIMIT, WINDOW, at) is None, attempt
        await limiter.fail(key, WINDOW, at)

    retry = await limiter.check(key, LIMIT, WINDOW, NOW + timedelta(seconds=10))
    assert retry == pytest.approx(WINDOW - 10)
    assert retry is not None and retry > 0
    assert retry_after_header(retry) == str(WINDOW - 10)


async def test_window_expiry_with_moved_clock(limiter: InProcessAttemptLimiter) -> None:
    key = "invite:abc"
    for _ in range(LIMIT):
        await limiter.fail(key, WINDOW, NOW)
    assert await limiter.check(key, LIMIT, WINDOW, NOW + timedelta(seconds=WINDOW - 1)) == 1
    assert await limiter.check(key, LIMIT, WINDOW, NOW + timedelta(seconds=WINDOW)) is None

    # a new window starts with the next failure
    later = NOW + timedelta(seconds=WINDOW + 5)
    await limiter.fail(key, WINDOW, later)
    assert await limiter.check(key, LIMIT, WINDOW, later) is None


async def test_failures_inside_the_window_do_not_extend_it(
    limiter: InProcessAttemptLimiter,
) -> None:
    key = "source:203.0.113.9"
    for _ in range(LIMIT):
        await limiter.fail(key, WINDOW, NOW)
    await limiter.fail(key, WINDOW, NOW + timedelta(seconds=600))
    retry = await limiter.check(key, LIMIT, WINDOW, NOW + timedelta(seconds=600))
    assert retry == pytest.approx(WINDOW - 600)


async def test_reset_on_success(limiter: InProcessAttemptLimiter) -> None:
    key = "invite:abc"
    for _ in range(LIMIT):
        await limiter.fail(key, WINDOW, NOW)
    assert await limiter.check(key, LIMIT, WINDOW, NOW) is not None
    await limiter.reset(key)
    assert await limiter.check(key, LIMIT, WINDOW, NOW) is None
    await limiter.reset("never-seen")  # harmless


async def test_keys_are_independent(limiter: InProcessAttemptLimiter) -> None:
    for _ in range(LIMIT):
        await limiter.fail("invite:a", WINDOW, NOW)
    assert await limiter.check("invite:a", LIMIT, WINDOW, NOW) is not None
    assert await limiter.check("invite:b", LIMIT, WINDOW, NOW) is None
    assert await limiter.check("source:203.0.113.9", 20, WINDOW, NOW) is None


async def test_per_invite_and_per_source_limits(limiter: InProcessAttemptLimiter) -> None:
    """One address guessing across many invites hits the source limit."""
    source = "source:198.51.100.7"
    for n in range(20):
        invite = f"invite:{n}"
        assert await limiter.check(invite, LIMIT, WINDOW, NOW) is None
        assert await limiter.check(source, 20, WINDOW, NOW) is None
        await limiter.fail(invite, WINDOW, NOW)
        await limiter.fail(source, WINDOW, NOW)
    assert await limiter.check(source, 20, WINDOW, NOW) is not None
    assert await limiter.check("invite:0", LIMIT, WINDOW, NOW) is None


async def test_limit_counts_at_check_time(limiter: InProcessAttemptLimiter) -> None:
    for _ in range(3):
        await limiter.fail("k", WINDOW, NOW)
    assert await limiter.check("k", 3, WINDOW, NOW) is not None
    assert await limiter.check("k", 4, WINDOW, NOW) is None


async def test_memory_is_bounded() -> None:
    limiter = InProcessAttemptLimiter(max_keys=100, sweep_every=10)
    for n in range(1000):
        await limiter.fail(f"k{n}", 60, NOW + timedelta(seconds=n))
        assert len(limiter) <= 100
    # the newest keys are kept
    for _ in range(LIMIT):
        await limiter.fail("k999", 60, NOW + timedelta(seconds=999))
    assert await limiter.check("k999", LIMIT, 60, NOW + timedelta(seconds=999)) is not None


async def test_expired_keys_are_swept() -> None:
    limiter = InProcessAttemptLimiter(sweep_every=10)
    for n in range(9):
        await limiter.fail(f"old{n}", 60, NOW)
    assert len(limiter) == 9
    await limiter.fail("new", 60, NOW + timedelta(hours=1))
    assert len(limiter) == 1


async def test_bad_arguments(limiter: InProcessAttemptLimiter) -> None:
    with pytest.raises(ValueError):
        await limiter.check("k", 0, WINDOW, NOW)
    with pytest.raises(ValueError):
        await limiter.fail("k", 0, NOW)
    with pytest.raises(ValueError, match="naive"):
        await limiter.fail("k", WINDOW, NOW.replace(tzinfo=None))


def test_retry_after_header_rounds_up() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.0) == "1"
    assert retry_after_header(1.2) == "2"
    assert retry_after_header(899.5) == "900"
