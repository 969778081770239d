"""Two gateway processes on PostgreSQL and Redis, every organisation on a real LiveKit server,
and the session's owner killed outright (kill -9): what it knew in memory about admissions
and removals dies with it, and LiveKit's media does not (issue 10, points 3 and 7).

- A removed adult comes back with their unexpired token (LiveKit checks nothing else): once
  the other process runs the session (it takes it over by itself when the lease runs out), it
  removes every connection of someone who no longer stands; those who still stand stay, the
  child held while only one adult is there.
- The session ends through the other process before anyone came back: the LiveKit room it
  never opened is deleted all the same, and everyone in it disconnected.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from livekit import api

from gateway.app import LEASE_FLOOR_SECONDS
from tests.live._gateways import (
    Admin,
    Attendee,
    Served,
    SupervisedSession,
    create_org,
    environment,
    join_body,
    post,
    ready,
    serving,
    supervised_session,
)
from tests.platforms._drivers import LiveKitArrival, LiveKitDriver
from tests.plugins.livekit_server import LiveKitServer

pytestmark = [pytest.mark.slow, pytest.mark.media]

RECONCILE = 0.3
LEASE = max(3 * RECONCILE, LEASE_FLOOR_SECONDS)
WITHIN = LEASE + 10  # the lease runs out, the next join takes it; room for a busy machine


@dataclass
class Pair:
    a: Served
    b: Served
    admin: Admin
    session: SupervisedSession
    people: dict[str, Attendee]
    driver: LiveKitDriver
    rooms: Any  # LiveKit's RoomService, as an operator sees it


@pytest.fixture
async def pair(
    tmp_path: Path, redis_url: str, postgres_url: str, livekit_server: LiveKitServer
) -> AsyncIterator[Pair]:
    secret = tmp_path / "livekit.secret"
    secret.write_text(livekit_server.api_secret + "\n")
    secret.chmod(0o600)
    env = environment(
        tmp_path,
        redis_url,
        database_url=postgres_url,
        GATEWAY_RECONCILE_SECONDS=str(RECONCILE),
        GATEWAY_LIVE_HEARTBEAT_SECONDS="1",
        GATEWAY_LIVE_SWEEP_SECONDS="0.3",
        GATEWAY_LIVEKIT_URL=livekit_server.url,
        GATEWAY_LIVEKIT_API_KEY=livekit_server.api_key,
        GATEWAY_LIVEKIT_API_SECRET_FILE=str(secret),
        GATEWAY_LIVEKIT_ORGANISATIONS="*",
    )
    key = create_org(env)
    devices = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(4)]
    driver = LiveKitDriver(livekit_server)
    operator = api.LiveKitAPI(
        livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret
    )
    try:
        with serving(env, 2) as (a, b):
            admin_http = devices[0]
            await ready(admin_http, a.base)
            await ready(admin_http, b.base)
            session = await supervised_session(admin_http, b.base, key)
            people = {
                role: Attendee(role, device, session.tokens[role])
                for device, role in zip(devices[1:], ("host", "observer", "child"), strict=True)
            }
            yield Pair(a, b, Admin(admin_http, b.base, key), session, people, driver, operator.room)
    finally:
        await driver.close()
        await operator.aclose()
        for device in devices:
            await device.close()


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.1)


def _gone(arrival: LiveKitArrival) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return arrival.disconnected.is_set()

    return check


async def _everyone_on_a(pair: Pair) -> dict[str, LiveKitArrival]:
    """Tutor, observer and child join through A (its owner) and connect to LiveKit; the
    child is granted media once both adults are counted."""
    arrived: dict[str, LiveKitArrival] = {}
    for role in ("host", "observer", "child"):
        joined = await pair.people[role].join(pair.a.base)
        assert joined["media"]["platform"] == "livekit", joined["media"]
        arrived[role] = await pair.driver.connect(joined["media"], publish=role != "child")
    child = arrived["child"].room.local_participant.identity

    async def child_granted() -> bool:
        listed = await pair.rooms.list_participants(
            api.ListParticipantsRequest(room=arrived["child"].room.name)
        )
        return any(p.identity == child and p.permission.can_subscribe for p in listed.participants)

    await _until(child_granted, 20)
    return arrived


async def _take_over(pair: Pair, role: str) -> dict[str, Any]:
    """`role` re-joins through B until B runs the session (A's lease ran out)."""
    person = pair.people[role]
    answer: dict[str, Any] = {}

    async def rejoined() -> bool:
        async with person.device.post(
            pair.b.base + "/v1/join", json=join_body(person.token)
        ) as response:
            answer.clear()
            answer.update(await response.json())
            return response.status == 200

    await _until(rejoined, WITHIN)
    return answer


async def test_a_removed_adult_back_with_an_old_token_is_removed_by_the_new_owner(
    pair: Pair,
) -> None:
    arrived = await _everyone_on_a(pair)
    observer = pair.people["observer"]
    # The host removes the observer (through B: any process takes it; A, the owner, acts).
    await post(
        pair.people["host"].device,
        pair.b.base + "/v1/live/remove",
        {"token": pair.people["host"].token, "identity": observer.identity},
    )
    await _until(_gone(arrived["observer"]), 15)

    pair.a.process.kill()  # SIGKILL: A's memory of who it removed dies with it
    pair.a.process.wait(timeout=10)
    # Their token has not expired, and it carries full media (a vetted adult's): LiveKit
    # lets them back in, into the room with the child.
    comeback = await pair.driver.connect(arrived["observer"].ticket)
    assert comeback.room.isconnected()

    # B takes the session over by itself once A's lease ran out: it removes the connection
    # of someone removed (the comeback), keeps those who still stand, and holds the child
    # (one adult is not enough).
    await _until(_gone(comeback), WITHIN)
    child = arrived["child"].room.local_participant.identity

    async def child_held() -> bool:
        listed = await pair.rooms.list_participants(
            api.ListParticipantsRequest(room=arrived["child"].room.name)
        )
        return any(
            p.identity == child and not p.permission.can_subscribe for p in listed.participants
        )

    await _until(child_held, 15)
    assert arrived["child"].room.isconnected() and arrived["host"].room.isconnected()
    # A host joining again is served by B (a new admission: the old connection goes).
    answer = await _take_over(pair, "host")
    tutor = await pair.driver.connect(answer["media"], publish=True)
    await _until(_gone(arrived["host"]), 15)
    assert tutor.room.isconnected()
    again = await observer.device.post(pair.b.base + "/v1/join", json=join_body(observer.token))
    assert again.status == 403  # and no new token for them, from any process


async def test_ending_through_a_process_that_never_opened_the_room_deletes_it(
    pair: Pair,
) -> None:
    arrived = await _everyone_on_a(pair)
    room = arrived["host"].room.name
    pair.a.process.kill()
    pair.a.process.wait(timeout=10)

    # The host ends it through B (the page's "End" button), before anyone came back.
    host = pair.people["host"]
    await post(host.device, pair.b.base + "/v1/live/end", {"token": host.token})

    for arrival in arrived.values():
        await _until(_gone(arrival), 15)
    listed = await pair.rooms.list_rooms(api.ListRoomsRequest(names=[room]))
    assert list(listed.rooms) == []
