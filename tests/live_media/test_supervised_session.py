"""A real session over loopback: HTTP joins, aiortc peers through the embedded relay, and the
two-adult rule enforced while it runs (R4)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gateway.http.live_api import LIVE
from tests.http.world import World, build_world
from tests.media._peers import Client as Peer
from tests.media._peers import wait_until
from tests.plugins.gateway_server import Client, Gateway

pytestmark = pytest.mark.media


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url  # media behaviour does not depend on the database


async def _connect(gateway: Gateway, credential: str, peer: Peer) -> None:
    device = await gateway.client()
    offer = {"credential": credential, "sdp": await peer.offer()}
    answer = await device.post("/v1/media/offer", offer)
    assert answer.status == 200, answer.body
    await peer.accept(answer.body["sdp"])


async def _join(world: World, name: str) -> tuple[Client, dict[str, object]]:
    device = await world.gateway.client()
    answer = await world.join(name, device)
    assert answer.status == 200, answer.body
    return device, answer.body


async def test_child_sees_tutor_only_with_two_adults_and_is_held_when_one_leaves(
    gateway: Gateway,
) -> None:
    world = await build_world(gateway)
    peers: list[Peer] = []
    try:
        _, tutor = await _join(world, "Tina Tutor")
        tutor_peer = Peer("tutor", slots=2)
        peers.append(tutor_peer)
        await _connect(gateway, tutor["media"]["credential"], tutor_peer)  # type: ignore[index]

        _, child = await _join(world, "Sam Green")
        assert child["outcome"] == "hold"
        child_peer = Peer("child", slots=2)
        peers.append(child_peer)
        await _connect(gateway, child["media"]["credential"], child_peer)  # type: ignore[index]
        await asyncio.sleep(1.0)
        assert child_peer.total("video") == 0, "a held child must not receive media"

        observer_device, observer = await _join(world, "Oscar Observer")
        assert observer["outcome"] == "admit"
        await wait_until(lambda: child_peer.total("video") > 10, timeout=10)
        assert (640, 480) in child_peer.sizes

        left = await observer_device.post(
            "/v1/leave", {"token": world.invites["Oscar Observer"]["token"]}
        )
        assert left.status == 200
        gateway.clock.advance(timedelta(seconds=61))  # past the policy's grace period
        relay = gateway.app[LIVE]
        child_identity = child["participant"]["identity"]  # type: ignore[index]

        def held() -> bool:
            platform = relay._platform  # the relay's own view is the truth
            return any(
                p.identity == child_identity and not p.grants.can_subscribe
                for p in platform.participants(world.session["id"])
            )

        await wait_until(held, timeout=3)  # one reconciliation (0.3 s here)
        await asyncio.sleep(0.5)
        frozen = child_peer.total("video")
        await asyncio.sleep(1.0)
        assert child_peer.total("video") - frozen <= 2, "held child still receives video"

        kinds = {e["kind"] for e in (await world.admin.get("/v1/audit?limit=500")).body["items"]}
        assert {"supervision.release", "supervision.hold", "supervision.breach"} <= kinds
    finally:
        for peer in peers:
            await peer.close()


async def test_signalling_needs_a_fresh_single_use_credential(gateway: Gateway) -> None:
    world = await build_world(gateway)
    laptop, tutor = await _join(world, "Tina Tutor")
    device = await gateway.client()
    peer = Peer("tutor", slots=1)
    try:
        sdp = await peer.offer()
        for credential in ("", "forged.credential.value", world.invites["Tina Tutor"]["token"]):
            answer = await device.post("/v1/media/offer", {"credential": credential, "sdp": sdp})
            assert answer.status in (400, 403)
            assert answer.code in ("credential_invalid", "body_invalid")
        credential = tutor["media"]["credential"]  # type: ignore[index]
        nonsense = {"credential": credential, "sdp": "v=0 nonsense"}
        malformed = await device.post("/v1/media/offer", nonsense)
        assert malformed.status == 400 and malformed.code == "sdp_invalid"
        reused = await device.post("/v1/media/offer", {"credential": credential, "sdp": sdp})
        assert reused.status == 403 and reused.code == "credential_invalid"
        again = await world.join("Tina Tutor", laptop)  # the same device asks again
        fresh = again.body["media"]["credential"]
        assert fresh != credential
        gateway.clock.advance(timedelta(seconds=120))  # media credentials last 60 seconds
        stale = await device.post("/v1/media/offer", {"credential": fresh, "sdp": sdp})
        assert stale.status == 403 and stale.code == "credential_invalid"
    finally:
        await peer.close()


async def test_lost_live_state_is_rebuilt_from_the_platform_children_held_first(
    gateway: Gateway,
) -> None:
    world = await build_world(gateway)
    peers: list[Peer] = []
    try:
        for name in ("Tina Tutor", "Oscar Observer", "Sam Green"):
            _, joined = await _join(world, name)
            peer = Peer(name, slots=2)
            peers.append(peer)
            await _connect(gateway, joined["media"]["credential"], peer)  # type: ignore[index]
        child_peer = peers[-1]
        await wait_until(lambda: child_peer.total("video") > 5, timeout=10)

        live = gateway.app[LIVE]
        live._live._sessions.clear()  # what a Redis restart looks like: presence gone
        entries = []
        for _ in range(50):
            entries = (await world.admin.get("/v1/audit?kind=live_state.rebuilt")).body["items"]
            if len(entries) >= 3:
                break
            await asyncio.sleep(0.1)
        assert len(entries) == 3  # tutor, observer and child re-entered from the relay's list
        present = await live._live.present(world.session["id"])
        assert len(present) == 3
        assert not any(p.held for p in present)  # adults counted again, so the child released
        before = child_peer.total("video")
        await wait_until(lambda: child_peer.total("video") > before + 5, timeout=10)
    finally:
        for peer in peers:
            await peer.close()
