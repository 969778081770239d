"""A recording made seekable for playback, in memory: the same packets in a new WebM with its
duration and a seek index (Cues) at the front.

The recorder writes a "live" WebM (gateway/media/recorder.py): append-only, as the encrypted
file needs, so it has no duration and no Cues, and a browser can neither show its length nor
jump within it. At playback, once every chunk has been authenticated, the plaintext is remuxed
here (no decoding, no encoding: packets are copied) into a seekable output held in memory;
plaintext never touches the disk. Up to `SEEKABLE_UP_TO` bytes: a longer recording plays as
written, and anything PyAV cannot read as WebM is played as it is too.

What it gives today: the player knows the recording's length. What it does not: jumping
within it. A browser seeks by asking for byte ranges, and the playback link serves one request
(single use, R13); the page says so. The Cues are there for a player that gets the whole file
at once (a MediaSource page, or a range-serving link bound to the viewer), a later step.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import av

__all__ = ["SEEKABLE_UP_TO", "seekable_webm"]

log = logging.getLogger(__name__)

# Plaintext held in memory for one playback (twice: the recording and its remux).
SEEKABLE_UP_TO = 96 * 1024 * 1024
# Room reserved at the front for the Cues: per video key frame (one cue point each), plus some.
_CUE_BYTES = 32
_CUE_SLACK = 4096


def seekable_webm(plaintext: bytes) -> bytes | None:
    """The recording remuxed with duration and Cues, or None (played as it is)."""
    if len(plaintext) > SEEKABLE_UP_TO:
        return None
    try:
        keyframes = _count_keyframes(plaintext)
        out = io.BytesIO()
        source: Any
        with av.open(io.BytesIO(plaintext), mode="r") as source:
            streams = [s for s in source.streams if s.type in ("video", "audio")]
            if not streams:
                return None
            with av.open(
                out,
                mode="w",
                format="webm",
                options={"reserve_index_space": str(_CUE_SLACK + _CUE_BYTES * keyframes)},
            ) as target:
                mapped = {s.index: target.add_stream_from_template(s) for s in streams}
                for packet in source.demux(*streams):
                    if packet.dts is None:  # a demuxer's flush packet
                        continue
                    packet.stream = mapped[packet.stream.index]
                    target.mux(packet)
        return out.getvalue()
    except (av.FFmpegError, ValueError, KeyError) as exc:
        log.warning("recording played as written (not remuxed): %s", type(exc).__name__)
        return None


def _count_keyframes(plaintext: bytes) -> int:
    source: Any
    with av.open(io.BytesIO(plaintext), mode="r") as source:
        if not source.streams.video:
            return 0
        return sum(1 for p in source.demux(video=0) if p.dts is not None and p.is_keyframe)
