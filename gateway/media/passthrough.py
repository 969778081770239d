"""Encoded-frame pass-through on top of aiortc: every use of aiortc/aioice internals lives here.

Written against **aiortc 1.16.0** (aioice 0.13.0). pyproject pins aiortc; ``tests/media`` fail
loudly if an upgrade changes any of the internals below:

* ``RTCRtpReceiver.__decoder_queue`` (a ``queue.Queue`` of ``(codec, JitterFrame)``): replaced,
  before ``receive()`` starts the decoder thread, by :class:`_TapQueue`, which hands complete
  encoded frames (out of the jitter buffer) to the relay and never to the decoder thread. The
  decoder thread still starts but only ever sees the ``None`` stop sentinel.
* ``RTCRtpReceiver.__remote_bitrate_estimator``: set to None on tapped receivers. It estimates
  the publisher's bandwidth for REMB feedback from every video packet's arrival time and was the
  largest single cost in the relay's profile (``docs/benchmarks.md``); the relay announces the
  rate it accepts in the SDP answer (``b=AS``) instead.
* ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)``: used to ask a publisher for a keyframe.
* ``RTCRtpSender._send_keyframe()``: called by the sender when a subscriber sends PLI/FIR; it is
  overridden on the instance to forward the request to the publisher instead of the (unused)
  encoder.
* ``RTCRtpSender._next_encoded_frame``: when a track's ``recv()`` returns an ``av.Packet`` the
  sender packetises it with the codec's ``Encoder.pack()`` (no encode). :class:`ForwardTrack`
  relies on this (it is also how ``MediaPlayer(decode=False)`` works).
* ``RTCIceTransport._connection`` (``aioice.Connection``): ``data_received`` and
  ``request_received`` are wrapped on the instance to time the last datagram from the peer
  (liveness), and ``gather_candidates`` to add a loopback host candidate where aioice would
  otherwise gather none (aioice skips 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import fractions
import queue
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

import aiortc
import av
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .errors import AiortcInternalsError

__all__ = [
    "AIORTC_VERSION",
    "ActivityProbe",
    "EncodedFrame",
    "ForwardTrack",
    "RatePolicer",
    "ReceiverTap",
    "abort_ice_transports",
    "check_aiortc",
    "install_activity_probe",
    "install_keyframe_hook",
    "install_loopback_candidates",
    "install_receiver_tap",
    "install_socket_buffers",
    "send_pli",
    "vp8_is_keyframe",
]

AIORTC_VERSION = "1.16.0"

_DECODER_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
_ESTIMATOR_ATTR = "_RTCRtpReceiver__remote_bitrate_estimator"
_RECEIVER_STARTED_ATTR = "_RTCRtpReceiver__started"

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000  # Opus RTP clock
_TIME_BASE = {
    "video": fractions.Fraction(1, VIDEO_CLOCK),
    "audio": fractions.Fraction(1, AUDIO_CLOCK),
}
# Timestamp gap inserted when a slot switches source (one frame at 30 fps / one 20 ms packet).
_SWITCH_STEP = {"video": VIDEO_CLOCK // 30, "audio": AUDIO_CLOCK // 50}
_QUEUE_LIMIT = {"video": 60, "audio": 50}


def check_aiortc() -> None:
    """Refuse to run on an aiortc whose internals were not reviewed (see module docstring)."""
    if aiortc.__version__ != AIORTC_VERSION:
        raise AiortcInternalsError(
            f"embedded relay was written for aiortc {AIORTC_VERSION}, found {aiortc.__version__}"
        )
    receiver_ok = hasattr(RTCRtpReceiver, "_send_rtcp_pli") and hasattr(
        RTCRtpReceiver, "getSynchronizationSources"
    )
    sender_ok = hasattr(RTCRtpSender, "_send_keyframe") and hasattr(
        RTCRtpSender, "_next_encoded_frame"
    )
    if not (receiver_ok and sender_ok):
        raise AiortcInternalsError("aiortc RTP sender/receiver internals changed")


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame as reassembled by the receiver's jitter buffer."""

    data: bytes
    timestamp: int  # RTP clock units, origin at the first frame of the stream
    keyframe: bool


