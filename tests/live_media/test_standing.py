"""Powers and presence follow the durable facts, live (R1, R4, R6, R9): whoever is removed,
revoked, left without consent or in an ended session loses every power and every stream within
5 seconds; adults count only once their media is connected; a counted adult leaving on purpose
or removed holds the children at once, with an incident; `supervision.action` is acted on."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.http.live_api import LIVE
from tests.http.world import World, build_world
from tests.live_media._session import People, stream
from tests.media._peers import wait_until
from tests.plugins.gateway_server import ROOT, Gateway

pytestmark = pytest.mark.media

LIVE_WITHIN = 5.0  # seconds: a change reaches every connected person within this


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
async def people(gateway: Gateway) -> AsyncIterator[People]:
    crowd = People(await build_world(gateway))
    try:
        yield crowd
    finally:
        await crowd.close()


async def _supervised(people: People) -> None:
    """Tutor, observer and a child, all with media; the child admitted."""
    await people.arrive("Tina Tutor")
    await people.arrive("Oscar Observer")
    child = await people.arrive("Sam Green")
    assert child.body["outcome"] == "admit"
    await wait_until(lambda: people.admitted(child.identity), timeout=5)


async def _watch(people: People, name: str) -> tuple[list[dict[str, Any]], asyncio.Task[None]]:
    events: list[dict[str, Any]] = []
    arrival = people.arrived[name]
    task = asyncio.create_task(stream(arrival.device, people.token(name), events))
    await wait_until(lambda: bool(events), timeout=5)  # the snapshot arrived
    return events, task


async def test_an_adult_who_never_connected_media_does_not_count(people: People) -> None:
    await people.arrive("Tina Tutor")
    observer = await people.join("Oscar Observer")  # over HTTP only, no media
    assert observer.body["outcome"] == "admit"
    child = await people.arrive("Sam Green")
    assert child.body["outcome"] == "hold" and child.body["reasons"] == ["awaiting_supervision"]
    await asyncio.sleep(1.0)
    assert not people.admitted(child.identity)
    await people.connect(observer)  # now the observer is there: the child is released
    await wait_until(lambda: people.admitted(child.identity), timeout=5)


async def test_host_removing_the_only_other_adult_holds_children_at_once(
    people: People,
) -> None:
    await _supervised(people)
    child = people.arrived["Sam Green"]
    host = people.arrived["Tina Tutor"]
    observer = people.arrived["Oscar Observer"]
    removed = await host.device.post(
        "/v1/live/remove", {"token": people.token("Tina Tutor"), "identity": observer.identity}
    )
    assert removed.status == 200
    await wait_until(lambda: not people.admitted(child.identity), timeout=2)  # no grace
    assert not people.connected(observer.identity)
    incidents = await people.incidents(at_least=1)
    assert [i["kind"] for i in incidents] == ["supervision_breach"]
    kinds = {e["kind"] for e in await people.audit()}
    assert {"participant.removed", "supervision.hold", "supervision.breach"} <= kinds

    # The observer's invite is re-issued; their join is refused and changes nothing.
    await people.world.invite("Oscar Observer")
    again = await people.world.join("Oscar Observer")
    assert again.status == 403 and again.code == "invite_invalid"  # one answer for bad invites
    present = await people.gateway.app[LIVE]._live.present(people.session_id)
    assert len([p for p in present if p.vetted_adult]) == 1  # the refused join counts nothing
    await asyncio.sleep(1.0)
    assert not people.admitted(child.identity)  # still held: one real adult


async def test_a_revoked_host_can_neither_remove_nor_end(people: People) -> None:
    await _supervised(people)
    child = people.arrived["Sam Green"]
    host = people.arrived["Tina Tutor"]
    revoked = await people.world.admin.post(
        f"/v1/invites/{people.world.invites['Tina Tutor']['id']}/revoke"
    )
    assert revoked.status == 200
    token = people.token("Tina Tutor")
    removing = await host.device.post(
        "/v1/live/remove", {"token": token, "identity": child.identity}
    )
    assert removing.status == 403 and removing.code == "invite_revoked"
    ending = await host.device.post("/v1/live/end", {"token": token})
    assert ending.status == 403 and ending.code == "invite_revoked"
    session = await people.world.admin.get(f"/v1/sessions/{people.session_id}")
    assert session.body["ended_at"] is None
    # and the revoked host's own media is gone within one round: the child is held at once
    await wait_until(lambda: not people.connected(host.identity), timeout=LIVE_WITHIN)
    await wait_until(lambda: not people.admitted(child.identity), timeout=2)
    disconnected = await people.audit("participant.disconnected")
    assert [e["data"]["reason"] for e in disconnected] == ["invite_revoked"]


async def test_a_removed_observers_stream_closes_and_carries_no_more_alerts(
    people: People,
) -> None:
    await _supervised(people)
    observer = people.arrived["Oscar Observer"]
    events, task = await _watch(people, "Oscar Observer")
    host = people.arrived["Tina Tutor"]
    removed = await host.device.post(
        "/v1/live/remove", {"token": people.token("Tina Tutor"), "identity": observer.identity}
    )
    assert removed.status == 200
    await asyncio.wait_for(task, LIVE_WITHIN)  # the server closed the stream
    assert events[-1]["type"] == "removed"
    again = await observer.device.post("/v1/live/events", {"token": people.token("Oscar Observer")})
    assert again.status == 403 and again.code == "invite_revoked"


async def test_withdrawing_a_childs_consent_disconnects_them_within_5_seconds(
    people: People,
) -> None:
    await _supervised(people)
    child = people.arrived["Sam Green"]
    events, task = await _watch(people, "Sam Green")
    withdrawn = await people.world.consent(
        "Sam Green", "participation", "Gail Green", "guardian", "withdraw"
    )
    assert withdrawn.status == 201
    await asyncio.wait_for(task, LIVE_WITHIN)
    assert events[-1] == {"type": "removed", "reason": "no_participation_consent"}
    await wait_until(lambda: not people.connected(child.identity), timeout=2)
    disconnected = await people.audit("participant.disconnected")
    assert [e["data"]["reason"] for e in disconnected] == ["no_participation_consent"]
    assert disconnected[0]["actor"] == child.identity  # ids only, no name


async def test_revoking_or_reissuing_an_invite_disconnects_its_holder(people: People) -> None:
    await _supervised(people)
    child = people.arrived["Sam Green"]
    old_token = people.token("Sam Green")
    await people.world.invite("Sam Green")  # re-issued: the earlier link stops working
    await wait_until(lambda: not people.connected(child.identity), timeout=LIVE_WITHIN)
    old = await child.device.post("/v1/join", {"token": old_token, "password": "open-sesame"})
    assert old.status == 403 and old.code == "invite_invalid"  # one answer for bad invites
    fresh = await people.world.join("Sam Green")  # the new link works, on a new device
    assert fresh.status == 200 and fresh.body["outcome"] == "admit"


async def test_ending_disconnects_everyone_and_forgets_the_session(people: People) -> None:
    await _supervised(people)
    events, task = await _watch(people, "Sam Green")
    host = people.arrived["Tina Tutor"]
    ended = await host.device.post("/v1/live/end", {"token": people.token("Tina Tutor")})
    assert ended.status == 200
    await asyncio.wait_for(task, LIVE_WITHIN)
    assert events[-1]["type"] == "ended"
    for arrival in people.arrived.values():
        assert not people.connected(arrival.identity)
    live = people.gateway.app[LIVE]
    assert dict(live.held_sizes()) == {"seats": 0, "sessions": 0}  # bounded by what is live
    assert await live._live.present(people.session_id) == []
    again = await people.world.join("Sam Green", people.arrived["Sam Green"].device)
    assert again.status == 200 and again.body["outcome"] == "deny"
    assert "session_ended" in again.body["reasons"]


async def test_when_everyone_leaves_nothing_of_the_session_is_kept(people: People) -> None:
    await _supervised(people)
    for name in ("Sam Green", "Oscar Observer", "Tina Tutor"):
        device = people.arrived[name].device
        assert (await device.post("/v1/leave", {"token": people.token(name)})).status == 200
    live = people.gateway.app[LIVE]
    # At once when nothing else holds the session at that moment; otherwise (its supervision
    # evaluating, a leaver's event stream still closing) at the next reconciliation round (0.3 s
    # in these tests).
    await wait_until(lambda: dict(live.held_sizes()) == {"seats": 0, "sessions": 0}, timeout=5)


# supervision.action ------------------------------------------------------------------------
async def _world_with_policy(gateway: Gateway, tmp_path: Path, **changes: str) -> World:
    policy = (ROOT / "policies" / "default.toml").read_text()
    for key, value in changes.items():
        policy = re.sub(rf"^{key} = .*$", f"{key} = {value}", policy, count=1, flags=re.M)
    path = tmp_path / "policy.toml"
    path.write_text(policy)
    org, key = await gateway.services.organisations.create("Policy Club", str(path))
    world = World(gateway, await gateway.client(key), org.id)
    await world.staff("Tina Tutor", ["tutor"])
    await world.staff("Oscar Observer", ["observer"])
    await world.guardian("Gail Green")
    await world.child("Sam Green", "2016-04-02", "Gail Green")
    await world.new_session("Tina Tutor")
    for name, role, kind in (
        ("Oscar Observer", "observer", "staff"),
        ("Sam Green", "child", "child"),
    ):
        assert (await world.enrol(name, role, kind)).status == 201
    for name in ("Tina Tutor", "Oscar Observer", "Sam Green"):
        await world.invite(name)
    return world


async def test_action_end_session_ends_the_session_after_the_grace_period(
    gateway: Gateway, tmp_path: Path
) -> None:
    people = People(await _world_with_policy(gateway, tmp_path, action='"end_session"'))
    try:
        await _supervised(people)
        events, task = await _watch(people, "Sam Green")
        observer = people.arrived["Oscar Observer"]
        assert observer.peer is not None
        await observer.peer.close()  # a dropped connection: the grace period applies
        await wait_until(lambda: not people.connected(observer.identity), timeout=10)
        await asyncio.sleep(0.5)
        session = await people.world.admin.get(f"/v1/sessions/{people.session_id}")
        assert session.body["ended_at"] is None  # still within the grace period
        gateway.clock.advance(timedelta(seconds=61))
        await asyncio.wait_for(task, LIVE_WITHIN)
        assert events[-1]["type"] == "ended"
        session = await people.world.admin.get(f"/v1/sessions/{people.session_id}")
        assert session.body["ended_at"] is not None
        incidents = await people.incidents(at_least=1)
        assert "ended_session" in incidents[0]["what_gateway_did"]
        ended = await people.audit("session.ended")
        assert ended[0]["actor"] == "gateway" and ended[0]["data"] == {
            "reason": "supervision_breach"
        }
    finally:
        await people.close()


async def test_grace_seconds_zero_holds_at_once_on_a_dropped_connection(
    gateway: Gateway, tmp_path: Path
) -> None:
    people = People(await _world_with_policy(gateway, tmp_path, grace_seconds="0"))
    try:
        await _supervised(people)
        child = people.arrived["Sam Green"]
        observer = people.arrived["Oscar Observer"]
        assert observer.peer is not None
        await observer.peer.close()
        await wait_until(lambda: not people.admitted(child.identity), timeout=10)
    finally:
        await people.close()


async def test_a_media_credential_stays_single_use_when_the_live_state_is_lost(
    people: People,
) -> None:
    tutor = await people.join("Tina Tutor")
    credential = tutor.body["media"]["credential"]
    first = await tutor.device.post("/v1/media/offer", {"credential": credential, "sdp": "v=0"})
    assert first.status == 400 and first.code == "sdp_invalid"  # used, though refused
    live_state = people.gateway.app[LIVE]._live
    live_state._credentials._expires.clear()  # what a Redis flush does to the claims
    again = await tutor.device.post("/v1/media/offer", {"credential": credential, "sdp": "v=0"})
    assert again.status == 403 and again.code == "credential_invalid"


async def test_a_removed_participant_has_no_powers_left(people: People) -> None:
    """Every participant path with a power passes the one standing check: stream, end, remove,
    media offer. Leaving and telling someone (a concern) stay open: a child removed by an
    abusive host must still be able to report it."""
    host = await people.join("Tina Tutor")
    observer = await people.join("Oscar Observer")
    removed = await host.device.post(
        "/v1/live/remove", {"token": people.token("Tina Tutor"), "identity": observer.identity}
    )
    assert removed.status == 200
    token = people.token("Oscar Observer")
    for path, body in (
        ("/v1/live/events", {"token": token}),
        ("/v1/live/end", {"token": token}),
        ("/v1/live/remove", {"token": token, "identity": host.identity}),
        ("/v1/media/offer", {"credential": observer.body["media"]["credential"], "sdp": "v=0"}),
    ):
        answer = await observer.device.post(path, body)
        assert answer.status == 403, (path, answer.body)
        assert answer.code in ("invite_revoked", "credential_invalid"), (path, answer.body)
    concern = await observer.device.post("/v1/live/concern", {"token": token, "note": "x"})
    assert concern.status == 201, concern.body
    left = await observer.device.post("/v1/leave", {"token": token})
    assert left.status == 200  # leaving always works


async def test_a_leave_arriving_just_after_the_media_dropped_is_still_on_purpose(
    people: People,
) -> None:
    """The page hangs up, then says it left: still a deliberate departure (no grace)."""
    await _supervised(people)
    child = people.arrived["Sam Green"]
    observer = people.arrived["Oscar Observer"]
    assert observer.peer is not None
    await observer.peer.close()
    await wait_until(lambda: not people.connected(observer.identity), timeout=10)
    await asyncio.sleep(0.5)
    assert people.admitted(child.identity)  # a dropped connection: the grace period runs
    left = await observer.device.post("/v1/leave", {"token": people.token("Oscar Observer")})
    assert left.status == 200
    await wait_until(lambda: not people.admitted(child.identity), timeout=2)
    assert [i["kind"] for i in await people.incidents(at_least=1)] == ["supervision_breach"]
