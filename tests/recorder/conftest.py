"""A relay with real aiortc publishers, a recorder on it, and a real encrypted vault."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import AudioStreamTrack, VideoStreamTrack

from gateway.adapters.recording_vault import (
    LocalRecordingStorage,
    RecordingStorage,
    RecordingVault,
    RecordingWriter,
)
from gateway.domain.recording_crypto import new_data_key
from gateway.media.grants import MediaGrants
from gateway.media.recorder import RelayRecorder
from gateway.media.relay import EmbeddedRelay
from tests.media._peers import Client, join

ROOM = "room-1"
FULL = MediaGrants(can_publish=True, can_subscribe=True)
VIEWER = MediaGrants(can_publish=False, can_subscribe=True)
WEBM_MAGIC = bytes.fromhex("1a45dfa3")


class SolidVideoTrack(VideoStreamTrack):
    """A solid colour (Y, U, V) at a given size, 30 fps; counts the frames it sends. With
    `noise`, the top half of the picture is random (VP8 then sends its full bitrate)."""

    def __init__(
        self, width: int, height: int, yuv: tuple[int, int, int], noise: bool = False
    ) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.noise = noise
        self.yuv = yuv
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for index, (plane, value) in enumerate(zip(frame.planes, self.yuv, strict=True)):
            data = bytes([value]) * plane.buffer_size  # lines may be padded
            if self.noise and index == 0:
                half = plane.buffer_size // 2
                data = os.urandom(half) + data[half:]
            plane.update(data)
        frame.pts, frame.time_base = pts, time_base
        self.sent += 1
        return frame


def publisher(
    name: str,
    width: int = 320,
    height: int = 240,
    yuv: tuple[int, int, int] = (81, 90, 240),
    noise: bool = False,
) -> tuple[Client, SolidVideoTrack]:
    """A client publishing Opus audio and a solid-colour VP8 video, subscribing to nothing."""
    client = Client(name, publish=False, slots=0)
    video = SolidVideoTrack(width, height, yuv, noise)
    client.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    client.pc.addTransceiver(video, direction="sendonly")
    return client, video


@dataclass
class Vault:
    storage: RecordingStorage
    vault: RecordingVault
    keys: dict[str, bytes] = field(default_factory=dict)

    def writer(self) -> RecordingWriter:
        recording_id = os.urandom(16).hex()
        self.keys[recording_id] = new_data_key()
        return self.vault.open_writer(recording_id, self.keys[recording_id])

    def plaintext(self, recording_id: str) -> bytes:
        return b"".join(self.vault.chunks(recording_id, self.keys[recording_id]))


@dataclass
class Decoded:
    video: list[tuple[int, int, int, int, int]]  # width, height, Y, U, V three quarters down
    audio_samples: int
    streams: list[str]
    first_video_keyframe: bool | None
    video_packets: list[tuple[float, bool]]  # (seconds, key frame) in file order


def decode(webm: bytes) -> Decoded:
    assert webm[:4] == WEBM_MAGIC
    container: Any = av.open(io.BytesIO(webm), format="webm")
    streams = [s.type for s in container.streams]
    video: list[tuple[int, int, int, int, int]] = []
    samples = 0
    first_key: bool | None = None
    packets: list[tuple[float, bool]] = []
    for packet in container.demux():
        if packet.size == 0:
            continue
        if packet.stream.type == "video":
            if first_key is None:
                first_key = packet.is_keyframe
            packets.append((float(packet.pts * packet.time_base), bool(packet.is_keyframe)))
        for frame in packet.decode():
            if isinstance(frame, av.VideoFrame):
                w, h = frame.width, frame.height
                y, u, v = (bytes(p) for p in frame.planes)
                ys, us = frame.planes[0].line_size, frame.planes[1].line_size
                at_y, at_uv = 3 * h // 4 * ys + w // 2, 3 * h // 8 * us + w // 4
                video.append((w, h, y[at_y], u[at_uv], v[at_uv]))
            else:
                samples += frame.samples
    container.close()
    return Decoded(video, samples, streams, first_key, packets)


def no_plaintext_media(directory: Path) -> list[Path]:
    """Files under `directory` that contain the WebM magic (plaintext media on disk)."""
    return [p for p in directory.rglob("*") if p.is_file() and WEBM_MAGIC in p.read_bytes()]


class Stage:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.relay = EmbeddedRelay(keyframe_interval=0.1)
        self.recorder = RelayRecorder(self.relay)
        self.clients: list[Client] = []
        # on_failure of recordings that must not fail (checked when the test ends)
        self.unexpected: list[BaseException] = []

    def vault(self, storage: RecordingStorage | None = None) -> Vault:
        storage = storage or LocalRecordingStorage(self.tmp_path / "recordings")
        return Vault(storage, RecordingVault(storage))

    def publisher(self, name: str, **kwargs: Any) -> tuple[Client, SolidVideoTrack]:
        client, video = publisher(name, **kwargs)
        self.clients.append(client)
        return client, video

    def viewer(self, name: str) -> Client:
        client = Client(name, publish=False, slots=2)
        self.clients.append(client)
        return client

    async def join(self, client: Client, grants: MediaGrants = FULL) -> None:
        await join(self.relay, ROOM, client, grants)

    async def close(self) -> None:
        await self.recorder.close()
        for client in self.clients:
            await client.close()
        await self.relay.close()


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    s = Stage(tmp_path)
    await s.relay.open_room(ROOM)
    try:
        yield s
    finally:
        await s.close()
    assert s.unexpected == [], "a recording failed"


Failures = Callable[[BaseException], None]
