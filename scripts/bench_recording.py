"""Benchmark: recording in the embedded relay (gateway/media/recorder.py), in one run.

0. A real aiortc peer publishes pre-encoded 640x480 VP8 (~500 kbit/s) and Opus into an
   `EmbeddedRelay` for BENCH_RECORDING_CAPTURE seconds; the frames the relay hands out (through
   the same tap a recorder uses) are kept in memory, with their arrival times.
1. CPU per recorded stream, both fed the same captured frames as fast as they take them,
   measured with time.process_time() (every thread of this process):
   (a) `RelayRecorder`: encoded frames muxed into WebM, encrypted by a `RecordingWriter` into a
       local vault directory (no decoding, no encoding);
   (b) aiortc's `MediaRecorder` writing WebM, fed by a track that decodes the same frames with
       aiortc's own VP8/Opus decoders, as an aiortc receiver would before handing them over.
   Reported in CPU seconds per second of media (= share of one core per live stream); the
   ratio (a)/(b) is the figure to keep at most 0.2.
2. Encryption throughput: the recorded WebM, appended to a `RecordingWriter` in the pieces the
   muxer writes, BENCH_RECORDING_MIB MiB in all, against a plain copy of a file of the same size
   (shutil.copyfile), both synced to disk.
3. The largest number of streams one process records at once with no frame lost: N recordings
   fed in real time (one feeder task, 10 ms ticks, the captured frames replayed in a loop with
   staggered starts, through the relay's tap path) for BENCH_RECORDING_STEP seconds each;
   N doubles until a frame is lost, a recording fails, or the feeder falls more than 200 ms
   behind at the 99th percentile of its ticks (in a live relay that lateness is packets
   dropped by the socket), or this step's budget of BENCH_RECORDING_BUDGET seconds is spent.

    scripts/bench recording [--no-docs]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import av  # noqa: E402
import bench_join  # noqa: E402  (docs helper)
import bench_relay  # noqa: E402  (pre-encoded 640x480 media and a publishing peer)
from aiortc import RTCSessionDescription  # noqa: E402
from aiortc.codecs.opus import OpusDecoder  # noqa: E402
from aiortc.codecs.vpx import Vp8Decoder  # noqa: E402
from aiortc.contrib.media import MediaRecorder  # noqa: E402
from aiortc.jitterbuffer import JitterFrame  # noqa: E402
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack  # noqa: E402

from gateway.adapters.recording_vault import (  # noqa: E402
    LocalRecordingStorage,
    RecordingWriter,
)
from gateway.domain.recording_crypto import new_data_key  # noqa: E402
from gateway.media.grants import MediaGrants  # noqa: E402
from gateway.media.passthrough import EncodedFrame  # noqa: E402
from gateway.media.recorder import RelayRecorder  # noqa: E402
from gateway.media.relay import EmbeddedRelay, MediaTap  # noqa: E402

CAPTURE = float(os.environ.get("BENCH_RECORDING_CAPTURE", "8"))
REPEAT = int(os.environ.get("BENCH_RECORDING_REPEAT", "5"))
MIB = int(os.environ.get("BENCH_RECORDING_MIB", "128"))
STEP = float(os.environ.get("BENCH_RECORDING_STEP", "6"))
BUDGET = float(os.environ.get("BENCH_RECORDING_BUDGET", "150"))
START_STREAMS = int(os.environ.get("BENCH_RECORDING_START", "8"))
MAX_LAG = 0.2
ROOM = "bench"
TIMESTAMP_SPAN = {"video": 90_000, "audio": 48_000}


@dataclass(frozen=True, slots=True)
class Captured:
    at: float  # seconds after the first captured frame
    kind: str
    frame: EncodedFrame


# ------------------------------------------------------------------------------------ 0. capture


async def capture(seconds: float) -> list[Captured]:
    relay = EmbeddedRelay(loopback_candidates=True)
    await relay.open_room(ROOM)
    client = bench_relay.BenchClient(
        bench_relay._encode_video(),
        bench_relay._encode_audio(),
        publish=True,
        slots=0,
        slot_audio=False,
    )
    frames: list[Captured] = []
    started: list[float] = []

    def tap(kind: str, source: int, frame: EncodedFrame) -> None:
        now = time.monotonic()
        if not started:
            if kind != "video" or not frame.keyframe:
                return  # a recording starts at a key frame
            started.append(now)
        frames.append(Captured(now - started[0], kind, frame))

    try:
        await client.pc.setLocalDescription(await client.pc.createOffer())
        answer = await relay.connect(
            ROOM, "publisher", MediaGrants(True, False), client.pc.localDescription.sdp
        )
        await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        relay.add_tap(ROOM, "publisher", tap)
        deadline = time.monotonic() + 20
        while not started or time.monotonic() - started[0] < seconds:
            if time.monotonic() > deadline:
                raise RuntimeError("the publisher's media never reached the relay")
            await asyncio.sleep(0.1)
        relay.remove_tap(ROOM, "publisher", tap)
    finally:
        await client.close()
        await relay.close()
    return frames


def span(frames: Sequence[Captured]) -> float:
    return frames[-1].at + 1 / 30


def replayed(frames: Sequence[Captured], rounds: int) -> list[Captured]:
    """`frames` played `rounds` times in a row, RTP timestamps running on."""
    length = span(frames)
    first = {k: next(c.frame.timestamp for c in frames if c.kind == k) for k in ("audio", "video")}
    last = {k: max(c.frame.timestamp for c in frames if c.kind == k) for k in ("audio", "video")}
    step = {k: last[k] - first[k] + (3000 if k == "video" else 960) for k in first}
    out = []
    for r in range(rounds):
        for c in frames:
            ts = (c.frame.timestamp + r * step[c.kind]) & 0xFFFFFFFF
            out.append(
                Captured(
                    c.at + r * length, c.kind, EncodedFrame(c.frame.data, ts, c.frame.keyframe)
                )
            )
    return out


# ----------------------------------------------------------------------------- 1. CPU per stream


class _Tapped:
    """A recorder on a relay with no peers: the benchmark plays the publisher's part and calls
    the recorder's tap directly (what `_Publication.on_frame` does for each frame)."""

    def __init__(self, directory: Path, **recorder_kwargs: Any) -> None:
        self.relay = EmbeddedRelay()
        self.recorder = RelayRecorder(self.relay, **recorder_kwargs)
        self.storage = LocalRecordingStorage(directory)
        self.writers: dict[str, RecordingWriter] = {}
        self.taps: dict[str, MediaTap] = {}
        self.failures: list[BaseException] = []

    async def start(self, identity: str) -> None:
        writer = RecordingWriter(self.storage, os.urandom(16).hex(), new_data_key())
        self.writers[identity] = writer
        await self.recorder.start(
            ROOM, identity, writer, audio_only=False, on_failure=self.failures.append
        )
        self.taps[identity] = self.relay._taps[(ROOM, identity)][-1]

    def drained(self) -> bool:
        for identity in self.writers:
            stats = self.recorder.stats(ROOM, identity)
            if stats is not None and stats.frames_written < stats.frames_queued:
                return False
        return True

    async def stop(self) -> int:
        for identity in list(self.writers):
            await self.recorder.stop(ROOM, identity)
        size = 0
        for writer in self.writers.values():
            size += (await asyncio.to_thread(writer.seal))[0]
        await self.relay.close()
        return size


