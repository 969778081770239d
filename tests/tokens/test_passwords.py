"""Session passwords: argon2id, verified off the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from gateway.adapters.passwords import MAX_PASSWORD_CHARS, PasswordHasher
from gateway.domain.errors import ErrorCode, Unavailable


@pytest.fixture
def fast() -> Iterator[PasswordHasher]:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield hasher
    hasher.close()


async def test_hash_and_verify(fast: PasswordHasher) -> None:
    stored = await fast.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert await fast.verify(stored, "correct horse battery staple") is True
    assert await fast.verify(stored, "correct horse battery stapl") is False
    assert await fast.verify(stored, "Correct horse battery staple") is False
    assert await fast.verify(stored, "") is False


async def test_salted(fast: PasswordHasher) -> None:
    assert await fast.hash("same") != await fast.hash("same")


async def test_corrupt_hash_fails_closed(fast: PasswordHasher) -> None:
    for stored in ("", "plain", "$argon2id$v=19$m=8,t=1,p=1$bad$bad", "$2b$12$abcdefghijk"):
        assert await fast.verify(stored, "anything") is False


async def test_length_limits(fast: PasswordHasher) -> None:
    with pytest.raises(ValueError, match="empty"):
        await fast.hash("")
    with pytest.raises(ValueError, match="at most"):
        await fast.hash("x" * (MAX_PASSWORD_CHARS + 1))
    stored = await fast.hash("x" * MAX_PASSWORD_CHARS)
    assert await fast.verify(stored, "x" * MAX_PASSWORD_CHARS) is True
    assert await fast.verify(stored, "x" * (MAX_PASSWORD_CHARS + 1)) is False


async def test_needs_rehash(fast: PasswordHasher) -> None:
    stored = await fast.hash("pw")
    assert fast.needs_rehash(stored) is False
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    try:
        assert stronger.needs_rehash(stored) is True
    finally:
        stronger.close()
    assert fast.needs_rehash("garbage") is True


async def test_default_parameters_are_owasp_minimum() -> None:
    hasher = PasswordHasher()
    try:
        stored = await hasher.hash("pw")
        assert "$m=19456,t=2,p=1$" in stored
        assert repr(hasher) == "PasswordHasher(t=2, m=19456, p=1)"
    finally:
        hasher.close()


async def test_verification_does_not_block_the_event_loop() -> None:
    hasher = PasswordHasher()  # real cost: tens of milliseconds per verification
    try:
        stored = await hasher.hash("the password")
        ticks = 0
        longest_gap = 0.0

        async def ticker() -> None:
            nonlocal ticks, longest_gap
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                longest_gap = max(longest_gap, now - last)
                last = now
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        started = time.perf_counter()
        results = await asyncio.gather(
            hasher.verify(stored, "the password"),
            hasher.verify(stored, "wrong 1"),
            hasher.verify(stored, "wrong 2"),
            hasher.verify(stored, "the password"),
        )
        elapsed = time.perf_counter() - started
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert results == [True, False, False, True]
        # The loop kept running while the hashes were computed elsewhere.
        assert ticks >= 5
        assert longest_gap < max(0.5 * elapsed, 0.05), (longest_gap, elapsed)
    finally:
        hasher.close()


async def test_a_long_queue_is_refused_at_once_with_a_retry_after() -> None:
    """Hashing cannot starve other requests: a bounded pool, and past `max_pending` checks the
    next is refused at once (503 overloaded, with Retry-After) instead of queueing."""
    hasher = PasswordHasher(max_workers=1, max_pending=2)  # real cost
    try:
        stored = await hasher.hash("the password")
        started = time.perf_counter()
        results = await asyncio.gather(
            *(hasher.verify(stored, "the password") for _ in range(6)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, Unavailable)]
        assert results[:2] == [True, True]
        assert len(refused) == 4
        assert all(r.code is ErrorCode.OVERLOADED and (r.retry_after or 0) >= 1 for r in refused)
        assert hasher.pending == 0
        batch = time.perf_counter() - started
        # the refused ones cost nothing: the batch took about two verifications, not six
        one = time.perf_counter()
        assert await hasher.verify(stored, "the password") is True
        one = time.perf_counter() - one
        assert batch < 4 * one + 0.05
    finally:
        hasher.close()


async def test_equalise_takes_a_verification_s_time() -> None:
    slow = PasswordHasher()
    try:
        stored = await slow.hash("pw")
        timings: dict[str, list[float]] = {"verify": [], "equalise": []}
        for _ in range(5):
            started = time.perf_counter()
            await slow.verify(stored, "not it")
            timings["verify"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await slow.equalise("anything")
            timings["equalise"].append(time.perf_counter() - started)
        assert min(timings["equalise"]) > 0.5 * min(timings["verify"])
    finally:
        slow.close()
