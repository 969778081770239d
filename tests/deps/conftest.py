"""Gateways whose dependencies fail: PostgreSQL and Redis stopped, paused (SIGSTOP) or locked.

`serve_gateway(database_url, redis_url=None)` starts an in-process gateway on a loopback port
with short deadlines (`SQL_TIMEOUT`, `REDIS_TIMEOUT`) and stops it at the end of the test.
`stoppable_postgres` is a PostgreSQL cluster of these tests' own, so that stopping it leaves
the session's shared server alone; it restarts on the same port (the gateway's URL stays valid).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.app import build_app
from gateway.clock import FrozenClock
from gateway.settings import Settings
from tests.plugins.gateway_server import MONDAY_10AM, ROOT, Client, Gateway
from tests.plugins.servers import PostgresServer, RedisServer, free_port

SQL_TIMEOUT = 1.0
REDIS_TIMEOUT = 0.5
# What "within the deadline" allows on two shared cores: a refusal may pass one deadline while
# it is decided and one more while the refusal itself is audited, plus scheduling noise.
MARGIN = 3.0

ServeGateway = Callable[..., Awaitable[Gateway]]


class StoppablePostgres(PostgresServer):
    def restart_same_port(self) -> None:
        self.stop()
        self._start_once()  # start() would pick a new port


@pytest.fixture(scope="session")
def stoppable_postgres() -> Iterator[StoppablePostgres]:
    server = StoppablePostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def own_postgres_url(
    stoppable_postgres: StoppablePostgres, request: pytest.FixtureRequest
) -> Iterator[str]:
    name = stoppable_postgres.new_database_name(request.node.name)
    stoppable_postgres.create_database(name)
    try:
        yield stoppable_postgres.url(name)
    finally:
        if not stoppable_postgres.running:
            stoppable_postgres.restart_same_port()
        stoppable_postgres.drop_database(name)


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """The process stops answering (SIGSTOP) but keeps its connections open; SIGCONT after."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def redis_pid(server: RedisServer) -> int:
    process = server._proc  # the fixture's own process handle: there is no public pid
    assert process is not None
    return process.pid


@pytest.fixture
async def serve_gateway(tmp_path: Path) -> AsyncIterator[ServeGateway]:
    async with contextlib.AsyncExitStack() as stack:

        async def serve(database_url: str, redis_url: str | None = None, **extra: Any) -> Gateway:
            port = free_port()
            settings = Settings(
                database_url=database_url,
                redis_url=redis_url,
                policy_path=ROOT / "policies" / "default.toml",
                keys_dir=tmp_path / "keys",
                public_url=f"http://127.0.0.1:{port}",
                reconcile_seconds=0.3,
                media_disconnect_seconds=3.0,
                sql_timeout_seconds=SQL_TIMEOUT,
                redis_timeout_seconds=REDIS_TIMEOUT,
            )
            settings = replace(settings, **extra)
            clock = FrozenClock(MONDAY_10AM)
            runner = web.AppRunner(build_app(settings, clock), access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, "127.0.0.1", port).start()
            sessions: list[aiohttp.ClientSession] = []

            async def close_clients() -> None:
                for http in sessions:
                    await http.close()

            stack.push_async_callback(close_clients)
            return Gateway(f"http://127.0.0.1:{port}", clock, runner.app, settings, sessions)

        yield serve


async def reached_database(gateway: Gateway) -> Client:
    """A client, once the gateway has reached its own fresh cluster: the first connections
    there can take longer than the short SQL deadline these tests set, and the set-up, not the
    outage under test, would then be what times out."""
    probe = await gateway.client()
    deadline = time.monotonic() + 30
    while (await probe.get("/healthz")).status != 200:
        assert time.monotonic() < deadline, "the gateway never reached its database"
        await asyncio.sleep(0.2)
    return probe