async def drained(tapped: _Tapped) -> None:
    """Until the writer threads have taken every queued frame (they have no loop to signal)."""
    while not tapped.drained():  # noqa: ASYNC110
        await asyncio.sleep(0.002)


async def cpu_ours(frames: Sequence[Captured], directory: Path) -> tuple[float, float, int]:
    """CPU seconds, media seconds, bytes on disk."""
    media = replayed(frames, REPEAT)
    tapped = _Tapped(directory)
    cpu = time.process_time()
    await tapped.start("p0")
    tap = tapped.taps["p0"]
    second = 0.0
    for c in media:
        tap(c.kind, 1, c.frame)
        if c.at >= second + 1.0:  # hand over a second of media at a time: stay in the queue
            second = c.at
            await drained(tapped)
    await drained(tapped)
    stats = tapped.recorder.stats(ROOM, "p0")
    assert stats is not None and stats.frames_lost == 0
    assert stats.frames_written + stats.frames_skipped == len(media), "frames went missing"
    size = await tapped.stop()
    cpu = time.process_time() - cpu
    if tapped.failures:
        raise RuntimeError(f"recording failed: {tapped.failures[0]!r}")
    return cpu, span(media), size


class _DecodingTrack(MediaStreamTrack):
    """Hands MediaRecorder the captured frames decoded by aiortc's decoders, then ends."""

    def __init__(self, kind: str, frames: Sequence[Captured]) -> None:
        super().__init__()
        self.kind = kind
        self._frames = [c.frame for c in frames if c.kind == kind]
        self._decoder: Any = Vp8Decoder() if kind == "video" else OpusDecoder()
        self._pending: list[Any] = []

    async def recv(self) -> Any:
        while not self._pending:
            if not self._frames:
                self.stop()
                raise MediaStreamError
            frame = self._frames.pop(0)
            self._pending = self._decoder.decode(JitterFrame(frame.data, frame.timestamp))
        return self._pending.pop(0)


