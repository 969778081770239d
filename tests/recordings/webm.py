"""A real WebM (VP8 video + Opus audio) made in memory with PyAV: what a recording's plaintext
looks like, for tests that play one back."""

from __future__ import annotations

import io
import math
import struct
from fractions import Fraction

import av


def _picture(i: int, width: int, height: int) -> av.VideoFrame:
    """A bar sweeping across a dark picture (planar YUV 4:2:0)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    x = (i * 7) % width
    row = bytes(200 if x <= col < x + 24 else 40 for col in range(width))
    frame.planes[0].update(row * height)
    for plane in frame.planes[1:]:
        plane.update(bytes([128]) * (plane.line_size * plane.height))
    return frame


def make_webm(seconds: float = 3.0, *, width: int = 320, height: int = 240, fps: int = 15) -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format="webm") as container:
        video = container.add_stream("libvpx", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = 300_000
        audio = container.add_stream("libopus", rate=48_000)
        for i in range(int(seconds * fps)):
            frame = _picture(i, width, height)
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        samples = 960
        for n in range(int(seconds * 48_000 / samples)):
            tone = b"".join(
                struct.pack(
                    "<h", int(6000 * math.sin(2 * math.pi * 440 * (n * samples + k) / 48_000))
                )
                for k in range(samples)
            )
            chunk = av.AudioFrame(format="s16", layout="mono", samples=samples)
            chunk.planes[0].update(tone)
            chunk.sample_rate = 48_000
            chunk.pts = n * samples
            chunk.time_base = Fraction(1, 48_000)
            for packet in audio.encode(chunk):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return out.getvalue()


class _Unseekable:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> int:
        self.data += bytes(chunk)
        return len(chunk)


def live_webm(seconds: float = 3.0) -> bytes:
    """The same media as the recorder writes it: a "live" WebM, muxed into a stream that
    cannot seek back, so it has no duration and no seek index (Cues)."""
    out = _Unseekable()
    with (
        av.open(io.BytesIO(make_webm(seconds))) as source,
        av.open(out, mode="w", format="webm") as target,
    ):
        mapped = {s.index: target.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = mapped[packet.stream.index]
                target.mux(packet)
    return bytes(out.data)


CUES = b"\x1c\x53\xbb\x6b"  # the Matroska element id of the seek index


def packets(webm: bytes) -> list[tuple[str, bytes]]:
    """Every packet's kind and bytes, in order: what a remux must keep."""
    with av.open(io.BytesIO(webm)) as source:
        return [(p.stream.type, bytes(p)) for p in source.demux() if p.dts is not None]


def duration(webm: bytes) -> float | None:
    with av.open(io.BytesIO(webm)) as source:
        return None if source.duration is None else source.duration / 1_000_000
