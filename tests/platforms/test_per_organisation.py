"""The platform is chosen per organisation (issue 10, point 1): the organisations named in
GATEWAY_LIVEKIT_ORGANISATIONS run on LiveKit, every other one on the embedded relay, and a
session stays on the platform its room was opened on."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import api

from gateway.adapters.platform_relay import RelayPlatform
from gateway.adapters.platforms import PlatformsByOrganisation
from gateway.domain.models import Grants
from tests.platforms._drivers import LiveKitArrival, LiveKitDriver, eventually
from tests.plugins.livekit_server import LiveKitServer

SPEAKER = Grants(can_publish=True, can_subscribe=True)


@pytest.fixture
async def livekit(livekit_server: LiveKitServer) -> AsyncIterator[LiveKitDriver]:
    driver = LiveKitDriver(livekit_server)
    try:
        yield driver
    finally:
        await driver.close()


async def _livekit_rooms(server: LiveKitServer) -> set[str]:
    client = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
    try:
        listed = await client.room.list_rooms(api.ListRoomsRequest())
        return {room.name for room in listed.rooms}
    finally:
        await client.aclose()


@pytest.mark.parametrize("chosen", [frozenset({"org-on-livekit"}), frozenset({"*"})])
async def test_named_organisations_run_on_livekit_the_others_on_the_relay(
    livekit: LiveKitDriver, livekit_server: LiveKitServer, chosen: frozenset[str]
) -> None:
    relay = RelayPlatform()
    platforms = PlatformsByOrganisation(relay, livekit.platform, chosen, _nowhere)
    on_livekit, on_relay = "s-" + secrets.token_hex(4), "s-" + secrets.token_hex(4)
    try:
        await platforms.open_room(on_livekit, "org-on-livekit")
        await platforms.open_room(on_relay, "org-elsewhere")

        ticket: Any = await platforms.admit(on_livekit, "p_one", "Tutor", SPEAKER)
        assert ticket["platform"] == "livekit"
        assert livekit.platform.room_name(on_livekit) in await _livekit_rooms(livekit_server)
        other = await platforms.admit(on_relay, "p_two", "Tutor", SPEAKER)
        if "*" in chosen:
            assert other is not None and other["platform"] == "livekit"
        else:
            assert other is None  # the relay: signalling through the gateway
            assert livekit.platform.room_name(on_relay) not in await _livekit_rooms(livekit_server)
    finally:
        await relay.close()


async def _nowhere(session_id: str) -> str | None:
    return None


async def test_a_room_opened_by_another_process_is_closed_on_its_organisations_platform(
    livekit: LiveKitDriver, livekit_server: LiveKitServer
) -> None:
    """A session ends through a process that never opened its room (the owner killed, or the
    host's request reaching another instance): its LiveKit room is deleted all the same, and
    everyone in it disconnected."""
    opened, on_relay = "s-" + secrets.token_hex(4), "s-" + secrets.token_hex(4)
    organisations = {opened: "org-on-livekit", on_relay: "org-elsewhere"}

    async def organisation_of(session_id: str) -> str | None:
        return organisations.get(session_id)

    tutor = await livekit.arrive(opened, "p_tutor", SPEAKER)  # opened by "the other process"
    relay = RelayPlatform()
    here = PlatformsByOrganisation(
        relay, livekit.platform, frozenset({"org-on-livekit"}), organisation_of
    )
    try:
        await here.close_room(on_relay)  # the relay's: LiveKit is not asked at all
        assert livekit.platform.room_name(opened) in await _livekit_rooms(livekit_server)

        await here.close_room(opened)

        assert livekit.platform.room_name(opened) not in await _livekit_rooms(livekit_server)
        await eventually(_disconnected(tutor))
    finally:
        await relay.close()


def _disconnected(arrival: LiveKitArrival) -> Any:
    async def check() -> bool:
        return arrival.disconnected.is_set()

    return check