async def cpu_media_recorder(frames: Sequence[Captured], directory: Path) -> tuple[float, float]:
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    cpu = time.process_time()
    recorder = MediaRecorder(str(directory / "media_recorder.webm"), format="webm")
    tracks = [_DecodingTrack("video", frames), _DecodingTrack("audio", frames)]
    for track in tracks:
        recorder.addTrack(track)
    await recorder.start()
    while any(t.readyState == "live" for t in tracks):  # noqa: ASYNC110 (aiortc has no event)
        await asyncio.sleep(0.01)
    await recorder.stop()
    return time.process_time() - cpu, span(frames)


# --------------------------------------------------------------------- 2. encryption throughput


def throughput(webm_pieces: Sequence[bytes], directory: Path) -> tuple[float, float]:
    """Seconds to encrypt-and-write MIB MiB of recorded WebM, and to copy it plainly."""
    storage = LocalRecordingStorage(directory / "vault")
    total = MIB * 1024 * 1024
    started = time.perf_counter()
    writer = RecordingWriter(storage, os.urandom(16).hex(), new_data_key())
    written = 0
    while written < total:
        for piece in webm_pieces:
            writer.append(piece)
            written += len(piece)
    writer.seal()
    encrypted = time.perf_counter() - started

    plain = directory / "plain.webm"
    with plain.open("wb") as out:
        left = written
        while left > 0:
            for piece in webm_pieces:
                out.write(piece[:left])
                left -= len(piece)
                if left <= 0:
                    break
        out.flush()
        os.fsync(out.fileno())
    started = time.perf_counter()
    shutil.copyfile(plain, directory / "copy.webm")
    with (directory / "copy.webm").open("rb+") as synced:
        os.fsync(synced.fileno())
    copied = time.perf_counter() - started
    return encrypted, copied


