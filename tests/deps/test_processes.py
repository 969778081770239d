"""Several gateway processes on one database: without shared live state (GATEWAY_REDIS_URL) a
second one refuses to start, in one line that says why; a process without Redis never runs
beside one with it; a crashed process's entry delays a start by one lease period at most."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.migrate import migrate
from tests.deps.conftest import ServeGateway
from tests.plugins.gateway_server import ROOT
from tests.plugins.servers import free_port

LEASE_SECONDS = 1.0  # GATEWAY_LIVE_HEARTBEAT_SECONDS: how long a silent process's entry lasts
REFUSAL = "gateway: refusing to start: "


def environment(database_url: str, tmp_path: Path, redis_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_KEYS_DIR=str(tmp_path / "keys"),
        GATEWAY_POLICY=str(ROOT / "policies" / "default.toml"),
        GATEWAY_LIVE_HEARTBEAT_SECONDS=str(LEASE_SECONDS),
    )
    if redis_url:
        env["GATEWAY_REDIS_URL"] = redis_url
    return env


def serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def refused(process: subprocess.Popen[str]) -> str:
    """The refusal line of a process that must stop by itself; every other line on its stderr
    is a JSON log record (no traceback). Waits off the event loop: the first gateway, in this
    process, must keep renewing its entry meanwhile."""
    try:
        _, stderr = await asyncio.to_thread(process.communicate, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1, stderr
    plain = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert len(plain) == 1, stderr
    for line in stderr.splitlines():
        if line.startswith("{"):
            json.loads(line)
    assert plain[0].startswith(REFUSAL), stderr
    return plain[0]


async def test_second_process_without_redis_refuses_to_start(
    database_url: str, serve_gateway: ServeGateway, tmp_path: Path
) -> None:
    url = database_url
    first = await serve_gateway(url, live_heartbeat_seconds=LEASE_SECONDS)
    probe = await first.client()
    assert (await probe.get("/healthz")).status == 200

    started = time.monotonic()
    line = await refused(serve(environment(url, tmp_path), free_port()))
    assert "another gateway process" in line and "GATEWAY_REDIS_URL" in line
    assert str(tmp_path) not in line  # names the process (host, pid), not files or URLs
    assert time.monotonic() - started < 30
    assert (await probe.get("/healthz")).status == 200  # the first one serves on


async def test_process_without_redis_refuses_beside_one_with_redis(
    serve_gateway: ServeGateway, tmp_path: Path, redis_url: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    await serve_gateway(url, redis_url, live_heartbeat_seconds=LEASE_SECONDS)
    line = await refused(serve(environment(url, tmp_path), free_port()))
    assert "GATEWAY_REDIS_URL" in line


async def test_entry_of_a_crashed_process_delays_a_start_by_one_lease_at_most(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    env = environment(url, tmp_path)
    database = Database(url)
    await migrate(database.writer_engine)
    await database.dispose()
    with sqlite3.connect(tmp_path / "gateway.db") as db:  # a process that died a moment ago
        db.execute(
            "INSERT INTO gateway_processes VALUES ('dead', 'in_process', 'elsewhere', 1, "
            "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) + :lease)",
            {"lease": int(LEASE_SECONDS * 1_000_000)},
        )
    port = free_port()
    process = serve(env, port)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                assert process.poll() is None, process.communicate()[1]
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the gateway did not start after the entry expired")
        with sqlite3.connect(tmp_path / "gateway.db") as db:
            # The crashed process's lapsed entry may be kept one more lease (crash recovery
            # of its recordings waits that long), but is no longer alive.
            hosts = [
                row[0]
                for row in db.execute(
                    "SELECT host FROM gateway_processes WHERE expires_at >= "
                    "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"
                )
            ]
        assert "elsewhere" not in hosts and len(hosts) == 1
    finally:
        process.terminate()
        process.communicate(timeout=20)
    # A clean stop leaves no entry of its own. The crashed one's may still be waiting out its
    # extra lease, when the gateway started and stopped within it (no registration deleted it).
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        left = [row[0] for row in db.execute("SELECT host FROM gateway_processes")]
    assert left in ([], ["elsewhere"])
