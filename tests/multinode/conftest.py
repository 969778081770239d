"""Several `gateway serve` processes on one PostgreSQL and one Redis, as deployed (issue 10,
point 7): the environment they share, the gateway CLI run beside them, and what a test reads
back from the database (psql, as an operator would).

Processes are started with `tests.live._gateways.serving` (every one it starts, it stops) and
share the database, the Redis, the keys folder, the recordings folder and the master key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.live._gateways import ROOT, environment
from tests.plugins.servers import PostgresServer

# Short periods so that what a user would wait minutes for happens within seconds here.
HEARTBEAT = 2.0  # GATEWAY_LIVE_HEARTBEAT_SECONDS: a silent process is dead after this
RETENTION = 0.5  # GATEWAY_RETENTION_SECONDS: the recordings round (recovery, destruction)
RECONCILE = 0.3


@dataclass
class Cluster:
    """What the gateway processes of one test share."""

    env: dict[str, str]
    postgres: PostgresServer
    dbname: str
    recordings_dir: Path

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a query on the gateways' database, as text."""
        out = self.postgres.psql(query, self.dbname)
        return [line.split("|") for line in out.splitlines() if line]

    def count(self, query: str) -> int:
        return int(self.sql(query)[0][0])

    def gateway(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`gateway ARGS...` in its own process, as an operator runs it beside the servers."""
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start_gateway(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def cluster(
    tmp_path: Path,
    postgres_server: PostgresServer,
    postgres_url: str,
    redis_url: str,
    schema_at_head: Callable[[str], None],
) -> Cluster:
    # At the newest schema (a copy of the migrated template): what is tested here is what the
    # processes do together, not migrating (tests/*/test_migration.py and tests/deps do that).
    schema_at_head(postgres_url)
    key_file = tmp_path / "master.key"
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o600)
    recordings_dir = tmp_path / "recordings"
    env = environment(
        tmp_path,
        redis_url,
        database_url=postgres_url,
        GATEWAY_RECORDINGS_DIR=str(recordings_dir),
        GATEWAY_RECORDING_MASTER_KEY_FILE=str(key_file),
        GATEWAY_RETENTION_SECONDS=str(RETENTION),
        GATEWAY_LIVE_HEARTBEAT_SECONDS=str(HEARTBEAT),
        GATEWAY_LIVE_SWEEP_SECONDS=str(RECONCILE),
        GATEWAY_RECONCILE_SECONDS=str(RECONCILE),
    )
    return Cluster(env, postgres_server, postgres_url.rsplit("/", 1)[1], recordings_dir)


MARKER = b"PLAINTEXT-MARKER-multinode"  # never on disk as it is: every file is encrypted


async def seed_due_recordings(cluster: Cluster, count: int) -> tuple[str, str, list[str]]:
    """An organisation with `count` sealed recordings made long enough ago to be due for
    destruction now: (org id, its API key, recording ids)."""
    from gateway.app import build_runtime
    from gateway.clock import FrozenClock
    from gateway.settings import Settings

    runtime = await build_runtime(
        Settings.from_env(cluster.env), FrozenClock(datetime.now(UTC) - timedelta(days=400))
    )
    try:
        assert runtime.recordings is not None
        org, key = await runtime.services.organisations.create("Many Rooms Club")
        ids = []
        for n in range(count):
            handle = await runtime.recordings.start(
                org, "staff:" + "t" * 32, f"{n:032d}", "lesson_review", [("child", "c" * 32)], []
            )
            handle.writer.append(MARKER * 50)
            ids.append((await runtime.recordings.finish(handle, "staff:" + "t" * 32)).id)
        return org.id, key, ids
    finally:
        await runtime.close()


async def audit_kinds(
    http: aiohttp.ClientSession, base: str, key: str, kind: str
) -> list[dict[str, Any]]:
    """The organisation's audit entries of one kind, through the API."""
    async with http.get(
        f"{base}/v1/audit?limit=500&kind={kind}", headers={"Authorization": f"Bearer {key}"}
    ) as response:
        assert response.status == 200
        return list((await response.json())["items"])


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


from tests.live.conftest import devices  # noqa: E402, F401  (one cookie jar per browser)
