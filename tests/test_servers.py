"""The server fixtures in tests/plugins/servers.py do what they promise."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
import redis.exceptions
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.plugins.servers import (
    CHROMIUM_FLAGS,
    PostgresServer,
    RedisServer,
    free_port,
    plain_postgres_url,
)


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seen_databases() -> list[str]:
    return []


async def test_postgres_select_1(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    conn = await asyncpg.connect(plain_postgres_url(postgres_url))
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert (await conn.fetchval("SHOW fsync")) == "off"
    finally:
        await conn.close()


@pytest.mark.parametrize("run", [1, 2])
async def test_postgres_database_is_fresh_and_distinct(
    run: int, postgres_url: str, postgres_server: PostgresServer, seen_databases: list[str]
) -> None:
    dbname = postgres_url.rsplit("/", 1)[1]
    for previous in seen_databases:
        assert previous != dbname
        assert previous not in postgres_server.databases(), "previous test's db was not dropped"
    seen_databases.append(dbname)
    conn = await asyncpg.connect(plain_postgres_url(postgres_url))
    try:
        assert await conn.fetchval("SELECT current_database()") == dbname
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == 0
        await conn.execute("CREATE TABLE leftover (id int)")  # must not be seen by run 2
    finally:
        await conn.close()


def test_postgres_runs_on_loopback_only(postgres_server: PostgresServer) -> None:
    assert postgres_server.running
    assert postgres_server.psql("SHOW listen_addresses").strip() == "127.0.0.1"
    assert postgres_server.admin_url.endswith(f"127.0.0.1:{postgres_server.port}/postgres")


def test_postgres_marker_is_added(request: pytest.FixtureRequest, postgres_url: str) -> None:
    assert request.node.get_closest_marker("postgres") is not None


# --- SQLite / both -----------------------------------------------------------------------------


def test_sqlite_url(sqlite_url: str, tmp_path: Path) -> None:
    assert sqlite_url == f"sqlite+aiosqlite:///{tmp_path}/gateway.db"


async def test_database_url_runs_on_both(database_url: str, request: pytest.FixtureRequest) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO t (id) VALUES (1)"))
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await engine.dispose()
    is_postgres = request.node.callspec.id == "postgresql"
    assert database_url.startswith("postgresql+asyncpg://" if is_postgres else "sqlite+aiosqlite")
    assert (request.node.get_closest_marker("postgres") is not None) == is_postgres


# --- Redis -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_dbs_used() -> list[int]:
    return []


async def test_redis_set_get(redis_url: str, redis_dbs_used: list[int]) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set("gateway:test", "hello")
        assert await client.get("gateway:test") == b"hello"
    finally:
        await client.aclose()
    redis_dbs_used.append(int(redis_url.rsplit("/", 1)[1]))


def test_redis_db_flushed_after_test(redis_server: RedisServer, redis_dbs_used: list[int]) -> None:
    assert redis_dbs_used, "runs after test_redis_set_get"
    assert redis_server.command("DBSIZE", db=redis_dbs_used[-1]) == b":0"


async def test_redis_stop_and_restart(redis_url: str, redis_server: RedisServer) -> None:
    port = redis_server.port
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set("k", "v")
        redis_server.stop(kill=True)
        assert not redis_server.running
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.get("k")
        redis_server.start()
        assert redis_server.port == port
        assert await client.get("k") is None  # no persistence: a restart loses everything
        await client.set("k", "again")
        assert await client.get("k") == b"again"
    finally:
        await client.aclose()


def test_redis_left_stopped_is_restarted(redis_url: str, redis_server: RedisServer) -> None:
    redis_server.stop()  # and do not start it: the fixture's teardown must


def test_redis_running_again(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_server.running
    assert redis_server.command("PING") == b"+PONG"


# --- Chromium ----------------------------------------------------------------------------------


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body><p id='x'>gateway fixture page</p></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_chromium_renders_local_page(chromium_path: str, page_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [chromium_path, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path}", "--dump-dom", page_url],
        capture_output=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    assert b"gateway fixture page" in result.stdout
