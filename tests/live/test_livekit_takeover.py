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

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from livekit import api

from gateway.app import LEASE_FLOOR_SECONDS
from tests.live._gateways import (
    join_body,
    post,
)
from tests.live._livekit_pair import Pair, livekit_pair, until
from tests.platforms._drivers import LiveKitArrival
from tests.plugins.livekit_server import LiveKitServer

pytestmark = [pytest.mark.slow, pytest.mark.media]

RECONCILE = 0.3
LEASE = max(3 * RECONCILE, LEASE_FLOOR_SECONDS)
WITHIN = LEASE + 10  # the lease runs out, the next join takes it; room for a busy machine


@pytest.fixture
async def pair(
    tmp_path: Path,
    redis_url: str,
    postgres_url: str,
    livekit_server: LiveKitServer,
    schema_at_head: Callable[[str], None],
) -> AsyncIterator[Pair]:
    schema_at_head(postgres_url)
    async with livekit_pair(
        tmp_path,
        redis_url,
        postgres_url,
        livekit_server,
        GATEWAY_RECONCILE_SECONDS=str(RECONCILE),
        GATEWAY_LIVE_HEARTBEAT_SECONDS="1",
        GATEWAY_LIVE_SWEEP_SECONDS="0.3",
    ) as running:
        yield running


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

    await until(child_granted, 20)
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

    await until(rejoined, WITHIN)
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
    await until(_gone(arrived["observer"]), 15)

    pair.a.process.kill()  # SIGKILL: A's memory of who it removed dies with it
    pair.a.process.wait(timeout=10)
    # Their token has not expired, and it carries full media (a vetted adult's): LiveKit
    # lets them back in, into the room with the child.
    comeback = await pair.driver.connect(arrived["observer"].ticket)
    assert comeback.room.isconnected()

    # B takes the session over by itself once A's lease ran out: it removes the connection
    # of someone removed (the comeback), keeps those who still stand, and holds the child
    # (one adult is not enough).
    await until(_gone(comeback), WITHIN)
    child = arrived["child"].room.local_participant.identity

    async def child_held() -> bool:
        listed = await pair.rooms.list_participants(
            api.ListParticipantsRequest(room=arrived["child"].room.name)
        )
        return any(
            p.identity == child and not p.permission.can_subscribe for p in listed.participants
        )

    await until(child_held, 15)
    assert arrived["child"].room.isconnected() and arrived["host"].room.isconnected()
    # A host joining again is served by B (a new admission: the old connection goes).
    answer = await _take_over(pair, "host")
    tutor = await pair.driver.connect(answer["media"], publish=True)
    await until(_gone(arrived["host"]), 15)
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
        await until(_gone(arrival), 15)
    listed = await pair.rooms.list_rooms(api.ListRoomsRequest(names=[room]))
    assert list(listed.rooms) == []