class _Pieces:
    """What the muxer writes, piece by piece (a writer that keeps them)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def append(self, data: bytes) -> None:
        self.pieces.append(bytes(data))

    def seal(self) -> tuple[int, int]:
        return sum(map(len, self.pieces)), 0

    def abort(self) -> None:
        pass


async def webm_pieces(frames: Sequence[Captured]) -> list[bytes]:
    relay = EmbeddedRelay()
    recorder = RelayRecorder(relay)
    pieces = _Pieces()
    await recorder.start(ROOM, "p", pieces, audio_only=False, on_failure=print)
    tap = relay._taps[(ROOM, "p")][-1]
    for c in frames:
        tap(c.kind, 1, c.frame)
    await recorder.stop(ROOM, "p")
    await relay.close()
    data = b"".join(pieces.pieces)
    assert av.open(io.BytesIO(data)).streams.video, "the WebM has no video"
    return pieces.pieces


# ------------------------------------------------------------------------- 3. streams at once


@dataclass
class Step:
    streams: int
    lost: int
    failed: int
    lag_p99: float  # how late the feeder delivered frames (99th percentile of 10 ms ticks)
    lag_max: float
    cpu_share: float  # of one core, whole process
    passed: bool


async def streams_at_once(frames: Sequence[Captured], count: int, directory: Path) -> Step:
    length = span(frames)
    media = replayed(frames, int(STEP // length) + 2)
    tapped = _Tapped(directory)
    for i in range(count):
        await tapped.start(f"p{i}")
    taps = [tapped.taps[f"p{i}"] for i in range(count)]
    # Staggered starts: stream i begins `phase` seconds into its own media.
    phases = [i * length / count for i in range(count)]
    positions = [next(j for j, c in enumerate(media) if c.at >= p) for p in phases]
    loop = asyncio.get_running_loop()
    cpu, began = time.process_time(), loop.time()
    lags: list[float] = []
    tick = 0
    while True:
        tick += 1
        due = began + tick * 0.01
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)
        now = loop.time() - began
        if now > STEP:
            break
        oldest = now
        for i, tap in enumerate(taps):
            position, phase = positions[i], phases[i]
            while position < len(media) and media[position].at - phase <= now:
                c = media[position]
                oldest = min(oldest, c.at - phase)
                tap(c.kind, 1, c.frame)
                position += 1
            positions[i] = position
        lags.append(now - oldest)
    elapsed = loop.time() - began
    cpu = time.process_time() - cpu
    lost = sum(
        s.frames_lost
        for i in range(count)
        if (s := tapped.recorder.stats(ROOM, f"p{i}")) is not None
    )
    failed = len(tapped.failures)
    await tapped.stop()
    shutil.rmtree(directory, ignore_errors=True)
    lags.sort()
    p99, worst = lags[int(0.99 * (len(lags) - 1))], lags[-1]
    passed = lost == 0 and failed == 0 and p99 <= MAX_LAG
    return Step(count, lost, failed, p99, worst, cpu / elapsed, passed)


# ---------------------------------------------------------------------------------------- run


def _fmt_share(value: float) -> str:
    return f"{100 * value:.2f}%"


def _print_step(step: Step) -> None:
    print(
        f"   {step.streams:5d} streams: lost {step.lost}, failed {step.failed}, "
        f"feeder lag p99 {1000 * step.lag_p99:.0f} ms (max {1000 * step.lag_max:.0f}),"
        f" process CPU {_fmt_share(step.cpu_share)} -> {'pass' if step.passed else 'fail'}"
    )


async def run(write_docs: bool) -> None:
    started = time.monotonic()
    print(f"0. capturing {CAPTURE:.0f} s of 640x480 VP8 + Opus through the relay")
    frames = await capture(CAPTURE)
    video = sum(1 for c in frames if c.kind == "video")
    audio = len(frames) - video
    print(f"   {video} video frames, {audio} Opus packets over {span(frames):.1f} s")

    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        root = Path(tmp)
        ours_cpu, ours_media, ours_size = await cpu_ours(frames, root / "ours")
        theirs_cpu, theirs_media = await cpu_media_recorder(frames, root / "theirs")
        ours = ours_cpu / ours_media
        theirs = theirs_cpu / theirs_media
        ratio = ours / theirs
        print("1. CPU per recorded stream (CPU seconds per second of media = share of a core)")
        print(
            f"   RelayRecorder (mux + encrypt, no re-encode): {_fmt_share(ours)}"
            f"  ({ours_cpu:.2f} s for {ours_media:.0f} s, {ours_size / ours_media / 1024:.0f}"
            " KiB/s on disk)"
        )
        print(
            f"   aiortc MediaRecorder (decode + re-encode):  {_fmt_share(theirs)}"
            f"  ({theirs_cpu:.2f} s for {theirs_media:.0f} s)"
        )
        print(f"   ratio: {ratio:.4f} (target at most 0.2)")

        pieces = await webm_pieces(frames)
        encrypted, copied = throughput(pieces, root / "throughput")
        print(
            f"2. encryption throughput, {MIB} MiB of recorded WebM in the muxer's pieces"
            f" (median piece {sorted(map(len, pieces))[len(pieces) // 2]} bytes)"
        )
        print(f"   encrypted write (RecordingWriter): {MIB / encrypted:8.1f} MiB/s")
        print(f"   plain file copy (shutil.copyfile): {MIB / copied:8.1f} MiB/s")
        print(f"   encrypted write / plain copy time: {encrypted / copied:.2f}x")

        print(f"3. streams recorded at once, {STEP:.0f} s each, real time")
        steps: list[Step] = []
        count = START_STREAMS
        ladder = time.monotonic()
        while time.monotonic() - ladder < BUDGET:
            step = await streams_at_once(frames, count, root / f"load-{count}")
            steps.append(step)
            _print_step(step)
            if not step.passed:
                break
            count *= 2
        # Between the last pass and the first failure, halve the gap twice (budget allowing).
        for _ in range(2):
            passes = [s.streams for s in steps if s.passed]
            fails = [s.streams for s in steps if not s.passed]
            if not passes or not fails or time.monotonic() - ladder >= BUDGET:
                break
            count = (max(passes) + min(fails)) // 2
            if count in (max(passes), min(fails)):
                break
            step = await streams_at_once(frames, count, root / f"load-{count}")
            steps.append(step)
            _print_step(step)
    best = max((s.streams for s in steps if s.passed), default=0)
    capped = all(s.passed for s in steps)
    print(f"   largest with no frame lost: {best}{' (budget reached)' if capped else ''}")
    print(f"(total {time.monotonic() - started:.0f} s)")
    if write_docs:
        bench_join.update_docs(
            {
                "recording": _section(
                    ours,
                    theirs,
                    ratio,
                    encrypted,
                    copied,
                    ours_size / ours_media,
                    steps,
                    best,
                    capped,
                )
            }
        )


def _section(
    ours: float,
    theirs: float,
    ratio: float,
    encrypted: float,
    copied: float,
    stream_rate: float,
    steps: list[Step],
    best: int,
    capped: bool,
) -> str:
    day = datetime.now(UTC).date().isoformat()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = "\n".join(
        f"| {s.streams} | {s.lost} | {s.failed} | {1000 * s.lag_p99:.0f} ms "
        f"({1000 * s.lag_max:.0f} ms) | "
        f"{_fmt_share(s.cpu_share)} | {'pass' if s.passed else 'fail'} |"
        for s in steps
    )
    return f"""\
