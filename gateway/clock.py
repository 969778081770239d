"""Time as a port: every decision takes `now` from an injected clock (tests move it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (for tests and the benchmark's fixed instant)."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at


def to_us(at: datetime) -> int:
    """UTC microseconds since the epoch: the one way instants are stored."""
    return int(at.timestamp() * 1_000_000) if at.tzinfo else _naive(at)


def _naive(at: datetime) -> int:
    raise ValueError("naive datetimes are not accepted; attach a time zone")


def from_us(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)
