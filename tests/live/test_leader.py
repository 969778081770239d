"""Leader leases: only one process runs each periodic job; expiry and release hand over."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest

from gateway.adapters.leader import InProcessLeaderLock, RedisLeaderLock, run_periodically
from gateway.adapters.live_memory import LiveStateUnavailable
from gateway.adapters.live_redis import RedisClient
from tests.plugins.servers import RedisServer


@pytest.fixture
def contenders(clients: tuple[RedisClient, RedisClient]) -> tuple[RedisLeaderLock, RedisLeaderLock]:
    return RedisLeaderLock(clients[0], "t"), RedisLeaderLock(clients[1], "t")


async def test_only_one_holds(contenders: tuple[RedisLeaderLock, RedisLeaderLock]) -> None:
    a, b = contenders
    assert a.token != b.token
    assert await a.acquire("reconcile", 10)
    assert not await b.acquire("reconcile", 10)
    assert await a.acquire("reconcile", 10)  # the holder may take it again (extends it)
    assert await a.renew("reconcile", 10)
    assert not await b.renew("reconcile", 10)
    await b.release("reconcile")  # not b's to release
    assert not await b.acquire("reconcile", 10)
    assert await b.acquire("retention", 10)  # another job, another lease
    await a.release("reconcile")
    assert await b.acquire("reconcile", 10)
    assert not await a.renew("reconcile", 10)


async def test_concurrent_acquire_grants_one(clients: tuple[RedisClient, RedisClient]) -> None:
    locks = [RedisLeaderLock(clients[i % 2], "t") for i in range(10)]
    results = await asyncio.gather(*(lock.acquire("job", 10) for lock in locks))
    assert results.count(True) == 1


async def test_expiry_hands_over(contenders: tuple[RedisLeaderLock, RedisLeaderLock]) -> None:
    a, b = contenders
    assert await a.acquire("reconcile", 0.2)
    assert not await b.acquire("reconcile", 0.2)
    await asyncio.sleep(0.3)
    assert await b.acquire("reconcile", 10)
    assert not await a.renew("reconcile", 10)  # a paused past its lease cannot extend b's
    await a.release("reconcile")
    assert not await a.acquire("reconcile", 10)


async def test_in_process_always_grants() -> None:
    lock = InProcessLeaderLock()
    assert await lock.acquire("job", 1)
    assert await lock.acquire("job", 1)
    assert await lock.renew("job", 1)
    await lock.release("job")
    with pytest.raises(ValueError):
        await lock.acquire("job", 0)


async def test_redis_lost_raises(
    redis_server: RedisServer, contenders: tuple[RedisLeaderLock, RedisLeaderLock]
) -> None:
    a, _ = contenders
    assert await a.acquire("job", 10)
    redis_server.stop(kill=True)
    try:
        with pytest.raises(LiveStateUnavailable):
            await a.acquire("job", 10)
        with pytest.raises(LiveStateUnavailable):
            await a.renew("job", 10)
        with pytest.raises(LiveStateUnavailable):
            await a.release("job")
    finally:
        redis_server.start()


class Runs:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> None:
        self.count += 1


async def test_run_periodically_runs_in_one_process_and_hands_over(
    contenders: tuple[RedisLeaderLock, RedisLeaderLock],
) -> None:
    a, b = contenders
    runs_a, runs_b = Runs(), Runs()
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    # leases far longer than a round, so a slow machine cannot make them lapse mid-test
    task_a = asyncio.create_task(run_periodically(a, "job", 0.02, runs_a, stop_a, ttl_seconds=5))
    await asyncio.sleep(0.05)
    task_b = asyncio.create_task(run_periodically(b, "job", 0.02, runs_b, stop_b, ttl_seconds=5))
    try:
        await asyncio.sleep(0.2)
        assert runs_a.count >= 3
        assert runs_b.count == 0
        stop_a.set()  # a stops and releases: b takes over at its next round
        await asyncio.wait_for(task_a, 1)
        before = runs_a.count
        await asyncio.sleep(0.2)
        assert runs_b.count >= 3
        assert runs_a.count == before
    finally:
        stop_a.set()
        stop_b.set()
        await asyncio.wait_for(asyncio.gather(task_a, task_b), 2)
    assert await a.acquire("job", 10)  # b released on its way out


async def test_run_periodically_survives_a_failing_job(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    stop = asyncio.Event()

    async def job() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            stop.set()
        raise RuntimeError("boom")

    await asyncio.wait_for(run_periodically(InProcessLeaderLock(), "job", 0.01, job, stop), 2)
    assert calls == 3
    assert "periodic job job failed" in caplog.text


@pytest.mark.parametrize(("when_unavailable", "runs"), [("skip", False), ("run", True)])
async def test_run_periodically_when_the_lock_is_unavailable(
    redis_server: RedisServer,
    contenders: tuple[RedisLeaderLock, RedisLeaderLock],
    when_unavailable: Literal["skip", "run"],
    runs: bool,
) -> None:
    a, _ = contenders
    job = Runs()
    stop = asyncio.Event()
    redis_server.stop(kill=True)
    try:
        task = asyncio.create_task(
            run_periodically(a, "job", 0.02, job, stop, when_unavailable=when_unavailable)
        )
        await asyncio.sleep(0.15)
        stop.set()
        await asyncio.wait_for(task, 2)
    finally:
        redis_server.start()
    assert (job.count > 0) is runs


async def test_run_periodically_stops_promptly() -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_periodically(InProcessLeaderLock(), "job", 60, Runs(), stop))
    await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 0.5)