`scripts/bench recording` ({day}, this 2-core machine, load average after the run {load}; one
aiortc peer publishes pre-encoded 640x480 VP8 at about 500 kbit/s plus Opus into the relay, and
the frames the relay hands out are what both recorders record).

| recorder | CPU per recorded stream (share of one core) |
|---|---|
| `RelayRecorder` (encoded frames into WebM, encrypted as written) | {_fmt_share(ours)} |
| aiortc `MediaRecorder` (decode, re-encode VP8/Opus into WebM, plaintext file) | \
{_fmt_share(theirs)} |

Ratio: **{ratio:.4f}** (target at most 0.2).{_slower(theirs)}

Encryption (AES-256-GCM chunks through `RecordingWriter`, the recorded WebM in the muxer's
pieces, synced): **{MIB / encrypted:.0f} MiB/s**, against a plain file copy (`shutil.copyfile`,
synced) at {MIB / copied:.0f} MiB/s ({encrypted / copied:.2f}x the copy's time); one recorded
stream writes about {stream_rate / 1024:.0f} KiB/s.

Streams recorded at once by one process (real-time feed through the recorder's tap, one writer
thread per recording, {STEP:.0f} s per step; a step fails on any lost frame, a failed recording,
or a feeder whose 99th percentile lateness exceeds {1000 * MAX_LAG:.0f} ms):

| streams | frames lost | failed | feeder lag p99 (max) | process CPU | result |
|---|---|---|---|---|---|
{rows}

Largest with no frame lost: **{best}**{" (the time budget ended the ladder)" if capped else ""}\
{_why(steps)}. The relay's own RTP reception of that many publishers is not included (see
"Relay").
"""


def _slower(share: float) -> str:
    if share <= 1.0:
        return ""
    return (
        " `MediaRecorder` encodes with libvpx's defaults, slower than real time here: it could"
        " not keep up with even one live 640x480 stream on this machine."
    )


def _why(steps: list[Step]) -> str:
    best = max((s for s in steps if s.passed), key=lambda s: s.streams, default=None)
    per_stream = (
        f", at {_fmt_share(best.cpu_share / best.streams)} of a core per stream in real time"
        if best is not None
        else ""
    )
    failed = [s for s in steps if not s.passed]
    if failed and not any(s.lost or s.failed for s in failed):
        return (
            f"{per_stream}; the failing steps lost no frame: the feeder itself fell behind (the"
            " process waited for CPU held by other work on the machine, see the load average)"
        )
    return per_stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    asyncio.run(run(not parser.parse_args().no_docs))


if __name__ == "__main__":
    main()
