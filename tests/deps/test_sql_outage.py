"""SQL down or slow: every answer is a 503 with Retry-After within the deadline, never a 500 or
a hang, never an admission; /healthz names SQL; when the database is back, everything works."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path

import asyncpg

from tests.deps.conftest import (
    MARGIN,
    SQL_TIMEOUT,
    ServeGateway,
    StoppablePostgres,
    reached_database,
)
from tests.http.world import VETTING, World, build_world
from tests.plugins.gateway_server import Answer
from tests.plugins.servers import plain_postgres_url


def assert_unavailable(answer: Answer, code: str) -> None:
    assert answer.status == 503, (answer.status, answer.body)
    assert answer.code == code, answer.body
    assert int(answer.headers["Retry-After"]) >= 1
    assert "postgres" not in str(answer.body).lower()  # no driver error reaches the client


async def staff_write(world: World) -> Answer:
    return await world.admin.post(
        "/v1/staff",
        {
            "name": "Nell New",
            "email": "nell.new@example.org",
            "roles": ["observer"],
            "vetting": VETTING,
        },
    )


async def test_postgres_stopped_answers_503_and_healthz_names_sql(
    stoppable_postgres: StoppablePostgres, own_postgres_url: str, serve_gateway: ServeGateway
) -> None:
    gateway = await serve_gateway(own_postgres_url)
    probe = await reached_database(gateway)
    world = await build_world(gateway)
    healthy = await probe.get("/healthz")
    assert healthy.status == 200
    assert healthy.body == {"status": "ok", "sql": "ok", "live_state": "ok"}

    stoppable_postgres.stop()
    started = time.monotonic()
    assert_unavailable(await staff_write(world), "database_unavailable")
    assert_unavailable(await world.join("Tina Tutor"), "database_unavailable")
    health = await probe.get("/healthz")
    assert time.monotonic() - started < 3 * SQL_TIMEOUT + MARGIN
    assert health.status == 503
    assert health.body == {"status": "degraded", "sql": "unavailable", "live_state": "ok"}

    stoppable_postgres.restart_same_port()
    assert (await probe.get("/healthz")).status == 200
    assert (await world.join("Tina Tutor")).body["outcome"] == "admit"
    assert (await staff_write(world)).status == 201


async def test_held_lock_answers_503_within_deadline_and_burns_no_invite(
    own_postgres_url: str, serve_gateway: ServeGateway
) -> None:
    gateway = await serve_gateway(own_postgres_url)
    await reached_database(gateway)
    world = await build_world(gateway)
    other = await asyncpg.connect(plain_postgres_url(own_postgres_url))
    try:
        # Another session holds the audit log itself: no audited change can commit. (Holding
        # a chain's head row is not enough since chains: a writer then takes another chain.)
        holding = other.transaction()
        await holding.start()
        await other.execute("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE")
        for attempt in (staff_write(world), world.join("Tina Tutor")):
            started = time.monotonic()
            answer = await attempt
            assert time.monotonic() - started < 2 * SQL_TIMEOUT + MARGIN
            assert answer.status == 503 and answer.headers["Retry-After"], answer.body
            assert answer.code in ("audit_unavailable", "database_unavailable"), answer.body
        await holding.rollback()

        # A table lock stalls the reads a join starts with.
        holding = other.transaction()
        await holding.start()
        await other.execute("LOCK TABLE invites IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        answer = await world.join("Oscar Observer")
        assert time.monotonic() - started < 2 * SQL_TIMEOUT + MARGIN
        assert_unavailable(answer, "database_unavailable")
        await holding.rollback()
    finally:
        await other.close()

    # The refused first join bound no device: the tutor can join from any device now.
    assert (await world.join("Tina Tutor")).body["outcome"] == "admit"
    assert (await world.join("Oscar Observer")).body["outcome"] == "admit"


async def test_sqlite_writer_elsewhere_answers_503_within_busy_timeout(
    serve_gateway: ServeGateway, tmp_path: Path
) -> None:
    path = tmp_path / "gateway.db"
    gateway = await serve_gateway(f"sqlite+aiosqlite:///{path}")
    world = await build_world(gateway)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        started = time.monotonic()
        answer = await staff_write(world)
        assert time.monotonic() - started < 2 * SQL_TIMEOUT + MARGIN
        assert answer.status == 503 and answer.headers["Retry-After"], answer.body
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert (await staff_write(world)).status == 201


def cluster_pids(server: StoppablePostgres) -> list[int]:
    """The postmaster and every process it forked (backends, writer, checkpointer...)."""
    process = server._proc  # the fixture's own process handle: there is no public pid
    assert process is not None
    pids = [process.pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == process.pid:  # its parent is the postmaster
            pids.append(int(stat.parent.name))
    return pids


async def test_frozen_postgres_answers_503_within_deadline(
    stoppable_postgres: StoppablePostgres, own_postgres_url: str, serve_gateway: ServeGateway
) -> None:
    """A server that stops answering altogether (no statement_timeout can fire there): the
    gateway's own deadlines still answer."""
    gateway = await serve_gateway(own_postgres_url)
    probe = await reached_database(gateway)
    world = await build_world(gateway)
    pids = cluster_pids(stoppable_postgres)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        for attempt in (world.join("Tina Tutor"), staff_write(world), probe.get("/healthz")):
            started = time.monotonic()
            answer = await attempt
            assert time.monotonic() - started < 2 * SQL_TIMEOUT + MARGIN
            assert answer.status == 503, answer.body
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    # Back: a join admitted again, as a client following Retry-After would see it. On a busy
    # machine the first one may still meet a connection that timed out while frozen (503).
    deadline = time.monotonic() + 10
    while (again := await world.join("Tina Tutor")).status != 200:
        assert again.status == 503, again.body
        assert time.monotonic() < deadline, "the gateway did not recover"
        await asyncio.sleep(0.2)
    assert again.body["outcome"] == "admit"
