"""The recorder on the embedded relay: real aiortc publishers, a real encrypted vault, the
recordings decrypted and decoded with PyAV."""

from __future__ import annotations

import asyncio
import errno
import itertools
import threading
from pathlib import Path

import pytest

from gateway.adapters.recording_vault import RecordingWriter
from gateway.media.grants import HOLD
from gateway.media.recorder import RecorderBusy, RelayRecorder
from tests.media._peers import wait_until

from ._doubles import DiskFullStorage, SlowDiskStorage
from .conftest import FULL, ROOM, VIEWER, Stage, Vault, decode, no_plaintext_media

pytestmark = pytest.mark.media

BLUE = (41, 240, 110)
YELLOW = (210, 16, 146)


def frames_in(stage: Stage, identity: str) -> int:
    return stage.relay.stats(ROOM, identity)["video_frames_in"]


def near(a: int, b: int, tolerance: int = 12) -> bool:
    return abs(a - b) <= tolerance


async def test_a_participant_is_recorded_into_an_encrypted_webm_without_reencoding(
    stage: Stage,
) -> None:
    alice, video = stage.publisher("alice", width=320, height=240, yuv=BLUE)
    await stage.join(alice)
    await wait_until(lambda: frames_in(stage, "alice") >= 5, 20)
    vault = stage.vault()
    writer = vault.writer()
    failures: list[BaseException] = []
    await stage.recorder.start(ROOM, "alice", writer, audio_only=False, on_failure=failures.append)
    assert stage.recorder.recording(ROOM) == {"alice"}
    before, sent_before = frames_in(stage, "alice"), video.sent
    await wait_until(lambda: frames_in(stage, "alice") >= before + 60, 30)
    await stage.recorder.stop(ROOM, "alice")
    received, sent = frames_in(stage, "alice") - before, video.sent - sent_before
    assert stage.recorder.recording(ROOM) == frozenset()
    writer.seal()

    assert no_plaintext_media(stage.tmp_path) == []
    webm = vault.plaintext(writer.recording_id)
    decoded = decode(webm)
    assert decoded.streams == ["video", "audio"]
    assert decoded.first_video_keyframe is True
    # Every frame the relay received after the first key frame is in the file.
    assert received - 10 <= len(decoded.video) <= received
    assert len(decoded.video) >= 0.8 * sent - 10
    assert {(w, h) for w, h, *_ in decoded.video} == {(320, 240)}
    assert all(
        near(y, BLUE[0]) and near(u, BLUE[1]) and near(v, BLUE[2]) for *_, y, u, v in decoded.video
    )
    # ~2 s of recording: the audio is there too (Opus, 48 kHz).
    assert decoded.audio_samples >= 48_000
    assert failures == []
    await stage.recorder.stop(ROOM, "alice")  # stopping twice is harmless


async def test_audio_only_records_no_video_stream(stage: Stage) -> None:
    alice, _ = stage.publisher("alice")
    await stage.join(alice)
    await wait_until(lambda: frames_in(stage, "alice") >= 5, 20)
    vault = stage.vault()
    writer = vault.writer()
    failures: list[BaseException] = []
    await stage.recorder.start(ROOM, "alice", writer, audio_only=True, on_failure=failures.append)
    with pytest.raises(RecorderBusy):
        await stage.recorder.start(
            ROOM, "alice", vault.writer(), audio_only=True, on_failure=failures.append
        )
    await asyncio.sleep(1.5)
    await stage.recorder.stop(ROOM, "alice")
    writer.seal()
    decoded = decode(vault.plaintext(writer.recording_id))
    assert decoded.streams == ["audio"]
    assert decoded.video == []
    assert decoded.audio_samples >= 48_000
    assert failures == []


