"""Exits fail safe: with the live state (Redis) down, leaving, withdrawing a consent and a
host's end still succeed and are stored in SQL; with SQL down they answer 503 with Retry-After
(the page retries), never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.deps.conftest import ServeGateway, StoppablePostgres, reached_database
from tests.http.world import World, build_world
from tests.live_media._session import People
from tests.plugins.gateway_server import Answer, Client
from tests.plugins.servers import RedisServer

_ARRIVED: list[People] = []


@pytest.fixture(autouse=True)
async def _close_media() -> AsyncIterator[None]:
    yield
    while _ARRIVED:
        await _ARRIVED.pop().close()


async def seated(world: World) -> dict[str, Client]:
    """Tutor and observer in with their media connected (adults count once connected), then a
    child admitted; each from their own device."""
    people = People(world)
    _ARRIVED.append(people)
    devices = {}
    for name in ("Tina Tutor", "Oscar Observer"):
        devices[name] = (await people.arrive(name)).device
    devices["Sam Green"] = await world.gateway.client()
    answer = await world.join("Sam Green", devices["Sam Green"])
    assert answer.status == 200 and answer.body["outcome"] == "admit", answer.body
    return devices


async def leave(world: World, devices: dict[str, Client], name: str) -> Answer:
    return await devices[name].post("/v1/leave", {"token": world.invites[name]["token"]})


async def end(world: World, devices: dict[str, Client]) -> Answer:
    token = world.invites["Tina Tutor"]["token"]
    return await devices["Tina Tutor"].post("/v1/live/end", {"token": token})


async def withdraw(world: World) -> Answer:
    return await world.consent("Ada Hill", "participation", "Harry Hill", "guardian", "withdraw")


def assert_retry_later(answer: Answer) -> None:
    assert answer.status == 503, answer.body
    assert answer.code == "database_unavailable", answer.body
    assert int(answer.headers["Retry-After"]) >= 1


async def test_leave_and_withdrawal_succeed_with_redis_down(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, serve_gateway: ServeGateway
) -> None:
    gateway = await serve_gateway(f"sqlite+aiosqlite:///{tmp_path}/gateway.db", redis_url)
    world = await build_world(gateway)
    devices = await seated(world)
    redis_server.stop()
    answer = await leave(world, devices, "Sam Green")
    assert answer.status == 200 and answer.body == {"left": True}, answer.body
    assert (await withdraw(world)).status == 201


async def test_host_can_end_with_redis_down_and_the_end_is_stored(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, serve_gateway: ServeGateway
) -> None:
    gateway = await serve_gateway(f"sqlite+aiosqlite:///{tmp_path}/gateway.db", redis_url)
    world = await build_world(gateway)
    devices = await seated(world)
    redis_server.stop()
    answer = await end(world, devices)
    assert answer.status == 200, answer.body
    session = await world.admin.get(f"/v1/sessions/{world.session['id']}")
    assert session.body["ended_at"] is not None


async def test_concern_is_stored_and_acknowledged_with_redis_down(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, serve_gateway: ServeGateway
) -> None:
    gateway = await serve_gateway(f"sqlite+aiosqlite:///{tmp_path}/gateway.db", redis_url)
    world = await build_world(gateway)
    devices = await seated(world)
    redis_server.stop()
    token = world.invites["Sam Green"]["token"]
    answer = await devices["Sam Green"].post("/v1/live/concern", {"token": token})
    assert answer.status == 201, answer.body
    assert answer.body["message"] == (
        "Your concern is recorded and the safeguarding lead is being told."
    )
    incidents = await world.admin.get("/v1/incidents")
    assert len(incidents.body["items"]) == 1


async def test_exits_answer_503_with_retry_after_when_sql_is_down(
    stoppable_postgres: StoppablePostgres, own_postgres_url: str, serve_gateway: ServeGateway
) -> None:
    gateway = await serve_gateway(own_postgres_url)
    await reached_database(gateway)
    world = await build_world(gateway)
    devices = await seated(world)
    stoppable_postgres.stop()
    assert_retry_later(await leave(world, devices, "Sam Green"))
    assert_retry_later(await end(world, devices))
    assert_retry_later(await withdraw(world))

    stoppable_postgres.restart_same_port()  # the page's retry then goes through
    assert (await leave(world, devices, "Sam Green")).status == 200
    assert (await withdraw(world)).status == 201
    assert (await end(world, devices)).status == 200
    session = await world.admin.get(f"/v1/sessions/{world.session['id']}")
    assert session.body["ended_at"] is not None
