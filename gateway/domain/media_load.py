"""Whether the embedded relay's process may take more media: a decision over measured load.

The relay forwards media in one Python process. Past its capacity the event loop falls behind,
the kernel's UDP receive buffers overflow and every session's video freezes at once (issue 11:
one more session past capacity took delivery from 100% to 6.5% for everyone). So new work is
refused *before* that point, from what is measured now:

* event-loop lag (how late a timer fires): the first sign that the process is short of CPU,
  whatever the cause (more peers, a noisy neighbour on the same cores);
* UDP datagrams the kernel dropped on the relay's own sockets per second: quality is already
  being lost;
* forwarded streams (one publisher's track to one subscriber), against an optional cap set
  from the benchmark's measured capacity.

Two levels. ``BUSY``: no new session (a room with nobody connected yet) may start, but people
joining a session that is already running are still let in (a late child's lesson). ``SATURATED``:
no new media connection at all, except a reconnect that replaces a connection (no added load).
Exits, holds, removals and recording are never refused for load.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["LoadLevel", "LoadLimits", "LoadSample", "LoadVerdict", "admits", "assess"]


class LoadLevel(enum.Enum):
    OK = "ok"
    BUSY = "busy"
    SATURATED = "saturated"


@dataclass(frozen=True, slots=True)
class LoadLimits:
    max_loop_lag: float = 0.1  # seconds; BUSY from here, SATURATED from twice this
    max_udp_drops_per_second: float = 50.0  # SATURATED above this
    max_streams: int | None = None  # BUSY from here (None: no fixed cap)
    retry_after: float = 30.0  # seconds, for the refusal's Retry-After


@dataclass(frozen=True, slots=True)
class LoadSample:
    loop_lag: float  # seconds, smoothed
    udp_drops_per_second: float
    streams: int


@dataclass(frozen=True, slots=True)
class LoadVerdict:
    level: LoadLevel
    reasons: tuple[str, ...] = ()
    retry_after: float = 0.0


def assess(sample: LoadSample, limits: LoadLimits) -> LoadVerdict:
    """The level the process is at, with the measured reasons (plain words, no personal data)."""
    saturated: list[str] = []
    busy: list[str] = []
    if sample.loop_lag >= 2 * limits.max_loop_lag:
        saturated.append(f"event loop {1000 * sample.loop_lag:.0f} ms late")
    elif sample.loop_lag >= limits.max_loop_lag:
        busy.append(f"event loop {1000 * sample.loop_lag:.0f} ms late")
    if sample.udp_drops_per_second > limits.max_udp_drops_per_second:
        saturated.append(f"{sample.udp_drops_per_second:.0f} UDP datagrams/s dropped")
    if limits.max_streams is not None and sample.streams >= limits.max_streams:
        busy.append(f"{sample.streams} streams forwarded (limit {limits.max_streams})")
    if saturated:
        return LoadVerdict(LoadLevel.SATURATED, tuple(saturated + busy), 2 * limits.retry_after)
    if busy:
        return LoadVerdict(LoadLevel.BUSY, tuple(busy), limits.retry_after)
    return LoadVerdict(LoadLevel.OK)


def admits(verdict: LoadVerdict, *, session_running: bool, replaces: bool) -> bool:
    """Whether a new media connection may be taken at this verdict.

    ``session_running``: someone is already connected in the room (the connection joins a
    running session rather than starting one); ``replaces``: the identity already has a
    connection that this one replaces (a reconnect: no added load).
    """
    if verdict.level is LoadLevel.OK or replaces:
        return True
    if verdict.level is LoadLevel.BUSY:
        return session_running
    return False
