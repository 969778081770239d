"""Measuring the embedded relay's load for admission (the decision is `domain.media_load`).

A :class:`LoadMonitor` runs one small task on the relay's event loop:

* **event-loop lag**: every ``interval`` it sleeps and notes how late it woke up, smoothed
  (exponential, about ``window`` seconds). A process short of CPU wakes late;
* **UDP drops on this process's own sockets**: the ``drops`` column of ``/proc/net/udp`` and
  ``/proc/net/udp6`` (Linux) for the socket inodes this process holds, per second. Read in a
  worker thread, once per ``drops_every`` seconds; elsewhere (no /proc) it counts 0;
* **forwarded streams**: given by the relay (a callable).

Reading ``verdict()`` is cheap (no I/O): it assesses the last sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from gateway.domain.media_load import LoadLimits, LoadSample, LoadVerdict, assess

__all__ = ["LoadMonitor", "udp_drops_of_this_process"]

log = logging.getLogger(__name__)

_UDP_TABLES = (Path("/proc/net/udp"), Path("/proc/net/udp6"))


def _socket_inodes() -> set[str]:
    inodes: set[str] = set()
    fd_dir = Path("/proc/self/fd")
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for name in names:
        with contextlib.suppress(OSError):
            target = os.readlink(fd_dir / name)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def udp_drops_of_this_process() -> int:
    """Datagrams the kernel dropped on this process's UDP sockets (since each was opened)."""
    inodes = _socket_inodes()
    total = 0
    for table in _UDP_TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # ... uid timeout inode ref pointer drops
            if len(fields) >= 13 and fields[9] in inodes:
                with contextlib.suppress(ValueError):
                    total += int(fields[-1])
    return total


class LoadMonitor:
    """Samples load on the running loop; ``verdict()`` says whether to take more media."""

    def __init__(
        self,
        limits: LoadLimits,
        streams: Callable[[], int],
        *,
        interval: float = 0.1,
        window: float = 2.0,
        drops_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._streams = streams
        self.interval = interval
        self._alpha = min(1.0, interval / window)
        self.drops_every = drops_every
        self._clock = clock
        self.loop_lag = 0.0
        self.udp_drops_per_second = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def sample(self) -> LoadSample:
        return LoadSample(self.loop_lag, self.udp_drops_per_second, self._streams())

    def verdict(self) -> LoadVerdict:
        return assess(self.sample(), self.limits)

    async def _run(self) -> None:
        last_drops = 0
        with contextlib.suppress(Exception):
            last_drops = await asyncio.to_thread(udp_drops_of_this_process)
        drops_at = self._clock()
        while True:
            before = self._clock()
            await asyncio.sleep(self.interval)
            now = self._clock()
            lag = max(0.0, now - before - self.interval)
            # Smoothed: one garbage-collector pause must not refuse a session; a sustained
            # shortage of CPU shows within a second or two.
            self.loop_lag += self._alpha * (lag - self.loop_lag)
            if now - drops_at >= self.drops_every:
                try:
                    drops = await asyncio.to_thread(udp_drops_of_this_process)
                except Exception:  # a measurement failing must not stop the lag measure
                    log.warning("could not read UDP drops; counting none", exc_info=True)
                    drops = last_drops
                after = self._clock()
                # Sockets closed since the last read take their counts with them: never < 0.
                self.udp_drops_per_second = max(0, drops - last_drops) / (after - drops_at)
                last_drops, drops_at = drops, after
