"""Where each frame lands on a recording's timeline, and the picture size of a VP8 key frame."""

from __future__ import annotations

import pytest

from gateway.media.recorder import TrackTimeline, vp8_picture_size

WRAP = 1 << 32

# (source, rtp timestamp, arrival seconds) -> expected pts, one track's frames in order.
VIDEO_CASES = {
    "placed by arrival, then RTP spacing": (
        [(1, 1000, 0.5), (1, 4000, 0.6), (1, 7000, 0.9)],
        [45_000, 48_000, 51_000],
    ),
    "32-bit wrap-around": (
        [(1, WRAP - 1000, 0.0), (1, 2000, 0.1), (1, 5000, 0.2)],
        [0, 3000, 6000],
    ),
    "a new publication starts at its arrival": (
        [(1, 500, 0.0), (1, 3500, 0.03), (2, 123_456, 5.0), (2, 126_456, 5.03)],
        [0, 3000, 450_000, 453_000],
    ),
    "a new publication arriving early still moves forward": (
        [(1, 0, 1.0), (1, 3000, 1.0), (2, 77, 0.5)],
        [90_000, 93_000, 93_090],
    ),
    "backwards within a publication: placed anew": (
        [(1, 9000, 0.0), (1, 12_000, 0.04), (1, 3000, 0.07)],
        [0, 3000, 6300],
    ),
    "a leap far ahead of arrival: placed anew": (
        [(1, 0, 0.0), (1, 3000, 0.03), (1, 3000 + 20 * 90_000, 0.07), (1, 6000 + 1_800_000, 0.1)],
        [0, 3000, 6300, 9300],
    ),
    "the same timestamp twice: at least 1 ms on": (
        [(1, 100, 0.0), (1, 100, 0.0)],
        [0, 90],
    ),
}


@pytest.mark.parametrize("frames,expected", VIDEO_CASES.values(), ids=VIDEO_CASES.keys())
def test_video_timeline(frames: list[tuple[int, int, float]], expected: list[int]) -> None:
    timeline = TrackTimeline("video")
    assert [timeline.pts(*frame) for frame in frames] == expected


def test_audio_timeline_counts_48khz() -> None:
    timeline = TrackTimeline("audio")
    frames = [(7, WRAP - 960, 0.02), (7, 0, 0.04), (7, 960, 0.06)]
    assert [timeline.pts(*f) for f in frames] == [960, 1920, 2880]


def _vp8_key_frame(width: int, height: int, scale: int = 0) -> bytes:
    tag = bytes([0x10, 0x02, 0x00])  # key frame (bit 0 clear), show_frame, first partition size
    size = (width | scale << 14).to_bytes(2, "little") + height.to_bytes(2, "little")
    return tag + b"\x9d\x01\x2a" + size + b"\x00" * 20


SIZE_CASES = {
    "640x480": (_vp8_key_frame(640, 480), (640, 480)),
    "scaling bits ignored": (_vp8_key_frame(320, 240, scale=2), (320, 240)),
    "inter frame": (b"\x11" + _vp8_key_frame(640, 480)[1:], None),
    "bad start code": (_vp8_key_frame(640, 480)[:3] + b"\x00\x00\x00" + b"\x00" * 24, None),
    "too short": (b"\x10\x02\x00\x9d\x01\x2a", None),
    "zero size": (_vp8_key_frame(0, 480), None),
}


@pytest.mark.parametrize("data,expected", SIZE_CASES.values(), ids=SIZE_CASES.keys())
def test_vp8_picture_size(data: bytes, expected: tuple[int, int] | None) -> None:
    assert vp8_picture_size(data) == expected
