"""Flood limits (R1): counts per key in a window, answered with 429 (`services/attempts.py`).

`AttemptLimiter` is the port (the same shape as `gateway.services.ports.AttemptLimiter`);
`InProcessAttemptLimiter` implements it for one process, which is what flood limits need: they
protect this process's own time. The counts that must survive a restart or a Redis flush (wrong
passwords, second devices) are durable tallies in SQL instead (`adapters/sql/attempts.py`).

Semantics (fixed window opened by the first failure):
  * `fail(key, window_seconds, now)` records a failure. The first failure for a key opens a window
    of `window_seconds`; later failures inside it only add to the count (they do not extend it).
    Once the window has closed, the next failure opens a new one with a count of 1.
  * `check(key, limit, window_seconds, now)` is None while the window holds fewer than `limit`
    failures, otherwise the seconds until the window closes (> 0): the Retry-After.
  * `reset(key)` forgets the key (after a success).

Using it: check every key that applies (e.g. "invite:<id>" and "source:<address>") before the
expensive work; answer 429 with Retry-After (rounded up) when any is limited; on a wrong answer
call `fail` for each key; on success `reset` the invite key (not the source key: one good
password must not wipe a source's failures on other invites). Concurrent attempts that all pass
`check` before any `fail` each get one try; to keep that bounded, serialise attempts per invite
or record the failure before verifying and `reset` on success.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["AttemptLimiter", "InProcessAttemptLimiter", "retry_after_header"]


class AttemptLimiter(Protocol):
    """Counts failures per key within a window (see the module docstring for the semantics)."""

    async def check(self, key: str, limit: int, window_seconds: int, now: datetime) -> float | None:
        """None when allowed, else the seconds to wait (Retry-After), always > 0."""
        ...

    async def fail(self, key: str, window_seconds: int, now: datetime) -> None:
        """Record one failure for `key`."""
        ...

    async def reset(self, key: str) -> None:
        """Forget `key`'s failures (after a success)."""
        ...


def retry_after_header(seconds: float) -> str:
    """The Retry-After value for a wait: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


@dataclass(slots=True)
class _Window:
    opened_at: float  # epoch seconds
    closes_at: float
    failures: int


class InProcessAttemptLimiter:
    """In-memory limiter for a single gateway process. Memory is bounded.

    Closed windows are swept every `sweep_every` failures and whenever the table is full; if it is
    still full of open windows, the oldest window is dropped (an attacker would need `max_keys`
    distinct keys failing inside one window to force that).
    """

    def __init__(self, *, max_keys: int = 100_000, sweep_every: int = 1024) -> None:
        if max_keys < 1 or sweep_every < 1:
            raise ValueError("max_keys and sweep_every must be positive")
        self._windows: dict[str, _Window] = {}  # insertion order == order windows opened
        self._max_keys = max_keys
        self._sweep_every = sweep_every
        self._since_sweep = 0

    def __len__(self) -> int:
        return len(self._windows)

    async def check(self, key: str, limit: int, window_seconds: int, now: datetime) -> float | None:
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be positive")
        at = _epoch(now)
        window = self._windows.get(key)
        if window is None:
            return None
        if at >= window.closes_at:
            del self._windows[key]
            return None
        if window.failures < limit:
            return None
        return window.closes_at - at

    async def fail(self, key: str, window_seconds: int, now: datetime) -> None:
        if window_seconds < 1:
            raise ValueError("window_seconds must be positive")
        at = _epoch(now)
        window = self._windows.get(key)
        if window is not None and at < window.closes_at:
            window.failures += 1
            return
        if window is not None:
            del self._windows[key]  # re-inserted below, at the end (newest)
        self._since_sweep += 1
        if self._since_sweep >= self._sweep_every or len(self._windows) >= self._max_keys:
            self._sweep(at)
        while len(self._windows) >= self._max_keys:
            del self._windows[next(iter(self._windows))]
        self._windows[key] = _Window(opened_at=at, closes_at=at + window_seconds, failures=1)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    def _sweep(self, at: float) -> None:
        self._since_sweep = 0
        for key in [k for k, w in self._windows.items() if at >= w.closes_at]:
            del self._windows[key]


def _epoch(now: datetime) -> float:
    if now.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; attach a time zone")
    return now.timestamp()
