"""Session passwords (R1): argon2id, computed in worker threads so the event loop never blocks.

Defaults are OWASP's minimum for argon2id (m=19 MiB, t=2, p=1).

Hashing cannot starve other requests: argon2 is CPU- and memory-bound, so it runs on a small
pool (half the cores, at least one: the other half keeps the event loop and the database
threads going), and the number of checks waiting for it is bounded. Past `max_pending`, a check
is refused at once with `Unavailable(OVERLOADED)` and a Retry-After estimated from how long
checks take, instead of queueing without limit (a burst of password joins used to push every
other join's p99 from 9 ms to 0.8 s). The attempt limits (`services/attempts.py`) are the first
line of defence; this is the second.

`equalise(password)` spends the time of one verification without a stored hash: refusals that
have no password to check (a bad invite) take as long as a wrong password, so the answer's time
says nothing the answer itself does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.domain.errors import ErrorCode, Unavailable

T = TypeVar("T")

__all__ = ["MAX_PASSWORD_CHARS", "PasswordHasher"]

MAX_PASSWORD_CHARS = 1024  # longer inputs are refused without hashing


class PasswordHasher:
    """argon2id hash/verify off the event loop (structurally a `services.ports.PasswordHasher`)."""

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost: int = 19_456,  # KiB
        parallelism: int = 1,
        max_workers: int | None = None,
        max_pending: int | None = None,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        workers = max_workers or max(1, (os.cpu_count() or 2) // 2)
        if workers < 1:
            raise ValueError("max_workers must be positive")
        self._workers = workers
        # Waiting plus running: enough for a class arriving at once, not for a flood.
        self._max_pending = max_pending if max_pending is not None else 16 * workers
        if self._max_pending < 1:
            raise ValueError("max_pending must be positive")
        self._pending = 0
        self._seconds_each = 0.05  # running estimate of one check, for Retry-After
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._dummy_hash: str | None = None

    def __repr__(self) -> str:
        p = self._hasher
        return f"PasswordHasher(t={p.time_cost}, m={p.memory_cost}, p={p.parallelism})"

    async def hash(self, password: str) -> str:
        """The argon2id hash (PHC string, salt included) of a non-empty password."""
        if not password:
            raise ValueError("a password must not be empty")
        if len(password) > MAX_PASSWORD_CHARS:
            raise ValueError(f"a password must be at most {MAX_PASSWORD_CHARS} characters")
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True only if `password` matches; False for a mismatch or an unreadable stored hash."""
        if not password or len(password) > MAX_PASSWORD_CHARS:
            return False
        return await self._run(self._verify, stored_hash, password)

    async def equalise(self, password: str | None = None) -> None:
        """Spend one verification's time (against a hash of nothing anyone knows)."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._run(self._hasher.hash, os.urandom(16).hex())
        await self._run(self._verify, self._dummy_hash, (password or "x")[:MAX_PASSWORD_CHARS])

    @property
    def pending(self) -> int:
        """Checks waiting for or running on the pool."""
        return self._pending

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        if self._pending >= self._max_pending:
            wait = self._pending * self._seconds_each / self._workers
            raise Unavailable(
                ErrorCode.OVERLOADED,
                "Too many password checks at once; try again in a moment.",
                retry_after=max(1.0, wait),
            )
        self._pending += 1
        loop = asyncio.get_running_loop()
        future = self._executor.submit(_timed, fn, *args)

        def done(_: object) -> None:
            # RuntimeError: the loop is closed, nobody is counting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._finished)

        # Counted until the thread is done, even if the caller stops waiting for it.
        future.add_done_callback(done)
        value, seconds = await asyncio.wrap_future(future)
        self._seconds_each = 0.8 * self._seconds_each + 0.2 * seconds
        return value

    def _finished(self) -> None:
        self._pending -= 1

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether a stored hash was made with other parameters (cheap; no hashing)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def close(self) -> None:
        """Stop the worker threads (waits for running hashes to finish)."""
        self._executor.shutdown(wait=True)

    def _verify(self, stored_hash: str, password: str) -> bool:  # on a worker thread
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            # VerifyMismatchError is a VerificationError; a corrupt hash fails closed
            return False


def _timed(fn: Callable[..., T], *args: str) -> tuple[T, float]:
    started = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - started
