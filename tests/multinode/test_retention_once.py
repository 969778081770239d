"""Retention across processes (issue 9 point 6, issue 10 point 7): the periodic job of two
gateway processes and `gateway retention run` by hand, started at the same moment, destroy each
due recording exactly once: one destruction record, one audit entry of each step, nothing left
on disk; a run by hand that finds another in progress waits for it, saying so."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from gateway.adapters.leader import RedisLeaderLock
from gateway.adapters.live_redis import close_client, redis_client
from gateway.services.retention import RUN_LEASE
from tests.live._gateways import ROOT, environment, ready, serving
from tests.multinode.conftest import MARKER, Cluster, audit_kinds, seed_due_recordings
from tests.plugins.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

DUE = 40


def _assert_destroyed_once(cluster: Cluster, ids: list[str]) -> None:
    listed = ",".join(f"'{i}'" for i in ids)
    assert cluster.count(
        f"SELECT count(*) FROM recording_destructions WHERE recording_id IN ({listed})"  # noqa: S608
    ) == len(ids)
    assert cluster.count(
        f"SELECT count(*) FROM recordings WHERE state = 'destroyed' AND id IN ({listed})"  # noqa: S608
    ) == len(ids)
    assert cluster.count("SELECT count(*) FROM recording_keys") == 0
    left = [p for p in cluster.recordings_dir.rglob("*") if p.is_file()]
    assert left == [], left
    for path in cluster.recordings_dir.rglob("*"):
        assert not path.is_file() or MARKER[:16] not in path.read_bytes()


async def test_periodic_jobs_and_a_run_by_hand_destroy_each_recording_once(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    _, key, ids = await seed_due_recordings(cluster, DUE)
    assert cluster.count("SELECT count(*) FROM recording_keys") == DUE

    # Two servers start (each one's first recordings round runs at once) and the operator runs
    # the job by hand at the same moment.
    with serving(cluster.env, 2) as (a, b):
        by_hand = cluster.start_gateway("retention", "run")
        try:
            out, err = await asyncio.to_thread(by_hand.communicate, timeout=120)
        finally:
            if by_hand.poll() is None:
                by_hand.kill()
                by_hand.wait()
        assert by_hand.returncode == 0, err
        destroyed_by_hand = int(re.search(r"destroyed (\d+)", out).group(1))  # type: ignore[union-attr]
        await ready(http, a.base, b.base)

        async with asyncio.timeout(20):
            while len(await audit_kinds(http, a.base, key, "recording.destroyed")) < DUE:
                await asyncio.sleep(0.2)
        await asyncio.sleep(3 * 0.5)  # more rounds of both servers: nothing more may happen

        destroyed = await audit_kinds(http, b.base, key, "recording.destroyed")
        keys = await audit_kinds(http, b.base, key, "recording.key_destroyed")
    for entries in (destroyed, keys):
        per_recording = Counter(e["data"]["recording"] for e in entries)
        assert sorted(per_recording) == sorted(ids)
        assert set(per_recording.values()) == {1}, per_recording.most_common(3)
    actors = Counter(e["actor"] for e in destroyed)
    assert actors["cli:retention"] == destroyed_by_hand
    assert actors["cli:retention"] + actors["job:retention"] == DUE
    _assert_destroyed_once(cluster, ids)
    verified = cluster.gateway("audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout


async def test_a_run_by_hand_waits_for_the_run_in_progress(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    _, key, ids = await seed_due_recordings(cluster, 3)
    # Another process's run in progress: it holds the run lease (as a round does).
    client = redis_client(cluster.env["GATEWAY_REDIS_URL"])
    other = RedisLeaderLock(client)
    try:
        assert await other.acquire(RUN_LEASE, 30)
        with serving(cluster.env, 1) as (a,):
            by_hand = cluster.start_gateway("retention", "run")
            try:
                await ready(http, a.base)
                assert by_hand.stderr is not None
                for _ in range(50):  # past any warnings logged while it starts
                    line = await asyncio.to_thread(by_hand.stderr.readline)
                    if "retention run" in line or not line:
                        break
                assert "another retention run is in progress" in line and "waiting" in line
                await asyncio.sleep(1.5)  # neither the server's rounds nor the run by hand act
                assert by_hand.poll() is None
                assert await audit_kinds(http, a.base, key, "recording.destroyed") == []
                released = time.monotonic()
                await other.release(RUN_LEASE)
                out, err = await asyncio.to_thread(by_hand.communicate, timeout=60)
            finally:
                if by_hand.poll() is None:
                    by_hand.kill()
                    by_hand.wait()
            assert by_hand.returncode == 0, err
            assert time.monotonic() - released < 30
            # Whoever got the lease first (the run by hand or the server's round) did it all.
            destroyed = await audit_kinds(http, a.base, key, "recording.destroyed")
            assert sorted(e["data"]["recording"] for e in destroyed) == sorted(ids)
            assert f"destroyed {sum(e['actor'] == 'cli:retention' for e in destroyed)}" in out
    finally:
        await close_client(client)
    _assert_destroyed_once(cluster, ids)


async def test_overlapping_runs_without_the_lease_still_destroy_once(cluster: Cluster) -> None:
    """The lease is not a mutex (a paused holder can outlive it): two runs that overlap
    anyway still leave one destruction record and one audit entry of each step per
    recording, and the chain verifies."""
    from gateway.app import build_runtime
    from gateway.settings import Settings

    org_id, _, ids = await seed_due_recordings(cluster, DUE)
    first = await build_runtime(Settings.from_env(cluster.env))
    second = await build_runtime(Settings.from_env(cluster.env))
    try:
        assert first.retention is not None and second.retention is not None
        # The child's guardian withdrew consent: each destruction is confirmed to them once.
        await first.retention.consent_withdrawn(org_id, "c" * 32, None, "guardian:" + "g" * 32)
        done = await asyncio.gather(first.retention.run_once(), second.retention.run_once())
    finally:
        await second.close()
        await first.close()
    assert sum(done) == DUE
    for kind in ("recording.destroyed", "recording.key_destroyed"):
        rows = cluster.sql(
            f"SELECT count(*) FROM audit_log WHERE kind = '{kind}' AND org_id = '{org_id}'"  # noqa: S608
        )
        assert int(rows[0][0]) == DUE, kind
    confirmations = cluster.sql(
        "SELECT count(*), count(DISTINCT notification_id) FROM outbox WHERE"  # noqa: S608
        f" kind = 'recording.destroyed' AND org_id = '{org_id}'"
    )
    assert int(confirmations[0][1]) == DUE, confirmations
    _assert_destroyed_once(cluster, ids)
    verified = cluster.gateway("audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout


def test_a_run_by_hand_without_the_live_state_refuses_clearly(tmp_path: Path) -> None:
    """Nobody can say whether a run is in progress elsewhere: nothing is done, in one line."""
    env = environment(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    env["GATEWAY_REDIS_TIMEOUT_SECONDS"] = "0.5"
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "retention", "run"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "GATEWAY_REDIS_URL" in done.stderr and "nothing was done" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
