"""SIGKILL mid-recording, then start again: no plaintext anywhere under the recordings
directory, and the catalogue says the recording is incomplete (its written chunks readable)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from gateway.domain.retention import RecordingState
from tests.plugins.gateway_server import ROOT
from tests.recordings.conftest import ORG, World
from tests.recordings.crash_writer import MARKER


async def test_killed_mid_recording_is_sealed_incomplete(world: World, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_bytes(world.master_key)
    key_file.chmod(0o600)
    url = world.database.url if hasattr(world.database, "url") else None
    assert url is not None
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.recordings.crash_writer",
            url,
            str(world.storage.directory),
            str(key_file),
            world.audit_key.hex(),
        ],
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
    assert (await world.recordings.get(ORG, recording_id)).state is RecordingState.RECORDING

    recovered = await world.recordings.recover()

    assert [e.id for e in recovered] == [recording_id]
    entry = await world.recordings.get(ORG, recording_id)
    assert entry.state is RecordingState.INCOMPLETE
    assert entry.size_bytes == world.storage.size(recording_id) and entry.ended_at is not None
    for path in world.storage.directory.rglob("*"):
        assert MARKER[:16] not in path.read_bytes()
    played = b"".join(await world.recordings.read(ORG, recording_id))
    assert (
        played
        and MARKER * (len(played) // len(MARKER))
        == played[: len(played) // len(MARKER) * len(MARKER)]
    )
    assert await world.recordings.recover() == []  # nothing left to recover
