"""Faithful doubles of storage that misbehaves, for the recorder tests.

`DiskFullStorage` is a local recording directory on a disk that fills up: once `capacity`
bytes have been written in total, every further write raises OSError(ENOSPC), exactly what
`os.write` does on a full file system (the bytes before the limit really reach the file).
`SlowDiskStorage` is a local directory whose every write takes `delay` seconds (a disk far
slower than the media arriving), to make a recorder's queue overflow.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from gateway.adapters.recording_vault import LocalRecordingStorage, RecordingSink


class _FullingSink:
    def __init__(self, inner: RecordingSink, storage: DiskFullStorage) -> None:
        self._inner = inner
        self._storage = storage

    def write(self, data: bytes) -> None:
        room = self._storage.capacity - self._storage.used
        if room < len(data):
            if room > 0:  # a partial write, then the disk is full
                self._inner.write(data[:room])
                self._storage.used += room
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._inner.write(data)
        self._storage.used += len(data)

    def sync(self) -> None:
        self._inner.sync()

    def close(self) -> None:
        self._inner.close()


class DiskFullStorage(LocalRecordingStorage):
    def __init__(self, directory: Path, capacity: int) -> None:
        super().__init__(directory)
        self.capacity = capacity
        self.used = 0

    def create(self, recording_id: str) -> _FullingSink:  # type: ignore[override]
        return _FullingSink(super().create(recording_id), self)


class _SlowSink:
    def __init__(self, inner: RecordingSink, delay: float) -> None:
        self._inner = inner
        self._delay = delay

    def write(self, data: bytes) -> None:
        time.sleep(self._delay)
        self._inner.write(data)

    def sync(self) -> None:
        self._inner.sync()

    def close(self) -> None:
        self._inner.close()


class SlowDiskStorage(LocalRecordingStorage):
    def __init__(self, directory: Path, delay: float) -> None:
        super().__init__(directory)
        self.delay = delay

    def create(self, recording_id: str) -> _SlowSink:  # type: ignore[override]
        return _SlowSink(super().create(recording_id), self.delay)
