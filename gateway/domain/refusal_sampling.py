"""Which refused anonymous requests are audited one by one, and which only as counts.

Anyone can send the gateway bad requests without a key; auditing each one would let them grow
the audit log at will. Per fixed window (a minute by default), each source's first refusals
are audited individually, up to a cap for the whole window; the rest are counted per
(code, route) and written as one aggregate entry when the window closes. Sources are kept only
as keys in memory, never written anywhere. Refusals of authenticated requests are not sampled.

Pure: the caller passes the time (seconds) and writes what is returned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RefusalCounts:
    """The refusals of one closed window that were not audited one by one."""

    window_start: float  # seconds since the epoch
    window_seconds: float
    counts: tuple[tuple[str, str, int], ...]  # (code, route, how many), sorted
    sources: int  # how many distinct sources went past their individual allowance

    @property
    def total(self) -> int:
        return sum(count for _, _, count in self.counts)

    def as_data(self) -> dict[str, object]:
        return {
            "window_start": self.window_start,
            "window_seconds": self.window_seconds,
            "total": self.total,
            "sources": self.sources,
            "counts": [
                {"code": code, "route": route, "count": count} for code, route, count in self.counts
            ],
        }


@dataclass
class RefusalSampler:
    per_source: int = 10  # individual entries per source per window
    per_window: int = 200  # individual entries per window, all sources together
    window_seconds: float = 60.0
    max_sources: int = 10_000  # sources tracked per window; beyond, every refusal is counted
    _window: int | None = None
    _by_source: dict[str, int] = field(default_factory=dict)
    _individual: int = 0
    _counted: Counter[tuple[str, str]] = field(default_factory=Counter)
    _over: set[str] = field(default_factory=set)
    _closed: list[RefusalCounts] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.per_source < 0 or self.per_window < 0 or not self.window_seconds > 0:
            raise ValueError("sampling limits must be positive")

    def individually(self, source: str, code: str, route: str, now: float) -> bool:
        """True: audit this refusal as its own entry. False: it was counted for the window's
        aggregate entry (collect it with `closed`)."""
        self._roll(now)
        seen = self._by_source.get(source)
        if seen is None and len(self._by_source) >= self.max_sources:
            seen = self.per_source  # too many sources to track: count, never list
        else:
            self._by_source[source] = (seen or 0) + 1
        seen = seen or 0
        if seen < self.per_source and self._individual < self.per_window:
            self._individual += 1
            return True
        self._counted[(code, route)] += 1
        if len(self._over) < self.max_sources:
            self._over.add(source)
        return False

    def closed(self, now: float, *, everything: bool = False) -> list[RefusalCounts]:
        """The aggregates of windows that have ended by `now` (all of them, the current one
        included, when `everything`, e.g. at shutdown); each is returned once."""
        self._roll(now)
        if everything:
            self._close()
            self._window = None
        found, self._closed = self._closed, []
        return found

    def _roll(self, now: float) -> None:
        window = int(now // self.window_seconds)
        if self._window is not None and window != self._window:
            self._close()
        self._window = window

    def _close(self) -> None:
        if self._counted and self._window is not None:
            self._closed.append(
                RefusalCounts(
                    window_start=self._window * self.window_seconds,
                    window_seconds=self.window_seconds,
                    counts=tuple(
                        sorted((code, route, n) for (code, route), n in self._counted.items())
                    ),
                    sources=len(self._over),
                )
            )
        self._by_source = {}
        self._individual = 0
        self._counted = Counter()
        self._over = set()
