"""The session's owner killed outright (SIGKILL) while everyone stays connected to a real
LiveKit server (issue 10, points 1 and 7): two gateway processes on PostgreSQL and Redis, and
nobody joins again. Within a round of the lease running out the other process runs the session
from LiveKit's own list (audited `authority.taken_over` once): supervision is evaluated again,
so when the observer goes the child is held on LiveKit and an incident is opened; and a session
ended while its owner is dead has its LiveKit room closed, everyone in it disconnected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from livekit import api, rtc

from gateway.app import LEASE_FLOOR_SECONDS
from tests.live._gateways import (
    post,
)
from tests.live._livekit_pair import Pair, livekit_pair, until
from tests.multinode.conftest import RECONCILE
from tests.platforms._drivers import LiveKitArrival
from tests.plugins.livekit_server import LiveKitServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.media,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.livekit,
]

LEASE = max(3 * RECONCILE, LEASE_FLOOR_SECONDS)  # what app.py gives a session's lease
# The lease runs out, the next round takes the session over: LEASE + RECONCILE on an idle
# machine; room for a loaded one (two cores shared with other test runs).
WITHIN = LEASE + RECONCILE + 8
GRACE = 2  # seconds the child stays as they are after an adult drops out (then held)


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
        grace_seconds=GRACE,
        GATEWAY_RECONCILE_SECONDS=str(RECONCILE),
        GATEWAY_LIVE_HEARTBEAT_SECONDS="2",
        GATEWAY_LIVE_SWEEP_SECONDS=str(RECONCILE),
    ) as running:
        yield running


async def _listed(pair: Pair, arrival: LiveKitArrival) -> api.ParticipantInfo | None:
    """How LiveKit itself lists this participant now (None: not in the room)."""
    identity = arrival.room.local_participant.identity
    listed = await pair.rooms.list_participants(api.ListParticipantsRequest(room=arrival.room.name))
    return next((p for p in listed.participants if p.identity == identity), None)


async def _everyone_on_a(pair: Pair) -> dict[str, LiveKitArrival]:
    """Tutor, observer and child join through A (its owner) and connect to LiveKit; the
    child is granted media once both adults are counted, and receives the tutor's track."""
    arrived: dict[str, LiveKitArrival] = {}
    for role in ("host", "observer", "child"):
        joined = await pair.people[role].join(pair.a.base)
        assert joined["media"]["platform"] == "livekit", joined["media"]
        arrived[role] = await pair.driver.connect(joined["media"], publish=role != "child")

    async def child_sees_tutor() -> bool:
        listed = await _listed(pair, arrived["child"])
        return (
            listed is not None
            and listed.permission.can_subscribe
            and _tutor_track_received(arrived["child"], arrived["host"])
        )

    await until(child_sees_tutor, 30)
    return arrived


def _tutor_track_received(child: LiveKitArrival, tutor: LiveKitArrival) -> bool:
    remote = child.room.remote_participants.get(tutor.room.local_participant.identity)
    return remote is not None and any(
        isinstance(p.track, rtc.RemoteTrack) for p in remote.track_publications.values()
    )


async def _killed(pair: Pair) -> float:
    pair.a.process.kill()  # SIGKILL: no lease released, nothing said to anyone
    await asyncio.to_thread(pair.a.process.wait, 10)
    return time.monotonic()


async def test_the_other_process_takes_over_and_holds_the_child_when_the_observer_goes(
    pair: Pair,
) -> None:
    arrived = await _everyone_on_a(pair)
    killed_at = await _killed(pair)

    # Nobody joins again: B takes the session over by itself, once.
    async def taken_over() -> bool:
        return bool(await pair.admin.audit("authority.taken_over"))

    await until(taken_over, WITHIN)
    took = time.monotonic() - killed_at
    assert took >= LEASE - 1, took  # not before A's lease ran out
    print(f"taken over {took:.1f} s after the kill (lease {LEASE} s, round {RECONCILE} s)")
    # Everyone stays connected (B vouches for what A admitted), and the child, held first,
    # is released again once B has counted both adults.
    assert all(arrival.room.isconnected() for arrival in arrived.values())

    async def child_subscribes_again() -> bool:
        listed = await _listed(pair, arrived["child"])
        return listed is not None and listed.permission.can_subscribe

    await until(child_subscribes_again, 15)

    # The observer goes (their connection drops; nobody says so to any gateway).
    await arrived["observer"].leave()

    # B, the session's authority now, holds the child on LiveKit: no media either way (as
    # LiveKit lists its permissions; it drops the child's subscriptions when it applies them).
    async def child_held() -> bool:
        listed = await _listed(pair, arrived["child"])
        return (
            listed is not None
            and not listed.permission.can_subscribe
            and not listed.permission.can_publish
        )

    await until(child_held, GRACE + 15)
    incidents = await pair.admin.incidents(timeout=15)
    assert [i["kind"] for i in incidents] == ["supervision_breach"]
    assert arrived["child"].room.isconnected()  # held, not thrown out
    taken = await pair.admin.audit("authority.taken_over")
    assert len(taken) == 1, taken
    assert taken[0]["session_id"] == pair.session.id and taken[0]["actor"] == "gateway"
    assert set(taken[0]["data"]) == {"process", "fence", "seats"}  # ids and counts only
    assert taken[0]["data"]["seats"] == 3


async def test_a_session_ended_while_its_owner_is_dead_has_its_room_closed(
    pair: Pair,
) -> None:
    arrived = await _everyone_on_a(pair)
    room = arrived["host"].room.name
    await _killed(pair)

    # Ended through the other process's admin API (an operator, not a participant's page):
    # nothing there ever opened the room, and its owner cannot close it.
    await post(
        pair.admin.http, f"{pair.b.base}/v1/sessions/{pair.session.id}/end", {}, pair.admin.key
    )

    for arrival in arrived.values():
        await until(lambda arrival=arrival: _async(arrival.disconnected.is_set()), WITHIN)
    listed = await pair.rooms.list_rooms(api.ListRoomsRequest(names=[room]))
    assert list(listed.rooms) == []
    closed = await pair.admin.audit("authority.room_closed")
    assert [e["session_id"] for e in closed] == [pair.session.id]
    assert await pair.admin.audit("authority.taken_over") == []  # never run again


async def _async(value: bool) -> bool:
    return value