async def test_two_participants_recorded_separately_never_contain_each_other(
    stage: Stage,
) -> None:
    alice, _ = stage.publisher("alice", width=320, height=240, yuv=BLUE)
    bob, _ = stage.publisher("bob", width=176, height=144, yuv=YELLOW)
    await stage.join(alice)
    await stage.join(bob)
    await wait_until(lambda: frames_in(stage, "alice") >= 5 and frames_in(stage, "bob") >= 5, 20)
    vault = stage.vault()
    writers = {name: vault.writer() for name in ("alice", "bob")}
    for name, writer in writers.items():
        await stage.recorder.start(
            ROOM, name, writer, audio_only=False, on_failure=stage.unexpected.append
        )
    assert stage.recorder.recording(ROOM) == {"alice", "bob"}
    before = frames_in(stage, "bob")
    await wait_until(lambda: frames_in(stage, "bob") >= before + 45, 30)
    for name, writer in writers.items():
        await stage.recorder.stop(ROOM, name)
        writer.seal()

    alice_file = decode(vault.plaintext(writers["alice"].recording_id))
    bob_file = decode(vault.plaintext(writers["bob"].recording_id))
    assert len(alice_file.video) >= 30 and len(bob_file.video) >= 30
    assert {(w, h) for w, h, *_ in alice_file.video} == {(320, 240)}
    assert {(w, h) for w, h, *_ in bob_file.video} == {(176, 144)}
    assert all(near(y, BLUE[0]) and near(u, BLUE[1]) for _, _, y, u, _ in alice_file.video)
    assert all(near(y, YELLOW[0]) and near(u, YELLOW[1]) for _, _, y, u, _ in bob_file.video)
    assert alice_file.audio_samples > 0 and bob_file.audio_samples > 0
    assert no_plaintext_media(stage.tmp_path) == []


async def test_a_late_publication_is_recorded_from_a_key_frame_and_survives_a_leave(
    stage: Stage,
) -> None:
    vault = stage.vault()
    writer = vault.writer()
    failures: list[BaseException] = []
    # Recording starts before the participant has even connected.
    await stage.recorder.start(ROOM, "carol", writer, audio_only=False, on_failure=failures.append)
    first, _ = stage.publisher("carol", width=320, height=240, yuv=BLUE)
    await stage.join(first)
    await wait_until(lambda: frames_in(stage, "carol") >= 30, 30)
    # She leaves (her connection closes), then comes back on a new connection.
    await first.close()
    await wait_until(lambda: all(p.identity != "carol" for p in stage.relay.participants(ROOM)))
    await asyncio.sleep(0.5)
    second, _ = stage.publisher("carol", width=176, height=144, yuv=YELLOW)
    await stage.join(second)
    await wait_until(lambda: frames_in(stage, "carol") >= 30, 30)
    await stage.recorder.stop(ROOM, "carol")
    writer.seal()

    decoded = decode(vault.plaintext(writer.recording_id))
    assert decoded.first_video_keyframe is True
    sizes = [(w, h) for w, h, *_ in decoded.video]
    # Both connections' pictures, in order, each from its own first key frame.
    assert sizes[0] == (320, 240) and sizes[-1] == (176, 144)
    assert sizes.count((320, 240)) >= 20 and sizes.count((176, 144)) >= 20
    assert sizes == sorted(sizes, key=lambda s: s != (320, 240))
    assert all(near(y, BLUE[0]) for w, _, y, _, _ in decoded.video if w == 320)
    assert all(near(y, YELLOW[0]) for w, _, y, _, _ in decoded.video if w == 176)
    assert decoded.audio_samples > 0
    assert failures == []


async def test_nothing_is_recorded_while_a_participant_is_held(stage: Stage) -> None:
    alice, _ = stage.publisher("alice")
    await stage.join(alice)
    await wait_until(lambda: frames_in(stage, "alice") >= 5, 20)
    vault = stage.vault()
    writer = vault.writer()
    await stage.recorder.start(
        ROOM, "alice", writer, audio_only=False, on_failure=stage.unexpected.append
    )
    before = frames_in(stage, "alice")
    await wait_until(lambda: frames_in(stage, "alice") >= before + 30, 20)
    # Held (cannot see, hear or be seen): her media is neither forwarded nor recorded.
    await stage.relay.set_grants(ROOM, "alice", HOLD)
    await asyncio.sleep(1.5)
    await stage.relay.set_grants(ROOM, "alice", FULL)
    before = frames_in(stage, "alice")
    await wait_until(lambda: frames_in(stage, "alice") >= before + 30, 20)
    await stage.recorder.stop(ROOM, "alice")
    writer.seal()

    decoded = decode(vault.plaintext(writer.recording_id))
    times = [t for t, _ in decoded.video_packets]
    gaps = [(b - a, i + 1) for i, (a, b) in enumerate(itertools.pairwise(times))]
    longest, after = max(gaps)
    assert longest >= 1.2  # the hold, on the recording's timeline
    assert sorted(gaps)[-2][0] < 0.5  # and no other gap
    assert decoded.video_packets[after][1] is True  # resumes at a key frame
    assert times == sorted(times)
    assert len(decoded.video) == len(decoded.video_packets) >= 50


