"""The recorder the tests run against: the gateway's own (gateway/media/recorder.py) when the
composition root wires one; otherwise a stand-in that writes a marker per person into the
encrypted writer, so every other piece (catalogue, keys, scope, audit) is the real one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.services.live import LiveSessionService
from gateway.services.recording_ports import RecordingWriting


class MarkerRecorder:
    """A `ParticipantRecorder` that writes "<identity> started" and "stopped" markers."""

    def __init__(self) -> None:
        self._writing: dict[tuple[str, str], RecordingWriting] = {}
        self._failures: dict[tuple[str, str], Callable[[BaseException], None]] = {}
        self.ever: list[str] = []  # every identity it was ever asked to record

    async def start(
        self,
        room: str,
        identity: str,
        writer: RecordingWriting,
        *,
        audio_only: bool,
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self.ever.append(identity)
        self._writing[(room, identity)] = writer
        self._failures[(room, identity)] = on_failure
        await asyncio.to_thread(writer.append, f"{identity} started {audio_only}\n".encode())

    async def stop(self, room: str, identity: str) -> None:
        writer = self._writing.pop((room, identity), None)
        self._failures.pop((room, identity), None)
        if writer is not None:
            await asyncio.to_thread(writer.append, b"stopped\n")

    def recording(self, room: str) -> frozenset[str]:
        return frozenset(i for r, i in self._writing if r == room)

    def fail(self, room: str, identity: str, exc: BaseException) -> None:
        """The storage failing under this person's recording (as a full disk would)."""
        self._writing.pop((room, identity), None)
        on_failure = self._failures.pop((room, identity))
        on_failure(exc)


def attach_recorder(live: LiveSessionService) -> None:
    if live.recording.recorder is None:
        live.recording.recorder = MarkerRecorder()
