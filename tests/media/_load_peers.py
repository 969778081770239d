"""Cheap aiortc peers for load and bad-input tests: they send pre-made encoded frames (no
encoder) and count what they receive per slot without decoding (a receiver tap)."""

from __future__ import annotations

import asyncio
import fractions
import os
from collections import Counter
from typing import Any

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from gateway.media import passthrough

FPS = 30


def vp8_like_frame(size: int, keyframe: bool) -> bytes:
    """Bytes the relay treats as one VP8 frame of ``size`` bytes (it never decodes them)."""
    tag = 0x10 if keyframe else 0x11  # bit 0 of the frame tag: 0 for a key frame
    return bytes([tag]) + os.urandom(max(2, size - 1))


class FrameTrack(MediaStreamTrack):
    """Sends ``frame_bytes``-byte frames at ``fps`` (a keyframe every second for video)."""

    def __init__(self, kind: str, frame_bytes: int, fps: int = FPS) -> None:
        super().__init__()
        self.kind = kind
        self.interval = 1 / fps
        clock = 90_000 if kind == "video" else 48_000
        self.step = clock // fps
        self.time_base = fractions.Fraction(1, clock)
        self.fps = fps
        self.frames = [vp8_like_frame(frame_bytes, i == 0) for i in range(fps)]
        if kind == "audio":
            self.frames = [os.urandom(frame_bytes) for _ in range(fps)]
        self.sent = 0
        self.sent_bytes = 0
        self.start: float | None = None

    async def recv(self) -> av.Packet:
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        delay = self.start + self.sent * self.interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        data = self.frames[self.sent % len(self.frames)]
        packet = av.Packet(data)
        packet.pts = self.sent * self.step
        packet.time_base = self.time_base
        self.sent += 1
        self.sent_bytes += len(data)
        return packet


class PacketPeer:
    """A browser stand-in following the relay's slot protocol, cheap enough to run many."""

    def __init__(
        self,
        name: str,
        *,
        video_bytes: int | None = 600,
        audio_bytes: int | None = None,
        slots: int = 2,
    ) -> None:
        self.name = name
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.tracks: dict[str, FrameTrack] = {}
        if audio_bytes is not None:
            self.tracks["audio"] = FrameTrack("audio", audio_bytes, fps=50)
        if video_bytes is not None:
            self.tracks["video"] = FrameTrack("video", video_bytes)
        for track in self.tracks.values():
            self.pc.addTransceiver(track, direction="sendonly")
        self.frames: Counter[tuple[int, str]] = Counter()
        self.bytes: Counter[tuple[int, str]] = Counter()
        self.slots: list[dict[str, RTCRtpTransceiver]] = []
        for index in range(slots):
            slot = {}
            for kind in ("audio", "video"):
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                passthrough.install_receiver_tap(
                    transceiver.receiver, kind, self._counter(index, kind)
                )
                slot[kind] = transceiver
            self.slots.append(slot)

    def _counter(self, index: int, kind: str) -> Any:
        def count(frame: passthrough.EncodedFrame) -> None:
            self.frames[(index, kind)] += 1
            self.bytes[(index, kind)] += len(frame.data)

        return count

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        local = self.pc.localDescription
        assert local is not None
        return str(local.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    def sent(self, kind: str = "video") -> int:
        track = self.tracks.get(kind)
        return track.sent if track is not None else 0

    def received(self, kind: str = "video") -> int:
        return sum(n for (_, k), n in self.frames.items() if k == kind)

    def dtls(self) -> Any:
        """The (bundled) DTLS transport: for tests that send raw or protected datagrams."""
        return self.pc.getTransceivers()[0].sender.transport

    async def close(self) -> None:
        await self.pc.close()
