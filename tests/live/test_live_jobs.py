"""The live jobs as `gateway/app.py` starts them: reconciliation and heartbeat in every process,
the sweep in one process at a time (leader lease), handed over when its holder stops; all
stopped by `LiveJobs.close`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gateway import app as app_module
from gateway.adapters.leader import InProcessLeaderLock, RedisLeaderLock
from gateway.adapters.live_redis import RedisClient
from gateway.app import start_live_jobs
from gateway.settings import Settings

# leases of 3 sweep intervals (0.3 s): long enough not to lapse on a busy machine
FAST = Settings(reconcile_seconds=0.05, live_heartbeat_seconds=0.15, live_sweep_seconds=0.1)


class Loops:
    """Counts the calls; `sweeping` is shared, to catch two sweeps running at once."""

    def __init__(self, sweeping: list[int]) -> None:
        self.reconciles = 0
        self.heartbeats: list[float] = []
        self.sweeps = 0
        self._sweeping = sweeping

    async def reconcile(self) -> None:
        self.reconciles += 1

    async def heartbeat(self, ttl_seconds: float) -> None:
        self.heartbeats.append(ttl_seconds)

    async def sweep(self) -> None:
        self._sweeping[0] += 1
        self._sweeping[1] = max(self._sweeping[1], self._sweeping[0])
        try:
            await asyncio.sleep(0.01)
            self.sweeps += 1
        finally:
            self._sweeping[0] -= 1


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_one_process_sweeps_the_other_takes_over_when_it_stops(
    clients: tuple[RedisClient, RedisClient],
) -> None:
    sweeping = [0, 0]  # now, most at once
    a, b = Loops(sweeping), Loops(sweeping)
    lock_a, lock_b = RedisLeaderLock(clients[0], "t"), RedisLeaderLock(clients[1], "t")
    jobs_a = start_live_jobs(a, lock_a, FAST)
    await until(lambda: a.sweeps >= 1)
    jobs_b = start_live_jobs(b, lock_b, FAST)
    try:
        await until(lambda: b.reconciles >= 3 and len(b.heartbeats) >= 3 and a.sweeps >= 5)
        assert b.sweeps == 0  # a holds the lease
        assert set(a.heartbeats) == set(b.heartbeats) == {0.15}
        assert await clients[0].get("t:leader:live.sweep") == lock_a.token.encode()

        await jobs_a.close()  # a stops: its lease is released, b sweeps from its next round
        assert all(task.done() for task in jobs_a.tasks)
        stopped = (a.reconciles, len(a.heartbeats), a.sweeps)
        await until(lambda: b.sweeps >= 3, timeout=2)
        assert (a.reconciles, len(a.heartbeats), a.sweeps) == stopped
        assert await clients[0].get("t:leader:live.sweep") == lock_b.token.encode()
    finally:
        await jobs_a.close()
        await jobs_b.close()
    assert all(task.done() for task in jobs_b.tasks)
    assert sweeping[1] == 1  # never two sweeps at once
    assert await clients[0].get("t:leader:live.sweep") is None  # b released it on its way out


async def test_without_redis_the_process_sweeps_itself() -> None:
    loops = Loops([0, 0])
    jobs = start_live_jobs(loops, InProcessLeaderLock(), FAST)
    try:
        await until(lambda: loops.sweeps >= 2 and loops.reconciles >= 2 and loops.heartbeats)
    finally:
        await jobs.close()
    assert all(task.done() for task in jobs.tasks)


async def test_close_cancels_a_job_that_does_not_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "STOP_SECONDS", 0.1)
    loops = Loops([0, 0])
    stuck = asyncio.Event()

    async def hangs() -> None:
        stuck.set()
        await asyncio.Event().wait()

    loops.reconcile = hangs  # type: ignore[method-assign]
    jobs = start_live_jobs(loops, InProcessLeaderLock(), FAST)
    await asyncio.wait_for(stuck.wait(), 2)
    await asyncio.wait_for(jobs.close(), 2)
    assert all(task.done() for task in jobs.tasks)


@pytest.mark.parametrize(
    "env",
    [
        {"GATEWAY_LIVE_SWEEP_SECONDS": "0"},
        {"GATEWAY_LIVE_HEARTBEAT_SECONDS": "-1"},
        {"GATEWAY_RECONCILE_SECONDS": "0"},
    ],
)
def test_intervals_must_be_positive(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Settings.from_env(env)


def test_intervals_from_the_environment() -> None:
    settings = Settings.from_env(
        {"GATEWAY_LIVE_SWEEP_SECONDS": "0.5", "GATEWAY_LIVE_HEARTBEAT_SECONDS": "2"}
    )
    assert (settings.live_sweep_seconds, settings.live_heartbeat_seconds) == (0.5, 2.0)
    assert (Settings().live_sweep_seconds, Settings().live_heartbeat_seconds) == (5.0, 10.0)
