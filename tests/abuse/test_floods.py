"""Floods get 429 with Retry-After, and the people looking after a session hear of a cause once:
second-device attempts, joins per invite and per source."""

from __future__ import annotations

from datetime import timedelta

from tests.abuse.conftest import MakeGateway, alerts_of, audit
from tests.http.world import build_world


async def test_a_hundred_second_device_attempts_give_the_host_one_alert(
    make_gateway: MakeGateway, database_url: str
) -> None:
    gateway = await make_gateway(database_url)
    world = await build_world(gateway)
    assert (await world.join("Sam Green")).status == 200  # bound to the first device
    thief = await gateway.client()
    answers = [await world.join("Sam Green", thief) for _ in range(100)]
    assert all(a.code == "invite_other_device" for a in answers[:10])
    assert all(a.status == 429 and int(a.headers["Retry-After"]) >= 1 for a in answers[10:])
    told = await alerts_of(gateway, world.session["id"], "invite_other_device")
    assert len(told) == 1 and told[0]["display_name"] == "Sam G."
    # every attempt is audited (with its count); only the answer and the alert are bounded
    audited = await audit(gateway, world.org_id, "invite.other_device")
    assert [e.data["attempts"] for e in audited] == list(range(1, 101))


async def test_a_flood_of_joins_on_one_invite_is_answered_429(
    make_gateway: MakeGateway, sqlite_url: str
) -> None:
    # the right password every time: only the flood limit stands in the way
    gateway = await make_gateway(sqlite_url)
    world = await build_world(gateway)
    device = await gateway.client()
    statuses = [(await world.join("Ada Hill", device)).status for _ in range(35)]
    assert statuses[:30] == [200] * 30
    assert statuses[30:] == [429] * 5
    # other invites from the same address are not held up by one invite's flood
    assert (await world.join("Sam Green")).status == 200


async def test_a_flood_of_bad_invites_from_one_source_is_answered_429_and_not_audited_each(
    make_gateway: MakeGateway, sqlite_url: str
) -> None:
    gateway = await make_gateway(sqlite_url, trusted_proxies=("127.0.0.1/32",))
    world = await build_world(gateway)
    flooder = await gateway.client()
    headers = {"X-Forwarded-For": "198.51.100.9"}
    answers = [
        await flooder.post("/v1/join", {"token": "not-a-token"}, headers=headers) for _ in range(70)
    ]
    assert [a.code for a in answers[:60]] == ["invite_invalid"] * 60
    assert all(a.status == 429 and "Retry-After" in a.headers for a in answers[60:])
    assert len(await audit(gateway, None, "join.invite_refused")) == 60
    # someone else, from another address, is unaffected
    other = await gateway.client()
    body = {"token": world.invites["Sam Green"]["token"], "password": "open-sesame"}
    joined = await other.post("/v1/join", body, headers={"X-Forwarded-For": "203.0.113.5"})
    assert joined.status == 200


async def test_thirty_concerns_from_one_child_open_one_incident(
    make_gateway: MakeGateway, database_url: str
) -> None:
    gateway = await make_gateway(database_url)
    world = await build_world(gateway)
    sam = await gateway.client()
    assert (await world.join("Sam Green", sam)).status == 200
    token = world.invites["Sam Green"]["token"]
    answers = [
        await sam.post("/v1/live/concern", {"token": token, "note": f"it happened again {i}"})
        for i in range(30)
    ]
    assert all(a.status == 201 for a in answers[:5])
    assert len({a.body["incident_id"] for a in answers[:5]}) == 1  # added to the first one
    assert all(a.status == 429 and int(a.headers["Retry-After"]) >= 1 for a in answers[5:])
    listed = await world.admin.get(f"/v1/incidents?session_id={world.session['id']}")
    assert [i["kind"] for i in listed.body["items"]] == ["concern"]
    assert len(await alerts_of(gateway, world.session["id"], "concern")) == 1
    repeated = await audit(gateway, world.org_id, "incident.concern_repeated")
    assert [e.data["concerns"] for e in repeated] == [2, 3, 4, 5]
    # another child's concern is its own incident
    ada = await gateway.client()
    assert (await world.join("Ada Hill", ada)).status == 200
    other = await ada.post("/v1/live/concern", {"token": world.invites["Ada Hill"]["token"]})
    assert other.status == 201 and other.body["incident_id"] != answers[0].body["incident_id"]
    # after the window, a new concern opens a new incident
    gateway.clock.advance(timedelta(minutes=11))
    later = await sam.post("/v1/live/concern", {"token": token, "note": "again"})
    assert later.status == 201 and later.body["incident_id"] != answers[0].body["incident_id"]
