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
