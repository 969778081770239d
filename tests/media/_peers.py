"""Real aiortc client peers for the relay tests (loopback, no STUN)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import av
from aiortc import (
    AudioStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError

from gateway.media import passthrough

WIDTH, HEIGHT = 640, 480


def _pattern_planes(count: int = 30) -> list[tuple[bytes, bytes, bytes]]:
    """A vertical bar moving across a grey background, plus a coloured stripe."""
    planes = []
    for i in range(count):
        x = (i * WIDTH // count) % WIDTH
        row = bytearray(b"\x40" * WIDTH)
        row[x : x + 48] = b"\xe0" * len(row[x : x + 48])
        y = bytes(row) * HEIGHT
        u = bytes([(128 + 4 * i) % 256]) * (WIDTH // 2 * HEIGHT // 2)
        v = bytes([(200 - 3 * i) % 256]) * (WIDTH // 2 * HEIGHT // 2)
        planes.append((y, u, v))
    return planes


class PatternVideoTrack(VideoStreamTrack):
    """640x480 moving pattern at 30 fps."""

    def __init__(self) -> None:
        super().__init__()
        self._planes = _pattern_planes()
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane, data in zip(frame.planes, self._planes[self._index], strict=True):
            plane.update(data)
        self._index = (self._index + 1) % len(self._planes)
        frame.pts = pts
        frame.time_base = time_base
        return frame


class Client:
    """A browser stand-in following the relay's slot protocol."""

    def __init__(
        self,
        name: str,
        *,
        publish: bool = True,
        audio: bool = True,
        slots: int = 2,
        loopback: bool | None = None,
    ) -> None:
        self.name = name
        # aiortc 1.16 needs max-bundle when several transceivers of one kind are pre-created.
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.loopback = loopback
        self.publish_transceivers: list[RTCRtpTransceiver] = []
        if publish:
            if audio:
                self.publish_transceivers.append(
                    self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
                )
            self.publish_transceivers.append(
                self.pc.addTransceiver(PatternVideoTrack(), direction="sendonly")
            )
        self.slots: list[dict[str, RTCRtpTransceiver]] = []
        for _ in range(slots):
            self.slots.append(
                {
                    "audio": self.pc.addTransceiver("audio", direction="recvonly"),
                    "video": self.pc.addTransceiver("video", direction="recvonly"),
                }
            )
        self.frames: Counter[tuple[int, str]] = Counter()
        self.sizes: set[tuple[int, int]] = set()
        self.first_video_at: float | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def offer(self) -> str:
        offer = await self.pc.createOffer()
        if self.loopback is not None:
            passthrough.install_loopback_candidates(self.pc, self.loopback)
        await self.pc.setLocalDescription(offer)
        local = self.pc.localDescription
        assert local is not None
        return str(local.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        for index, slot in enumerate(self.slots):
            for kind, transceiver in slot.items():
                self._readers.append(asyncio.create_task(self._read(index, kind, transceiver)))

    async def _read(self, index: int, kind: str, transceiver: RTCRtpTransceiver) -> None:
        track = transceiver.receiver.track
        try:
            while True:
                frame: Any = await track.recv()
                self.frames[(index, kind)] += 1
                if kind == "video":
                    self.sizes.add((frame.width, frame.height))
                    if self.first_video_at is None:
                        self.first_video_at = time.monotonic()
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def total(self, kind: str) -> int:
        return sum(n for (_, k), n in self.frames.items() if k == kind)

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await self.pc.close()


async def join(relay: Any, room: str, client: Client, grants: Any) -> None:
    answer = await relay.connect(room, client.name, grants, await client.offer())
    await client.accept(answer)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
