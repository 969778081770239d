"""One contract, every platform (issue 10): the embedded relay and a real LiveKit server behave
the same through the MediaPlatform port. Participants are real: an aiortc peer on the relay,
the `livekit` real-time SDK on LiveKit.

What the gateway relies on: someone admitted is listed connected, with the grants they were
given; a hold takes publishing and subscribing away (the platform's own list says so) and a
release gives them back; a removal disconnects; a room nobody opened lists nobody; acting on
someone not connected changes nothing and does not fail; closing a room disconnects everyone.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from gateway.domain.models import Grants
from tests.platforms._drivers import Driver, LiveKitDriver, RelayDriver, eventually

pytestmark = pytest.mark.media

SPEAKER = Grants(can_publish=True, can_subscribe=True)
HELD = Grants.none()


@pytest.fixture(params=["relay", pytest.param("livekit", marks=pytest.mark.livekit)])
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    chosen: Driver
    if request.param == "relay":
        chosen = RelayDriver()
    else:
        chosen = LiveKitDriver(request.getfixturevalue("livekit_server"))
    try:
        yield chosen
    finally:
        await chosen.close()


def _room() -> str:
    return "session-" + secrets.token_hex(6)


def _identity() -> str:
    return "p_" + secrets.token_hex(8)


async def _listed(driver: Driver, room: str, identity: str) -> Grants | None:
    """The grants the platform itself lists for a connected participant, else None."""
    for each in await driver.platform.participants(room):
        if each.identity == identity and each.connected:
            return Grants(each.grants.can_publish, each.grants.can_subscribe)
    return None


async def test_someone_admitted_is_listed_connected_with_their_grants(driver: Driver) -> None:
    room, tutor, viewer = _room(), _identity(), _identity()
    await driver.arrive(room, tutor, SPEAKER)
    await driver.arrive(room, viewer, Grants(can_publish=False, can_subscribe=True))

    await eventually(lambda: _is(driver, room, tutor, SPEAKER))
    await eventually(lambda: _is(driver, room, viewer, Grants(False, True)))


async def test_a_hold_takes_publishing_and_subscribing_away_and_a_release_gives_them_back(
    driver: Driver,
) -> None:
    room, child = _room(), _identity()
    await driver.arrive(room, child, SPEAKER)
    await eventually(lambda: _is(driver, room, child, SPEAKER))

    await driver.platform.set_grants(room, child, HELD)
    await eventually(lambda: _is(driver, room, child, HELD))

    await driver.platform.set_grants(room, child, SPEAKER)
    await eventually(lambda: _is(driver, room, child, SPEAKER))


async def test_a_removal_disconnects_and_the_participant_is_no_longer_listed(
    driver: Driver,
) -> None:
    room, stays, removed = _room(), _identity(), _identity()
    await driver.arrive(room, stays, SPEAKER)
    await driver.arrive(room, removed, SPEAKER)
    await eventually(lambda: _is(driver, room, removed, SPEAKER))

    await driver.platform.remove(room, removed)

    await eventually(lambda: _gone(driver, room, removed))
    assert await _listed(driver, room, stays) == SPEAKER


async def test_a_room_nobody_opened_lists_nobody_and_acting_on_absentees_changes_nothing(
    driver: Driver,
) -> None:
    room, present = _room(), _identity()
    assert list(await driver.platform.participants(_room())) == []
    await driver.arrive(room, present, SPEAKER)
    await eventually(lambda: _is(driver, room, present, SPEAKER))

    absent = _identity()
    await driver.platform.set_grants(room, absent, HELD)
    await driver.platform.remove(room, absent)
    await driver.platform.set_grants(_room(), absent, HELD)
    await driver.platform.remove(_room(), absent)

    assert [p.identity for p in await driver.platform.participants(room)] == [present]


async def test_closing_a_room_disconnects_everyone(driver: Driver) -> None:
    room, one, two = _room(), _identity(), _identity()
    await driver.arrive(room, one, SPEAKER)
    await driver.arrive(room, two, HELD)
    await eventually(lambda: _is(driver, room, two, HELD))

    await driver.platform.close_room(room)

    await eventually(lambda: _nobody(driver, room))


async def _is(driver: Driver, room: str, identity: str, grants: Grants) -> bool:
    return await _listed(driver, room, identity) == grants


async def _gone(driver: Driver, room: str, identity: str) -> bool:
    return all(p.identity != identity for p in await driver.platform.participants(room))


async def _nobody(driver: Driver, room: str) -> bool:
    return not [p for p in await driver.platform.participants(room) if p.connected]
