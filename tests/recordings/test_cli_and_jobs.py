"""`gateway retention run` (progress on stderr, the same lease as the job); the periodic job runs
in one process at a time (Redis leader lease); the whole wiring: a guardian's withdrawal through
the consent service destroys the child's recordings; no master key -> a clear refusal."""

from __future__ import annotations

import asyncio
import os
from datetime import date, timedelta
from pathlib import Path

import pytest

from gateway.adapters.leader import RedisLeaderLock, run_periodically
from gateway.adapters.live_redis import close_client, redis_client
from gateway.app import Runtime, build_runtime
from gateway.cli import main, progress_bar
from gateway.clock import FrozenClock
from gateway.domain.errors import Unavailable
from gateway.domain.retention import RecordingState
from gateway.services.ports import Organisation
from gateway.settings import Settings
from tests.plugins.gateway_server import ROOT
from tests.recordings.conftest import START

MARKER = b"PLAINTEXT-MARKER-cli"


def _settings(tmp_path: Path, master: bool = True) -> Settings:
    key_file = tmp_path / "master.key"
    if master and not key_file.exists():
        key_file.write_bytes(os.urandom(32))
        key_file.chmod(0o600)
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        policy_path=ROOT / "policies" / "default.toml",
        keys_dir=tmp_path / "keys",
        recordings_dir=tmp_path / "recordings",
        recording_master_key_file=key_file if master else None,
        public_url="https://gateway.example.org",
    )


async def _seed(runtime: Runtime, count: int) -> tuple[Organisation, list[str]]:
    assert runtime.recordings is not None
    org, _ = await runtime.services.organisations.create("Test org")
    ids = []
    for _ in range(count):
        handle = await runtime.recordings.start(
            org, "staff:t", "s" * 32, "lesson_review", [("child", "c" * 32)], []
        )
        handle.writer.append(MARKER * 100)
        ids.append((await runtime.recordings.finish(handle, "staff:t")).id)
    return org, ids


def test_retention_run_by_hand_shows_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path)

    async def seed() -> list[str]:
        runtime = await build_runtime(settings, FrozenClock(START - timedelta(days=31)))
        try:
            return (await _seed(runtime, 3))[1]
        finally:
            await runtime.close()

    ids = asyncio.run(seed())
    for variable, value in (
        ("GATEWAY_DATABASE_URL", settings.database_url),
        ("GATEWAY_POLICY", str(settings.policy_path)),
        ("GATEWAY_KEYS_DIR", str(settings.keys_dir)),
        ("GATEWAY_RECORDINGS_DIR", str(settings.recordings_dir)),
        ("GATEWAY_RECORDING_MASTER_KEY_FILE", str(settings.recording_master_key_file)),
    ):
        monkeypatch.setenv(variable, value)
    assert main(["retention", "run"]) == 0
    out = capsys.readouterr()
    assert "destroyed 3" in out.out
    assert "[" + "#" * 30 + "] 3/3" in out.err and "0/3" in out.err
    assert sorted(p.name for p in settings.recordings_dir.iterdir()) == []
    assert main(["retention", "run"]) == 0
    assert "destroyed 0" in capsys.readouterr().out
    assert len(ids) == 3


def test_progress_bar() -> None:
    assert progress_bar(0, 0, 4) == "[####] 0/0"
    assert progress_bar(1, 4, 4) == "[#...] 1/4"


async def test_no_master_key_refuses_recording_and_the_rest_runs(tmp_path: Path) -> None:
    runtime = await build_runtime(_settings(tmp_path, master=False))
    try:
        assert runtime.recordings is not None and not runtime.recordings.can_record
        org, _ = await runtime.services.organisations.create("Test org")
        with pytest.raises(Unavailable) as refused:
            await runtime.recordings.start(org, "staff:t", "s" * 32, "lesson_review", [], [])
        assert refused.value.code.value == "recording_unavailable"
        assert "GATEWAY_RECORDING_MASTER_KEY_FILE" in refused.value.message
        assert list((tmp_path / "recordings").iterdir()) == []
    finally:
        await runtime.close()


@pytest.mark.redis
async def test_two_processes_run_the_job_once(redis_url: str) -> None:
    """Two lease holders (as two processes would be) on one Redis: only one runs the rounds."""
    clients = [redis_client(redis_url), redis_client(redis_url)]
    runs = [0, 0]
    stop = asyncio.Event()

    def job(i: int):  # type: ignore[no-untyped-def]
        async def round_() -> None:
            runs[i] += 1

        return round_

    tasks = [
        asyncio.create_task(
            run_periodically(RedisLeaderLock(c), "recordings.retention", 0.05, job(i), stop)
        )
        for i, c in enumerate(clients)
    ]
    await asyncio.sleep(0.6)
    stop.set()
    await asyncio.gather(*tasks)
    for c in clients:
        await close_client(c)
    assert sorted(runs)[0] == 0 and sorted(runs)[1] >= 5


async def test_a_withdrawal_through_the_consent_service_destroys(tmp_path: Path) -> None:
    from gateway.domain.models import ConsentAction, PersonKind

    clock = FrozenClock(START)
    runtime = await build_runtime(_settings(tmp_path), clock)
    try:
        assert runtime.recordings is not None and runtime.retention is not None
        org, _ = await runtime.services.organisations.create("Test org")
        guardian = await runtime.services.registry.add_guardian(
            org, "a", "Grace Guardian", "g@example.org"
        )
        child = await runtime.services.registry.add_child(
            org, "a", "Cara Child", date(2016, 5, 1), [guardian.id]
        )
        handle = await runtime.recordings.start(
            org, "staff:t", "s" * 32, "lesson_review", [("child", child.id)], []
        )
        handle.writer.append(MARKER)
        rid = (await runtime.recordings.finish(handle, "staff:t")).id
        await runtime.services.consent.record(
            org,
            "a",
            PersonKind.CHILD,
            child.id,
            "recording:lesson_review",
            ConsentAction.WITHDRAW,
            PersonKind.GUARDIAN,
            guardian.id,
            None,
        )
        assert await runtime.retention.run_once() == 1
        assert (await runtime.recordings.get(org, rid)).state is RecordingState.DESTROYED
    finally:
        await runtime.close()
