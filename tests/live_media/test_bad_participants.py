"""Bad input while a session runs: flapping adults, removed participants coming back, and
participants trying to rename themselves."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.http.live_api import LIVE
from tests.http.world import build_world
from tests.live_media.test_supervised_session import _connect, _join
from tests.media._peers import Client as Peer
from tests.media._peers import wait_until
from tests.plugins.gateway_server import Gateway

pytestmark = pytest.mark.media


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def _child_can_subscribe(gateway: Gateway, session_id: str, identity: str) -> bool:
    platform = gateway.app[LIVE]._platform
    return any(
        p.identity == identity and p.grants.can_subscribe for p in platform.participants(session_id)
    )


async def test_flapping_adult_leaves_the_child_held_then_released(gateway: Gateway) -> None:
    world = await build_world(gateway)
    peers: list[Peer] = []
    try:
        for name in ("Tina Tutor", "Sam Green"):
            _, joined = await _join(world, name)
            peer = Peer(name, slots=2)
            peers.append(peer)
            await _connect(gateway, joined["media"]["credential"], peer)  # type: ignore[index]
            if name == "Sam Green":
                child = joined["participant"]["identity"]  # type: ignore[index]
        observer, _ = await _join(world, "Oscar Observer")
        token = {"token": world.invites["Oscar Observer"]["token"]}
        for _ in range(8):  # join, leave, join, leave... as fast as the browser can
            assert (await observer.post("/v1/leave", token)).status == 200
            rejoined = await world.join("Oscar Observer", observer)
            assert rejoined.body["outcome"] == "admit"
        assert (await observer.post("/v1/leave", token)).status == 200
        gateway.clock.advance(timedelta(seconds=61))
        sid = world.session["id"]
        await wait_until(lambda: not _child_can_subscribe(gateway, sid, child), timeout=5)

        assert (await world.join("Oscar Observer", observer)).body["outcome"] == "admit"
        await wait_until(lambda: _child_can_subscribe(gateway, sid, child), timeout=5)
        audit = (await world.admin.get("/v1/audit?limit=500")).body["items"]
        assert any(e["kind"] == "supervision.hold" for e in audit)
        assert (await gateway.services.store.verify_audit()).intact
    finally:
        for peer in peers:
            await peer.close()


async def test_removed_participant_cannot_come_back(gateway: Gateway) -> None:
    world = await build_world(gateway)
    host, _ = await _join(world, "Tina Tutor")
    await _join(world, "Oscar Observer")
    child_device, child = await _join(world, "Sam Green")
    identity = child["participant"]["identity"]  # type: ignore[index]
    removed = await host.post(
        "/v1/live/remove", {"token": world.invites["Tina Tutor"]["token"], "identity": identity}
    )
    assert removed.status == 200
    again = await world.join("Sam Green", child_device)  # same device, same invite
    assert again.status == 403 and again.code == "invite_invalid"  # one answer for bad invites
    unused = child["media"]["credential"]  # type: ignore[index]
    offer = await child_device.post("/v1/media/offer", {"credential": unused, "sdp": "v=0"})
    assert offer.status == 403 and offer.code == "credential_invalid"
    # Only the host may remove: the observer's attempt is refused and changes nothing.
    observer_device = await gateway.client()
    refused = await observer_device.post(
        "/v1/live/remove",
        {"token": world.invites["Oscar Observer"]["token"], "identity": identity},
    )
    assert refused.status == 403


async def test_participants_cannot_choose_or_change_their_display_name(gateway: Gateway) -> None:
    world = await build_world(gateway)
    device = await gateway.client()
    token = world.invites["Sam Green"]["token"]
    for body in (
        {"token": token, "password": "open-sesame", "display_name": "Admin"},
        {"token": token, "password": "open-sesame", "name": "Tina T."},
    ):
        answer = await device.post("/v1/join", body)
        assert answer.status == 400 and answer.code == "body_unknown_field"
    joined = await world.join("Sam Green", device)
    assert joined.body["participant"]["display_name"] == "Sam G."  # set by the gateway
    paths = {r.resource.canonical for r in gateway.app.router.routes() if r.resource}
    assert not any("name" in path for path in paths)  # there is no route to rename oneself
