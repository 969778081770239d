"""Redis (the shared live state) stopped or paused: joins are refused with 503
live_state_unavailable and Retry-After within the deadline, the refusal is audited in SQL,
/healthz names the live state; when Redis is back, joins work again."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from tests.deps.conftest import MARGIN, REDIS_TIMEOUT, ServeGateway, paused, redis_pid
from tests.http.world import World, build_world
from tests.plugins.gateway_server import ROOT, Answer, Gateway
from tests.plugins.servers import RedisServer

PROBE_SECONDS = 1.0


def refused_for_live_state(path: Path) -> int:
    """How many refusals the audit log holds for an unavailable live state."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT entry FROM audit_log WHERE kind = 'request.refused'").fetchall()
    return sum(b'"code":"live_state_unavailable"' in bytes(row[0]) for row in rows)


async def redis_world(
    serve_gateway: ServeGateway, tmp_path: Path, redis_url: str, *, passwords: bool = True
) -> World:
    policy = (ROOT / "policies" / "default.toml").read_text()
    if not passwords:
        policy = policy.replace("password_required = true", "password_required = false")
    (tmp_path / "policy.toml").write_text(policy)
    gateway = await serve_gateway(
        f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        redis_url,
        policy_path=tmp_path / "policy.toml",
    )
    return await build_world(gateway)


async def without_password(world: World) -> None:
    """A second session, without a password (the policy must allow it), for the tutor and the
    observer: their joins reach the live state without passing the attempt limiter."""
    await world.new_session("Tina Tutor", password=None)
    assert (await world.enrol("Oscar Observer", "observer", "staff")).status == 201
    for name in ("Tina Tutor", "Oscar Observer"):
        await world.invite(name)


def assert_live_state_refusal(answer: Answer, started: float) -> None:
    assert time.monotonic() - started < 4 * REDIS_TIMEOUT + MARGIN
    assert answer.status == 503, answer.body
    assert answer.code == "live_state_unavailable", answer.body
    assert "redis" not in str(answer.body).lower()  # no address or driver error leaks


async def assert_health(gateway: Gateway, live_state: str) -> None:
    probe = await gateway.client()
    started = time.monotonic()
    health = await probe.get("/healthz")
    assert time.monotonic() - started < PROBE_SECONDS + MARGIN
    assert health.body == {
        "status": "ok" if live_state == "ok" else "degraded",
        "sql": "ok",
        "live_state": live_state,
    }
    assert health.status == (200 if live_state == "ok" else 503)


async def test_redis_stopped_password_join_is_503_audited_and_recovers(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, serve_gateway: ServeGateway
) -> None:
    world = await redis_world(serve_gateway, tmp_path, redis_url)
    redis_server.stop()
    device = await world.gateway.client()
    started = time.monotonic()
    answer = await world.join("Tina Tutor", device)
    assert_live_state_refusal(answer, started)
    assert int(answer.headers["Retry-After"]) >= 1
    assert refused_for_live_state(tmp_path / "gateway.db") == 1  # SQL is up: audited there
    await assert_health(world.gateway, "unavailable")

    redis_server.start()
    await assert_health(world.gateway, "ok")
    assert (await world.join("Tina Tutor", device)).body["outcome"] == "admit"


async def test_redis_paused_join_is_503_within_deadline_and_recovers(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, serve_gateway: ServeGateway
) -> None:
    world = await redis_world(serve_gateway, tmp_path, redis_url, passwords=False)
    await without_password(world)
    with paused(redis_pid(redis_server)):
        for name in ("Tina Tutor", "Oscar Observer"):
            started = time.monotonic()
            assert_live_state_refusal(await world.join(name, password=None), started)
        await assert_health(world.gateway, "unavailable")
    again = await world.join("Tina Tutor", password=None)
    assert again.status == 200 and again.body["outcome"] == "admit", again.body
    await assert_health(world.gateway, "ok")


async def test_redis_paused_password_join_is_503_and_audited(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, serve_gateway: ServeGateway
) -> None:
    world = await redis_world(serve_gateway, tmp_path, redis_url)
    with paused(redis_pid(redis_server)):
        started = time.monotonic()
        answer = await world.join("Oscar Observer")
        assert_live_state_refusal(answer, started)
        assert int(answer.headers["Retry-After"]) >= 1
    assert refused_for_live_state(tmp_path / "gateway.db") == 1


async def test_join_refused_for_live_state_says_when_to_retry(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, serve_gateway: ServeGateway
) -> None:
    world = await redis_world(serve_gateway, tmp_path, redis_url, passwords=False)
    await without_password(world)
    redis_server.stop()
    answer = await world.join("Tina Tutor", password=None)
    assert answer.status == 503 and answer.code == "live_state_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1


async def test_with_redis_down_a_child_is_refused_where_the_session_is_run_and_retries(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, serve_gateway: ServeGateway
) -> None:
    """The session's lease is held here and still fresh, so no claim reaches Redis: a child's
    admission still needs who is present and fails closed, audited, binding nothing. The host's
    re-join reads no presence (an adult counts only once connected), so it goes through."""
    world = await redis_world(serve_gateway, tmp_path, redis_url, passwords=False)
    await without_password(world)
    assert (await world.enrol("Sam Green", "child", "child")).status == 201
    await world.invite("Sam Green")
    host, child = await world.gateway.client(), await world.gateway.client()
    assert (await world.join("Tina Tutor", host, password=None)).body["outcome"] == "admit"
    redis_server.stop()
    try:
        started = time.monotonic()
        assert_live_state_refusal(await world.join("Sam Green", child, password=None), started)
        assert (await world.join("Tina Tutor", host, password=None)).body["outcome"] == "admit"
    finally:
        redis_server.start()
    assert refused_for_live_state(tmp_path / "gateway.db") == 1
    # Redis back: the same device is let in (held: no adult connected), not taken for another
    # device; the first tries may still meet the client reconnecting (503, as a Retry-After
    # client would see).
    deadline = time.monotonic() + 10
    while (again := await world.join("Sam Green", child, password=None)).status == 503:
        assert time.monotonic() < deadline, again.body
        await asyncio.sleep(0.2)
    assert again.status == 200 and again.body["outcome"] == "hold", again.body
