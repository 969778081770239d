"""Bad input while a session runs: flapping adults, removed participants coming back, people
using powers they do not have, and participants trying to rename themselves."""

from __future__ import annotations

import pytest

from tests.http.world import build_world
from tests.live_media._session import People
from tests.media._peers import wait_until
from tests.plugins.gateway_server import Gateway

pytestmark = pytest.mark.media


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def test_flapping_adult_holds_the_child_each_time_and_releases_on_return(
    gateway: Gateway,
) -> None:
    """An observer leaving on purpose holds the child at once (no grace period: it is not a
    dropped connection); coming back with media releases them; every flap is audited."""
    people = People(await build_world(gateway))
    try:
        await people.arrive("Tina Tutor")
        child = await people.arrive("Sam Green")
        observer_device = await gateway.client()
        token = {"token": people.token("Oscar Observer")}
        for _ in range(3):  # arrive, leave, arrive, leave... as fast as the browser can
            await people.arrive("Oscar Observer", observer_device)
            await wait_until(lambda: people.admitted(child.identity), timeout=5)
            assert (await observer_device.post("/v1/leave", token)).status == 200
            await wait_until(lambda: not people.admitted(child.identity), timeout=3)
        await people.arrive("Oscar Observer", observer_device)
        await wait_until(lambda: people.admitted(child.identity), timeout=5)
        kinds = [e["kind"] for e in await people.audit()]
        assert kinds.count("supervision.hold") >= 3 and kinds.count("participant.left") == 3
        assert (await gateway.services.store.verify_audit()).intact
    finally:
        await people.close()


async def test_removed_participant_cannot_come_back(gateway: Gateway) -> None:
    world = await build_world(gateway)
    people = People(world)
    host = await people.join("Tina Tutor")
    await people.join("Oscar Observer")
    child = await people.join("Sam Green")
    removed = await host.device.post(
        "/v1/live/remove", {"token": people.token("Tina Tutor"), "identity": child.identity}
    )
    assert removed.status == 200
    again = await world.join("Sam Green", child.device)  # same device, same invite
    assert again.status == 403 and again.code == "invite_invalid"  # one answer for bad invites
    unused = child.body["media"]["credential"]
    offer = await child.device.post("/v1/media/offer", {"credential": unused, "sdp": "v=0"})
    assert offer.status == 403 and offer.code == "credential_invalid"
    # A new invite for someone removed admits nobody either: removal is for good.
    await world.invite("Sam Green")
    fresh = await world.join("Sam Green")
    assert fresh.status == 403 and fresh.code == "invite_invalid"  # the audit keeps why


async def test_only_the_host_may_remove_or_end(gateway: Gateway) -> None:
    """The observer's own bound device (a real device cookie) is refused with `forbidden`,
    and nothing changes."""
    world = await build_world(gateway)
    people = People(world)
    await people.join("Tina Tutor")
    observer = await people.join("Oscar Observer")
    child = await people.join("Sam Green")
    refused = await observer.device.post(
        "/v1/live/remove", {"token": people.token("Oscar Observer"), "identity": child.identity}
    )
    assert refused.status == 403 and refused.code == "forbidden"
    ending = await observer.device.post("/v1/live/end", {"token": people.token("Oscar Observer")})
    assert ending.status == 403 and ending.code == "forbidden"
    child_ending = await child.device.post("/v1/live/end", {"token": people.token("Sam Green")})
    assert child_ending.status == 403 and child_ending.code == "forbidden"
    # Nothing changed: the child can still join on their device, and the session runs.
    assert (await world.join("Sam Green", child.device)).status == 200
    session = await world.admin.get(f"/v1/sessions/{people.session_id}")
    assert session.body["ended_at"] is None
    kinds = {e["kind"] for e in await people.audit()}
    assert "participant.removed" not in kinds and "session.ended" not in kinds


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
