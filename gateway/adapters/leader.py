"""Only one process runs each periodic job (reconciliation, retention sweeps): a named lease.

`LeaderLock` is the interface. `RedisLeaderLock` is a lease in Redis: `SET key token NX PX ttl`
with a random token per lock object (one per process), renewed and released only by its holder
(compare-and-pexpire, compare-and-delete in Lua), so a process whose lease expired can neither
extend nor delete its successor's. `InProcessLeaderLock` always grants: with one process there is
nobody to compete with.

`run_periodically(lock, name, interval, job, stop_event)` runs `job()` every `interval` seconds
while this process holds the lease `name`, renewing it each round; whoever holds it when the
holder stops (release) or dies (the lease runs out after `ttl_seconds`) takes over.

A lease is not a mutex: a holder paused for longer than `ttl_seconds` can overlap its successor.
Jobs must therefore be idempotent and keep their decisions in SQL, and `ttl_seconds` must exceed
a round's run time (the default is three intervals).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, TypeVar

from gateway.adapters.live_memory import LiveStateUnavailable
from gateway.adapters.live_redis import RedisClient, unavailable_on_error

__all__ = [
    "InProcessLeaderLock",
    "LeaderLock",
    "RedisLeaderLock",
    "exclusively",
    "run_periodically",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class LeaderLock(Protocol):
    async def acquire(self, name: str, ttl_seconds: float) -> bool:
        """Take the lease `name` for `ttl_seconds` if nobody else holds it. True when this lock
        holds it afterwards (taking it again while holding it extends it)."""
        ...

    async def renew(self, name: str, ttl_seconds: float) -> bool:
        """Extend the lease if this lock still holds it; False when it has lost it."""
        ...

    async def release(self, name: str) -> None:
        """Give the lease up if this lock holds it (never anyone else's)."""
        ...


class InProcessLeaderLock:
    """One process: every job is this process's to run."""

    async def acquire(self, name: str, ttl_seconds: float) -> bool:
        _positive(ttl_seconds)
        return True

    async def renew(self, name: str, ttl_seconds: float) -> bool:
        _positive(ttl_seconds)
        return True

    async def release(self, name: str) -> None:
        return None


_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLeaderLock:
    """Leases in Redis under `{prefix}:leader:{name}`. Raises `LiveStateUnavailable` when Redis
    cannot be reached (nobody can be sure who leads; see `run_periodically`)."""

    def __init__(self, client: RedisClient, prefix: str = "sgw", token: str | None = None) -> None:
        self._client = client
        self._prefix = f"{prefix}:leader"
        self.token = token or secrets.token_hex(16)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def _key(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    async def acquire(self, name: str, ttl_seconds: float) -> bool:
        with unavailable_on_error():
            got = await self._acquire(keys=[self._key(name)], args=[self.token, _ms(ttl_seconds)])
        return bool(got)

    async def renew(self, name: str, ttl_seconds: float) -> bool:
        with unavailable_on_error():
            got = await self._renew(keys=[self._key(name)], args=[self.token, _ms(ttl_seconds)])
        return bool(got)

    async def release(self, name: str) -> None:
        with unavailable_on_error():
            await self._release(keys=[self._key(name)], args=[self.token])


async def run_periodically(
    lock: LeaderLock,
    name: str,
    interval: float,
    job: Callable[[], Awaitable[None]],
    stop_event: asyncio.Event,
    *,
    ttl_seconds: float | None = None,
    when_unavailable: Literal["skip", "run"] = "skip",
) -> None:
    """Run `job()` every `interval` seconds while holding the lease `name`, until `stop_event`.

    Each round takes or extends the lease (for `ttl_seconds`, default `3 * interval`) and runs
    the job only if this process holds it. A job that raises is logged and tried again next
    round. When the lock's store is unavailable nobody can know who leads: with
    `when_unavailable="skip"` (the default) the round is skipped; pass "run" for jobs whose
    action is the fail-closed one and safe to run in every process at once (e.g. holding
    children while live state cannot be read). The lease is released on the way out.
    """
    if interval <= 0:
        raise ValueError("interval must be positive")
    ttl = ttl_seconds if ttl_seconds is not None else 3 * interval
    _positive(ttl)
    holding = False
    try:
        while not stop_event.is_set():
            try:
                holding = await lock.acquire(name, ttl)
                run = holding
            except LiveStateUnavailable as exc:
                holding = False
                run = when_unavailable == "run"
                log.warning("leader lock %s unavailable (%s); %s", name, exc, when_unavailable)
            if run:
                try:
                    await job()
                except Exception:
                    log.exception("periodic job %s failed", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), interval)
    finally:
        if holding:
            with contextlib.suppress(LiveStateUnavailable):
                await asyncio.shield(lock.release(name))


async def exclusively(
    lock: LeaderLock,
    name: str,
    ttl_seconds: float,
    job: Callable[[], Awaitable[T]],
    *,
    wait_seconds: float = 0.0,
    poll_seconds: float = 0.2,
    waiting: Callable[[], None] | None = None,
) -> tuple[bool, T | None]:
    """Run `job()` once while holding the lease `name` (one run at a time across processes),
    renewing it every third of `ttl_seconds` for as long as the job runs, and releasing it
    after. When another process holds it, try again every `poll_seconds` for up to
    `wait_seconds` (calling `waiting()` once, the first time); (False, None) if it never came.

    Unlike `run_periodically`'s leadership, held for as long as a process lives, this lease
    is held only while a run is in progress: a run by hand (`gateway retention run`) waits for
    the periodic job's current round, not for the leader to die.
    """
    _positive(ttl_seconds)
    deadline = asyncio.get_running_loop().time() + wait_seconds
    told = False
    while not await lock.acquire(name, ttl_seconds):
        if asyncio.get_running_loop().time() >= deadline:
            return False, None
        if waiting is not None and not told:
            waiting()
            told = True
        await asyncio.sleep(poll_seconds)

    async def keep() -> None:
        while True:
            await asyncio.sleep(ttl_seconds / 3)
            try:
                if not await lock.renew(name, ttl_seconds):
                    log.error("lease %s lost while its run was in progress", name)
                    return
            except LiveStateUnavailable:
                log.warning("lease %s could not be renewed (live state unavailable)", name)

    renewing = asyncio.create_task(keep())
    try:
        return True, await job()
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)
        with contextlib.suppress(LiveStateUnavailable):
            await asyncio.shield(lock.release(name))


def _positive(ttl_seconds: float) -> None:
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")


def _ms(ttl_seconds: float) -> int:
    _positive(ttl_seconds)
    return max(1, round(ttl_seconds * 1000))