def vp8_is_keyframe(data: bytes) -> bool:
    """RFC 6386 section 9.1: bit 0 of the frame tag is 0 for a key frame."""
    return len(data) >= 3 and (data[0] & 0x01) == 0


class RatePolicer:
    """Token bucket over a publisher's encoded bytes: ``bytes_per_second`` sustained, one
    second's worth in a burst (a keyframe fits). A frame is let through while the bucket is not
    in debt, and its size is then taken (it may go into debt by one frame)."""

    def __init__(self, bytes_per_second: float, clock: Callable[[], float] = time.monotonic):
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive")
        self.rate = bytes_per_second
        self.burst = bytes_per_second
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def allow(self, size: int) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 0:
            return False
        self._tokens -= size
        return True


class _TapQueue(queue.Queue[Any]):
    """Stands in for the receiver's decoder queue: frames go to the relay, never to a decoder."""

    def __init__(
        self,
        kind: str,
        on_frame: Callable[[EncodedFrame], None],
        policer: RatePolicer | None = None,
        on_gap: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.on_frame = on_frame
        self.policer = policer
        self.on_gap = on_gap
        self.frames = 0
        self.dropped = 0
        self.policed = 0
        self._gap = False  # video: a frame was policed, wait for the next keyframe

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:  # stop sentinel: let the (idle) decoder thread exit
            super().put(item, block, timeout)
            return
        codec, jitter_frame = item
        name = str(getattr(codec, "name", "")).lower()
        if name not in ("vp8", "opus"):
            self.dropped += 1
            return
        data = bytes(jitter_frame.data)
        keyframe = self.kind == "audio" or vp8_is_keyframe(data)
        if self.policer is not None and not self._police(data, keyframe):
            return
        self.frames += 1
        self.on_frame(EncodedFrame(data, int(jitter_frame.timestamp), keyframe))

    def _police(self, data: bytes, keyframe: bool) -> bool:
        """Past the announced rate, frames are dropped here, before any subscriber or recorder
        sees them; video then resumes at a keyframe only (an inter frame after a gap would
        decode as garbage), asked for at most once per gap."""
        assert self.policer is not None
        if self._gap and not keyframe:
            self.policed += 1
            return False
        if not self.policer.allow(len(data)):
            self.policed += 1
            if self.kind == "video" and not self._gap:
                self._gap = True
                if self.on_gap is not None:
                    self.on_gap()
            return False
        self._gap = False
        return True


@dataclass(slots=True)
class ReceiverTap:
    """Handle on an installed tap; ``frames`` counts encoded frames handed to the relay."""

    receiver: RTCRtpReceiver
    _queue: _TapQueue

    @property
    def frames(self) -> int:
        return self._queue.frames

    @property
    def policed(self) -> int:
        """Frames dropped for exceeding the announced rate."""
        return self._queue.policed

    @property
    def decoder_fed(self) -> bool:
        """True if anything other than the stop sentinel reached the decoder thread."""
        return not self._queue.empty() and any(x is not None for x in list(self._queue.queue))

    def set_callback(self, on_frame: Callable[[EncodedFrame], None]) -> None:
        self._queue.on_frame = on_frame


def install_receiver_tap(
    receiver: RTCRtpReceiver,
    kind: str,
    on_frame: Callable[[EncodedFrame], None],
    policer: RatePolicer | None = None,
    on_gap: Callable[[], None] | None = None,
) -> ReceiverTap:
    """Divert ``receiver``'s encoded frames to ``on_frame``; must run before ``receive()``.

    With a ``policer``, frames past its rate are dropped (``on_gap`` is called when video must
    wait for a keyframe, to ask the publisher for one).
    """
    if not isinstance(getattr(receiver, _DECODER_QUEUE_ATTR, None), queue.Queue):
        raise AiortcInternalsError("RTCRtpReceiver has no decoder queue to tap")
    if getattr(receiver, _RECEIVER_STARTED_ATTR, True):
        raise AiortcInternalsError("RTCRtpReceiver already started; tap installed too late")
    if not hasattr(receiver, _ESTIMATOR_ATTR):
        raise AiortcInternalsError("RTCRtpReceiver has no remote bitrate estimator to turn off")
    tap_queue = _TapQueue(kind, on_frame, policer, on_gap)
    setattr(receiver, _DECODER_QUEUE_ATTR, tap_queue)
    setattr(receiver, _ESTIMATOR_ATTR, None)  # no per-packet bandwidth estimation (REMB)
    return ReceiverTap(receiver, tap_queue)


async def send_pli(receiver: RTCRtpReceiver) -> int:
    """Send a Picture Loss Indication for every SSRC recently seen on ``receiver``."""
    sent = 0
    for source in receiver.getSynchronizationSources():
        await receiver._send_rtcp_pli(source.source)
        sent += 1
    return sent


def install_keyframe_hook(sender: RTCRtpSender, on_keyframe_request: Callable[[], None]) -> None:
    """Route PLI/FIR received for ``sender`` to ``on_keyframe_request``."""
    if not callable(getattr(sender, "_send_keyframe", None)):
        raise AiortcInternalsError("RTCRtpSender._send_keyframe is gone")
    sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]