async def test_disk_full_fails_that_recording_once_and_nothing_else(
    stage: Stage, tmp_path: Path
) -> None:
    alice, _ = stage.publisher("alice", width=320, height=240, yuv=BLUE, noise=True)
    bob, _ = stage.publisher("bob", width=176, height=144, yuv=YELLOW)
    viewer = stage.viewer("viewer")
    await stage.join(alice)
    await stage.join(bob)
    await stage.join(viewer, VIEWER)
    await wait_until(lambda: frames_in(stage, "alice") >= 5 and frames_in(stage, "bob") >= 5, 20)
    # Alice's recording goes to a disk with room for the header and one encrypted chunk.
    full = stage.vault(DiskFullStorage(tmp_path / "full", capacity=100_000))
    healthy = stage.vault()
    alice_writer, bob_writer = full.writer(), healthy.writer()
    failures: list[tuple[BaseException, bool]] = []

    def failed(exc: BaseException) -> None:
        failures.append((exc, threading.current_thread() is threading.main_thread()))

    await stage.recorder.start(ROOM, "alice", alice_writer, audio_only=False, on_failure=failed)
    await stage.recorder.start(
        ROOM, "bob", bob_writer, audio_only=False, on_failure=stage.unexpected.append
    )
    await wait_until(lambda: bool(failures), 30)
    await asyncio.sleep(1.0)
    assert len(failures) == 1
    error, on_loop = failures[0]
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert on_loop
    assert stage.recorder.recording(ROOM) == {"bob"}
    # The session goes on: Alice is still forwarded to the viewer, Bob still recorded.
    seen = viewer.total("video")
    bob_before = frames_in(stage, "bob")
    await wait_until(lambda: viewer.total("video") >= seen + 30, 20)
    await wait_until(lambda: frames_in(stage, "bob") >= bob_before + 30, 20)
    await stage.recorder.stop(ROOM, "alice")  # already detached: nothing to do
    await stage.recorder.stop(ROOM, "bob")
    bob_writer.seal()
    bob_file = decode(healthy.plaintext(bob_writer.recording_id))
    assert len(bob_file.video) >= 30
    assert {(w, h) for w, h, *_ in bob_file.video} == {(176, 144)}
    alice_writer.abort()
    assert len(failures) == 1
    assert no_plaintext_media(tmp_path) == []


async def test_a_writer_that_falls_behind_loses_counted_frames_and_the_file_stays_valid(
    stage: Stage, tmp_path: Path
) -> None:
    recorder = RelayRecorder(stage.relay, queue_bytes=20_000)
    alice, _ = stage.publisher("alice", width=320, height=240, yuv=BLUE, noise=True)
    await stage.join(alice)
    await wait_until(lambda: frames_in(stage, "alice") >= 5, 20)
    vault = stage.vault(SlowDiskStorage(tmp_path / "slow", delay=1.0))
    writer = vault.writer()
    failures: list[BaseException] = []
    await recorder.start(ROOM, "alice", writer, audio_only=False, on_failure=failures.append)
    try:
        await _overflow(stage, recorder, vault, writer)
    finally:
        await recorder.close()
    assert failures == []


async def _overflow(
    stage: Stage, recorder: RelayRecorder, vault: Vault, writer: RecordingWriter
) -> None:
    def lost() -> int:
        stats = recorder.stats(ROOM, "alice")
        return 0 if stats is None else stats.frames_lost

    await wait_until(lambda: lost() > 0, 30)
    before = frames_in(stage, "alice")
    await wait_until(lambda: frames_in(stage, "alice") >= before + 30, 20)
    stats = recorder.stats(ROOM, "alice")
    assert stats is not None and stats.frames_lost > 0
    await recorder.stop(ROOM, "alice")
    writer.seal()
    decoded = decode(vault.plaintext(writer.recording_id))
    assert decoded.first_video_keyframe is True
    assert 0 < len(decoded.video) < stats.frames_queued + stats.frames_lost
    assert {(w, h) for w, h, *_ in decoded.video} == {(320, 240)}
