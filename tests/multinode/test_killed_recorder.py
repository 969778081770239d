"""An instance killed with SIGKILL mid-recording (issue 9 point 4, issue 10 point 7): the
surviving instances find the orphaned recording once its process is known dead, seal it as
incomplete exactly once between them (one `recording.recovered` entry), the catalogue says so,
its written chunks stay encrypted, and no plaintext is anywhere on disk; while the recording
instance lives, nobody touches its recording."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import aiohttp
import pytest

from tests.live._gateways import ROOT, ready, serving
from tests.multinode.conftest import (
    HEARTBEAT,
    MARKER,
    RETENTION,
    Cluster,
    audit_kinds,
    seed_due_recordings,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

# The killed process's heartbeat runs out, then recovery's grace (one more heartbeat window:
# a stalled writer is never sealed under it), then the next recordings round seals; room for
# a loaded machine.
WITHIN = 2 * HEARTBEAT + 2 * RETENTION + 8


def _state(cluster: Cluster, recording_id: str) -> list[str]:
    return cluster.sql(
        f"SELECT state, size_bytes, chunks, ended_at IS NOT NULL FROM recordings"  # noqa: S608
        f" WHERE id = '{recording_id}'"
    )[0]


async def test_recording_of_a_killed_instance_is_sealed_once_by_the_survivors(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    org_id, key, _ = await seed_due_recordings(cluster, 0)
    with serving(cluster.env, 2) as (a, b):
        await ready(http, a.base, b.base)
        instance = subprocess.Popen(
            [sys.executable, "-m", "tests.multinode.recording_instance", org_id],
            env=cluster.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert instance.stdout is not None
            recording_id = (await asyncio.to_thread(instance.stdout.readline)).strip()
            assert len(recording_id) == 32, recording_id
            # Alive and recording: the survivors' rounds leave it alone.
            await asyncio.sleep(HEARTBEAT + 4 * RETENTION)
            assert _state(cluster, recording_id)[0] == "recording"

            instance.kill()  # SIGKILL: no seal, no goodbye, its registration left to expire
            instance.wait(timeout=10)
            killed = time.monotonic()
        finally:
            if instance.poll() is None:
                instance.kill()
                instance.wait()
            if instance.stdout is not None:
                instance.stdout.close()

        async with asyncio.timeout(WITHIN):
            while _state(cluster, recording_id)[0] == "recording":
                await asyncio.sleep(0.1)
        sealed_after = time.monotonic() - killed
        await asyncio.sleep(4 * RETENTION)  # more rounds of both survivors: nothing more
        recovered = await audit_kinds(http, b.base, key, "recording.recovered")

    state, size, chunks, ended = _state(cluster, recording_id)
    assert state == "incomplete" and ended == "t"
    assert int(chunks) >= 1 and int(size) > 0
    assert sealed_after < WITHIN
    assert [(e["data"]["recording"], e["data"]["state"]) for e in recovered] == [
        (recording_id, "incomplete")
    ]
    files = [p for p in cluster.recordings_dir.rglob("*") if p.is_file()]
    assert files, "the encrypted, authenticated prefix is kept"
    for path in files:
        assert MARKER[:16] not in path.read_bytes()
    verified = cluster.gateway("audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout
