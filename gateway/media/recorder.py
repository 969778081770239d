"""Records one participant's own published media from the embedded relay, without re-encoding.

`RelayRecorder` implements the recording services' `ParticipantRecorder` port over
:class:`gateway.media.relay.EmbeddedRelay`. Per recording:

* the relay hands the participant's encoded frames to a *tap* (on the event loop, in the
  forwarding path). The tap only decides whether a frame can be used (video starts at a key
  frame of each publication; the relay is asked for one) and queues it; it never blocks.
* one writer thread per recording takes the queued frames, muxes them as they are (VP8 and Opus
  packets, no decoding, no encoding) into a WebM container held in memory, and hands the
  container's bytes to the `RecordingWriting` (`append`, which encrypts): no plaintext byte ever
  reaches a file. One thread per recording keeps one slow or failing storage from delaying the
  others, and keeps the event loop free of muxing and encryption.
* the queue is bounded (bytes). A frame that does not fit is *lost*: counted, reported at stop,
  and for video the recording waits for the next key frame so the file stays decodable. Memory
  never grows without bound.

Timestamps: each frame's RTP timestamp (90 kHz video, 48 kHz Opus) is unwrapped and kept
relative to the first frame of its publication, which is anchored on the recording's timeline by
its arrival time; audio and video stay in step, and a publication that starts later (a
participant who joins or reconnects) continues on the same timeline from its first key frame.

The WebM is written for a non-seekable output (a "live" WebM, as browsers' MediaRecorder makes):
nothing is ever rewritten, which is what an append-only encrypted file needs. The container
header is written once the first video key frame gives the picture size (or, when the
participant publishes no video, `header_grace` seconds after start; VP8 decoders read the real
size from the bitstream anyway).

Failures: an exception from the writer (OSError such as ENOSPC, storage gone) ends that
recording only: the tap is removed, the thread stops touching the writer, and `on_failure` is
called once, from the event loop. The session's forwarding never waits for a recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av

from gateway.services.recording_ports import RecordingWriting

from .passthrough import AUDIO_CLOCK, VIDEO_CLOCK, EncodedFrame
from .relay import EmbeddedRelay

__all__ = ["RecorderBusy", "RecorderStats", "RelayRecorder", "vp8_picture_size"]

log = logging.getLogger(__name__)

_CLOCK = {"video": VIDEO_CLOCK, "audio": AUDIO_CLOCK}
_TIME_BASE = {kind: fractions.Fraction(1, clock) for kind, clock in _CLOCK.items()}
# Smallest step between two frames of one track (1 ms): the WebM timeline counts milliseconds.
_MIN_STEP = {kind: clock // 1000 for kind, clock in _CLOCK.items()}
_DEFAULT_SIZE = (640, 480)
# What the muxer may hold back to interleave audio with video (microseconds).
_MAX_INTERLEAVE_US = 500_000
_STOP = object()


class RecorderBusy(RuntimeError):
    """This participant is already being recorded in this room."""


def vp8_picture_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 key frame header (RFC 6386 section 9.1), else None."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


@dataclass(frozen=True, slots=True)
class RecorderStats:
    frames_queued: int
    frames_written: int
    frames_lost: int  # queue full: not in the recording
    frames_skipped: int  # video before a key frame (start, new publication, after a loss)
    bytes_written: int  # container bytes handed to the writer


class _WriterOutput:
    """The file-like the muxer writes to: forwards to `RecordingWriting.append` (which
    encrypts). Non-seekable on purpose. An exception from the writer is kept (the muxer is not
    told, so it stays consistent) and nothing more is appended."""

    def __init__(self, writer: RecordingWriting) -> None:
        self._writer = writer
        self.error: BaseException | None = None
        self.bytes = 0

    def write(self, data: Any) -> int:
        size = len(data)
        if self.error is None:
            try:
                self._writer.append(bytes(data))
                self.bytes += size
            except Exception as exc:
                self.error = exc
        return size


class _TrackTimeline:
    """Maps one track's RTP timestamps onto the recording's timeline (its clock units)."""

    def __init__(self, kind: str) -> None:
        self.clock = _CLOCK[kind]
        self.step = _MIN_STEP[kind]
        self.source = -1
        self.last_raw = 0
        self.unwrapped = 0
        self.offset = 0  # pts = unwrapped + offset
        self.last_pts = -1

    def pts(self, source: int, timestamp: int, arrival: float) -> int:
        if source != self.source:
            self.source = source
            self.last_raw = timestamp
            self.unwrapped = 0
            self._anchor(arrival)
        else:
            delta = (timestamp - self.last_raw) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 0x100000000
            self.last_raw = timestamp
            self.unwrapped += delta
        pts = self.unwrapped + self.offset
        if pts < self.last_pts + self.step:
            # Went backwards or stood still: never write a timestamp that does.
            self._anchor(arrival)
            pts = self.unwrapped + self.offset
        self.last_pts = pts
        return pts

    def _anchor(self, arrival: float) -> None:
        at = max(round(arrival * self.clock), self.last_pts + self.step, 0)
        self.offset = at - self.unwrapped


class _Recording:
    """One participant's recording: the tap (event loop side) and the writer thread."""

    def __init__(
        self,
        recorder: RelayRecorder,
        room: str,
        identity: str,
        writer: RecordingWriting,
        audio_only: bool,
        on_failure: Callable[[BaseException], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.recorder = recorder
        self.room = room
        self.identity = identity
        self.writer = writer
        self.audio_only = audio_only
        self.on_failure = on_failure
        self.loop = loop
        self.started = time.monotonic()
        self.done: asyncio.Future[None] = loop.create_future()
        self.failed = False
        self.stopping = False
        # Event loop side.
        self.video_source = -1
        self.need_keyframe = True
        self.frames_queued = 0
        self.frames_lost = 0
        self.frames_skipped = 0
        # Shared, under `cond`.
        self.cond = threading.Condition()
        self.items: deque[Any] = deque()
        self.queued_bytes = 0
        # Writer thread side.
        self.output = _WriterOutput(writer)
        self.frames_written = 0
        self.thread = threading.Thread(target=self._run, name="recorder-writer", daemon=True)

    # --------------------------------------------------------- event loop side

    def tap(self, kind: str, source: int, frame: EncodedFrame) -> None:
        if kind == "video":
            if self.audio_only:
                return
            if source != self.video_source:
                self.video_source = source
                self.need_keyframe = True
            if self.need_keyframe:
                if not frame.keyframe:
                    self.frames_skipped += 1
                    self.recorder.relay.request_keyframe(self.room, self.identity)
                    return
                self.need_keyframe = False
        size = len(frame.data)
        with self.cond:
            if self.queued_bytes + size > self.recorder.queue_bytes:
                lost = True
            else:
                lost = False
                self.items.append((kind, source, frame, time.monotonic() - self.started))
                self.queued_bytes += size
                self.cond.notify()
        if lost:
            self.frames_lost += 1
            if kind == "video":
                self.need_keyframe = True
                self.recorder.relay.request_keyframe(self.room, self.identity)
        else:
            self.frames_queued += 1

    def stats(self) -> RecorderStats:
        return RecorderStats(
            self.frames_queued,
            self.frames_written,
            self.frames_lost,
            self.frames_skipped,
            self.output.bytes,
        )

    def request_stop(self) -> None:
        with self.cond:
            self.items.append(_STOP)
            self.cond.notify()

    def ended(self, error: BaseException | None) -> None:
        """On the loop, once the writer thread has finished with the writer."""
        if error is not None:
            self.failed = True
            self.recorder._detach(self)
            try:
                self.on_failure(error)
            except Exception:
                log.exception("recording on_failure handler failed")
        if not self.done.done():
            self.done.set_result(None)

    # ------------------------------------------------------------ writer thread

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            error = self._mux_until_stopped()
        except Exception as exc:  # PyAV refused something: this recording ends, not the loop
            error = self.output.error or exc
        # RuntimeError: the loop is gone (shutdown), nobody is left to tell.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.ended, error)

    def _mux_until_stopped(self) -> BaseException | None:
        container: Any = av.open(
            self.output,
            mode="w",
            format="webm",
            options={"max_interleave_delta": str(_MAX_INTERLEAVE_US)},
        )
        muxer = _Muxer(container, self.audio_only, self.recorder.header_grace)
        try:
            while True:
                with self.cond:
                    while not self.items:
                        self.cond.wait()
                    batch = self.items
                    self.items = deque()
                    self.queued_bytes = 0
                for item in batch:
                    if item is _STOP:
                        muxer.finish()
                        return self.output.error
                    kind, source, frame, arrival = item
                    muxer.add(kind, source, frame, arrival)
                    self.frames_written += 1
                if self.output.error is not None:
                    return self.output.error
        finally:
            with contextlib.suppress(Exception):
                container.close()


class _Muxer:
    """The WebM container of one recording (used by its writer thread only)."""

    def __init__(self, container: Any, audio_only: bool, header_grace: float) -> None:
        self.container = container
        self.audio_only = audio_only
        self.header_grace = header_grace
        self.timelines = {kind: _TrackTimeline(kind) for kind in _CLOCK}
        self.streams: dict[str, Any] = {}
        self.pending: list[tuple[str, int, bytes, bool]] = []

    def add(self, kind: str, source: int, frame: EncodedFrame, arrival: float) -> None:
        pts = self.timelines[kind].pts(source, frame.timestamp, arrival)
        if not self.streams:
            size = vp8_picture_size(frame.data) if kind == "video" else None
            if size is None and not self.audio_only and arrival < self.header_grace:
                self.pending.append((kind, pts, frame.data, frame.keyframe))
                return
            self._open(size)
        self._mux(kind, pts, frame.data, frame.keyframe)

    def finish(self) -> None:
        if not self.streams:
            self._open(None)
        self.container.close()  # writes what the interleaver holds, then the trailer

    def _open(self, size: tuple[int, int] | None) -> None:
        width, height = size or _DEFAULT_SIZE
        if not self.audio_only:
            self.streams["video"] = self.container.add_mux_stream("vp8", width=width, height=height)
        # An Opus *encoder* stream, opened but never fed: it is how PyAV gives the track its
        # CodecPrivate (OpusHead), which browsers need to play the audio.
        self.streams["audio"] = self.container.add_stream(
            "libopus", rate=AUDIO_CLOCK, layout="stereo"
        )
        self.container.start_encoding()
        pending, self.pending = self.pending, []
        for kind, pts, data, keyframe in pending:
            self._mux(kind, pts, data, keyframe)

    def _mux(self, kind: str, pts: int, data: bytes, keyframe: bool) -> None:
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = _TIME_BASE[kind]
        packet.stream = self.streams[kind]
        packet.is_keyframe = keyframe
        self.container.mux(packet)


class RelayRecorder:
    """`ParticipantRecorder` over the embedded relay. All methods run on the relay's loop."""

    def __init__(
        self,
        relay: EmbeddedRelay,
        *,
        queue_bytes: int = 8 * 1024 * 1024,
        header_grace: float = 2.0,
    ) -> None:
        """
        :param queue_bytes: encoded media one recording may have waiting for its writer
            thread; a frame beyond it is lost (counted). 8 MiB is ~40 s of 640x480 video at
            the bitrates browsers send, far more than a healthy disk ever lags.
        :param header_grace: how long to wait for a first video key frame (its picture size
            goes into the header) before starting the container without it.
        """
        if queue_bytes <= 0:
            raise ValueError("queue_bytes must be > 0")
        self.relay = relay
        self.queue_bytes = queue_bytes
        self.header_grace = header_grace
        self._recordings: dict[tuple[str, str], _Recording] = {}

    async def start(
        self,
        room: str,
        identity: str,
        writer: RecordingWriting,
        *,
        audio_only: bool,
        on_failure: Callable[[BaseException], None],
    ) -> None:
        key = (room, identity)
        if key in self._recordings:
            raise RecorderBusy("this participant is already being recorded")
        recording = _Recording(
            self, room, identity, writer, audio_only, on_failure, asyncio.get_running_loop()
        )
        self._recordings[key] = recording
        recording.thread.start()
        self.relay.add_tap(room, identity, recording.tap)
        if not audio_only:
            self.relay.request_keyframe(room, identity)

    async def stop(self, room: str, identity: str) -> None:
        recording = self._recordings.get((room, identity))
        if recording is None:
            return
        if not recording.stopping:
            recording.stopping = True
            self._detach(recording)
            recording.request_stop()
        await asyncio.shield(recording.done)
        if self._recordings.get((room, identity)) is recording:
            del self._recordings[(room, identity)]
        if recording.frames_lost:
            log.warning(
                "a recording lost %d frames (its writer fell behind)", recording.frames_lost
            )

    def recording(self, room: str) -> frozenset[str]:
        return frozenset(
            identity
            for (r, identity), rec in self._recordings.items()
            if r == room and not rec.failed and not rec.stopping
        )

    def stats(self, room: str, identity: str) -> RecorderStats | None:
        recording = self._recordings.get((room, identity))
        return None if recording is None else recording.stats()

    async def close(self) -> None:
        """Stop every recording (trailers written; sealing is the callers' job)."""
        await asyncio.gather(*(self.stop(room, ident) for room, ident in list(self._recordings)))

    def _detach(self, recording: _Recording) -> None:
        self.relay.remove_tap(recording.room, recording.identity, recording.tap)
        if (
            recording.failed
            and self._recordings.get((recording.room, recording.identity)) is recording
        ):
            del self._recordings[(recording.room, recording.identity)]
