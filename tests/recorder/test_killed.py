"""SIGKILL while a participant is being recorded: nothing in plaintext on disk, and the file
recovery seals holds a WebM that plays up to where the process died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.adapters.recording_vault import (
    LocalRecordingStorage,
    RecordingReader,
    recover_file,
)
from gateway.domain.recording_crypto import new_data_key
from tests.plugins.gateway_server import ROOT

from .conftest import decode, no_plaintext_media

pytestmark = pytest.mark.media


def test_a_recorder_killed_mid_recording_leaves_a_playable_encrypted_prefix(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "recordings"
    key = new_data_key()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.recorder.killed_recorder", str(directory), key.hex()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        recording_id = proc.stdout.readline().decode().strip()
        assert len(recording_id) == 32
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert no_plaintext_media(tmp_path) == []

    storage = LocalRecordingStorage(directory)
    recovered = recover_file(storage, recording_id, key)
    assert not recovered.complete
    reader = RecordingReader(storage, recording_id, key)
    assert reader.verify().complete is False
    decoded = decode(b"".join(reader.chunks()), cut=True)
    assert decoded.first_video_keyframe is True
    assert len(decoded.video) >= 20
    assert {(w, h) for w, h, *_ in decoded.video} == {(320, 240)}
    assert no_plaintext_media(tmp_path) == []