class ForwardTrack(MediaStreamTrack):
    """An outgoing track fed with already-encoded frames; ``recv()`` returns ``av.Packet``.

    One per receive slot, for the lifetime of the connection: the relay switches its *source*
    instead of renegotiating. Timestamps are rebased on each switch so the subscriber sees one
    continuous stream; video waits for a keyframe after a switch or an overflow.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._queue: deque[tuple[bytes, int]] = deque()
        self._wakeup = asyncio.Event()
        self._limit = _QUEUE_LIMIT[kind]
        self._time_base = _TIME_BASE[kind]
        self._step = _SWITCH_STEP[kind]
        self._rebase: tuple[int, int] | None = None
        self._last_out = 0
        self._closed = False
        self.need_keyframe = kind == "video"
        self.frames_in = 0
        self.frames_out = 0

    def reset_source(self) -> None:
        """Forget the current source: drop queued frames, rebase, wait for a keyframe."""
        self._queue.clear()
        self._rebase = None
        self.need_keyframe = self.kind == "video"

    def push(self, frame: EncodedFrame) -> bool:
        """Queue ``frame``; returns False when a keyframe is needed before anything is sent."""
        if self._closed:
            return True
        if self.need_keyframe:
            if not frame.keyframe:
                return False
            self.need_keyframe = False
        if len(self._queue) >= self._limit:
            self._queue.clear()
            if self.kind == "video":
                self.need_keyframe = True
                self._rebase = None
                return False
        if self._rebase is None:
            self._rebase = (frame.timestamp, self._last_out + self._step)
        pts = self._rebase[1] + frame.timestamp - self._rebase[0]
        if pts < self._last_out:  # source went backwards: rebase rather than go back in time
            self._rebase = (frame.timestamp, self._last_out + self._step)
            pts = self._rebase[1]
        self._last_out = pts
        self._queue.append((frame.data, pts))
        self.frames_in += 1
        self._wakeup.set()
        return True

    async def recv(self) -> av.Packet[Any]:
        while not self._queue:
            if self._closed or self.readyState != "live":
                raise MediaStreamError
            self._wakeup.clear()
            await self._wakeup.wait()
        data, pts = self._queue.popleft()
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = self._time_base
        self.frames_out += 1
        return packet

    def stop(self) -> None:
        self._closed = True
        self._queue.clear()
        self._wakeup.set()
        super().stop()


def _ice_connections(pc: RTCPeerConnection) -> list[Any]:
    seen: dict[int, Any] = {}
    for transceiver in pc.getTransceivers():
        ice_transport = transceiver.receiver.transport.transport
        connection = getattr(ice_transport, "_connection", None)
        if connection is None:
            raise AiortcInternalsError("RTCIceTransport._connection is gone")
        seen[id(connection)] = connection
    return list(seen.values())


class ActivityProbe:
    """Monotonic time of the last datagram (media, DTLS or STUN) received from the peer."""

    def __init__(self) -> None:
        self.last_rx = time.monotonic()

    def touch(self) -> None:
        self.last_rx = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_rx


def install_activity_probe(pc: RTCPeerConnection) -> ActivityProbe:
    """Time every datagram and every STUN request (consent check) the peer sends us."""
    probe = ActivityProbe()
    for connection in _ice_connections(pc):
        for name in ("data_received", "request_received"):
            original = getattr(connection, name, None)
            if not callable(original):
                raise AiortcInternalsError(f"aioice Connection.{name} is gone")
            setattr(connection, name, _touching(original, probe))
    return probe


def _touching(original: Callable[..., None], probe: ActivityProbe) -> Callable[..., None]:
    def wrapper(*args: Any, **kwargs: Any) -> None:
        probe.touch()
        original(*args, **kwargs)

    return wrapper


def install_loopback_candidates(pc: RTCPeerConnection, mode: bool | None) -> None:
    """Add a 127.0.0.1 host candidate: always (True), never (False), or if none gathered (None).

    aioice never gathers loopback, so on a host whose only address is loopback it would offer
    no candidate at all. Must run between setRemoteDescription and setLocalDescription.
    """
    if mode is False:
        return
    for connection in _ice_connections(pc):
        original = getattr(connection, "gather_candidates", None)
        if not callable(original):
            raise AiortcInternalsError("aioice Connection.gather_candidates is gone")
        connection.gather_candidates = _with_loopback(connection, original, mode)


def _with_loopback(
    connection: Any, original: Callable[[], Coroutine[Any, Any, None]], mode: bool | None
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def gather() -> None:
        await original()
        local = list(connection.local_candidates)
        if any(c.host == "127.0.0.1" for c in local):
            return
        if mode is None and any(c.type == "host" for c in local):
            return
        # Host candidate only: do not query STUN/TURN again for it.
        stun, turn = connection.stun_server, connection.turn_server
        connection.stun_server = connection.turn_server = None
        try:
            for component in sorted(connection._components):
                connection._local_candidates += await connection.get_component_candidates(
                    component=component, addresses=["127.0.0.1"]
                )
        finally:
            connection.stun_server, connection.turn_server = stun, turn

    return gather


def install_socket_buffers(
    pc: RTCPeerConnection,
    size: int,
    on_capped: Callable[[str, int, int], None] | None = None,
) -> None:
    """Ask for ``size``-byte SO_RCVBUF and SO_SNDBUF on every UDP socket ``pc`` gathers.

    A burst of packets (a keyframe, several publishers at once) that arrives while the event
    loop is busy waits in the kernel's receive buffer; the default (``net.core.rmem_default``,
    often 208 KiB) overflows at a few dozen streams and the kernel drops datagrams. The kernel
    caps the request at ``net.core.rmem_max`` / ``wmem_max``: ``on_capped(option, asked, got)``
    is called when it did (Linux reports twice the size it set). Must run between
    setRemoteDescription and setLocalDescription (after install_loopback_candidates).
    """
    if size <= 0:
        return
    for connection in _ice_connections(pc):
        original = getattr(connection, "gather_candidates", None)
        if not callable(original):
            raise AiortcInternalsError("aioice Connection.gather_candidates is gone")
        connection.gather_candidates = _with_buffers(connection, original, size, on_capped)


# Linux stores (and getsockopt reports) twice the requested size, for its bookkeeping overhead.
_DOUBLES = sys.platform.startswith("linux")


def _reported(size: int) -> int:
    return 2 * size if _DOUBLES else size


def _with_buffers(
    connection: Any,
    original: Callable[[], Coroutine[Any, Any, None]],
    size: int,
    on_capped: Callable[[str, int, int], None] | None,
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def gather() -> None:
        await original()
        for protocol in getattr(connection, "_protocols", []):
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is None:
                continue
            for option, name in ((socket.SO_RCVBUF, "SO_RCVBUF"), (socket.SO_SNDBUF, "SO_SNDBUF")):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, size)
                    got = sock.getsockopt(socket.SOL_SOCKET, option)
                except OSError:
                    got = 0
                if got < _reported(size) and on_capped is not None:
                    on_capped(name, size, got // 2 if _DOUBLES else got)

    return gather


def abort_ice_transports(pc: RTCPeerConnection) -> None:
    """Close ``pc``'s UDP sockets without any goodbye (DTLS close_notify, RTCP BYE).

    For tests and benchmarks: simulates a browser that vanishes (network loss, killed tab).
    """
    for connection in _ice_connections(pc):
        for protocol in list(getattr(connection, "_protocols", [])):
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.close()


def receiver_taps(taps: Iterable[ReceiverTap]) -> int:
    """Total frames diverted by ``taps`` (diagnostics)."""
    return sum(t.frames for t in taps)
