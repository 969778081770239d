"""Session passwords (R1): argon2id, computed in worker threads so the event loop never blocks.

Defaults are OWASP's minimum for argon2id (m=19 MiB, t=2, p=1). The worker pool is bounded, so
a burst of attempts queues instead of allocating memory without limit; the attempt limiter is
the first line of defence, this is the second.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

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
        max_workers: int = 4,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="argon2")

    def __repr__(self) -> str:
        p = self._hasher
        return f"PasswordHasher(t={p.time_cost}, m={p.memory_cost}, p={p.parallelism})"

    async def hash(self, password: str) -> str:
        """The argon2id hash (PHC string, salt included) of a non-empty password."""
        if not password:
            raise ValueError("a password must not be empty")
        if len(password) > MAX_PASSWORD_CHARS:
            raise ValueError(f"a password must be at most {MAX_PASSWORD_CHARS} characters")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True only if `password` matches; False for a mismatch or an unreadable stored hash."""
        if not password or len(password) > MAX_PASSWORD_CHARS:
            return False
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._verify, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether a stored hash was made with other parameters (cheap; no hashing)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def close(self) -> None:
        """Stop the worker threads (waits for running hashes to finish)."""
        self._executor.shutdown(wait=True)

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            # VerifyMismatchError is a VerificationError; a corrupt hash fails closed
            return False
