"""Wrong passwords (R1): counted per invite, per source and per organisation, durably; an
invite locks softly (the host is told once, and the host or an admin re-admits); a source or an
organisation over its limit is slowed, never locked out of the right password."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from tests.abuse.conftest import MakeGateway, alerts_of, audit, policy_file
from tests.http.world import build_world
from tests.plugins.servers import RedisServer

WRONG = "guess-guess"


async def test_an_invite_locks_the_host_is_told_once_and_the_host_readmits(
    make_gateway: MakeGateway, database_url: str
) -> None:
    gateway = await make_gateway(database_url)
    world = await build_world(gateway)
    host = await gateway.client()
    assert (await world.join("Tina Tutor", host)).status == 200
    sam = await gateway.client()
    answers = [await world.join("Sam Green", sam, password=WRONG) for _ in range(15)]
    assert [a.status for a in answers[:4]] == [401] * 4
    assert all(a.status == 429 and a.code == "too_many_attempts" for a in answers[4:])
    assert all(int(a.headers["Retry-After"]) > 60 for a in answers[4:])  # the window's rest
    # locked means locked: the right password waits too
    assert (await world.join("Sam Green", sam)).status == 429

    told = await alerts_of(gateway, world.session["id"], "invite_locked")
    assert len(told) == 1  # one alert per lock, not one per attempt
    assert told[0]["display_name"] == "Sam G." and "Green" not in str(told)
    assert len(await audit(gateway, world.org_id, "invite.locked")) == 1
    assert len(await audit(gateway, world.org_id, "join.password_wrong")) == 5

    # only the host may lift it: not the child, not a stranger without the host's device
    identity = told[0]["participant"]
    stranger = await gateway.client()
    for who, token in ((sam, world.invites["Sam Green"]["token"]), (stranger, "x.y.z")):
        refused = await who.post("/v1/live/readmit", {"token": token, "identity": identity})
        assert refused.status in (403, 401) and refused.code != "internal"
    lifted = await host.post(
        "/v1/live/readmit",
        {"token": world.invites["Tina Tutor"]["token"], "identity": identity},
    )
    assert lifted.status == 200 and lifted.body == {"readmitted": True}
    readmitted = await audit(gateway, world.org_id, "invite.readmitted")
    assert [e.data["by"] for e in readmitted] == ["host"]
    assert (await world.join("Sam Green", sam)).status == 200


async def test_an_admin_unlocks_an_invite_and_it_locks_again_past_the_window(
    make_gateway: MakeGateway, sqlite_url: str
) -> None:
    gateway = await make_gateway(sqlite_url)
    world = await build_world(gateway)
    ada = await gateway.client()
    for _ in range(5):
        await world.join("Ada Hill", ada, password=WRONG)
    assert (await world.join("Ada Hill", ada)).status == 429
    invite_id = world.invites["Ada Hill"]["id"]
    other_org = await gateway.client((await gateway.organisation("Other Club"))[1])
    assert (await other_org.post(f"/v1/invites/{invite_id}/unlock")).status == 404
    assert (await world.admin.post(f"/v1/invites/{invite_id}/unlock")).status == 200
    assert [e.data["by"] for e in await audit(gateway, world.org_id, "invite.readmitted")] == [
        "admin"
    ]
    assert (await world.join("Ada Hill", ada)).status == 200

    # a lock also ends on its own when the window closes
    for _ in range(5):
        await world.join("Ada Hill", ada, password=WRONG)
    assert (await world.join("Ada Hill", ada)).status == 429
    gateway.clock.advance(timedelta(minutes=16))
    assert (await world.join("Ada Hill", ada)).status == 200


async def test_a_right_password_gets_in_from_a_source_over_its_limit(
    make_gateway: MakeGateway, sqlite_url: str, tmp_path: Path
) -> None:
    """Thirty children behind one school address: a few wrong guesses there must not keep the
    ones who type the right password out. Past the source limit a wrong guess is 429 (and still
    counts against its invite); a right one gets in after the slow lane's pause."""
    policy = policy_file(tmp_path, source_max_attempts=3)
    gateway = await make_gateway(sqlite_url, policy=policy)
    world = await build_world(gateway)
    for _ in range(2):
        answer = await world.join("Sam Green", password=WRONG)
        assert answer.status == 401
    reached = await world.join("Sam Green", password=WRONG)  # the third reaches the limit
    assert reached.status == 429
    slowed = await world.join("Ada Hill", password=WRONG)
    assert slowed.status == 429 and int(slowed.headers["Retry-After"]) >= 1
    assert len(await audit(gateway, world.org_id, "source.slowed")) == 1
    started = time.monotonic()
    for name in ("Tina Tutor", "Oscar Observer", "Ada Hill"):
        assert (await world.join(name)).status == 200
    assert time.monotonic() - started >= 3 * 0.9  # each paid the pause, none was refused


async def test_organisation_wide_guessing_from_many_addresses_is_slowed(
    make_gateway: MakeGateway, sqlite_url: str, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, org_max_attempts=4)
    gateway = await make_gateway(sqlite_url, policy=policy, trusted_proxies=("127.0.0.1/32",))
    world = await build_world(gateway)

    async def join_from(address: str, name: str, password: str) -> int:
        device = await gateway.client()
        body = {"token": world.invites[name]["token"], "password": password}
        answer = await device.post("/v1/join", body, headers={"X-Forwarded-For": address})
        return answer.status

    statuses = [await join_from(f"198.51.100.{i}", "Sam Green", WRONG) for i in range(2)]
    statuses += [await join_from(f"203.0.113.{i}", "Ada Hill", WRONG) for i in range(2)]
    assert statuses == [401, 401, 401, 429]  # the fourth reaches the organisation's limit
    assert await join_from("192.0.2.77", "Oscar Observer", WRONG) == 429  # a fresh address
    assert len(await audit(gateway, world.org_id, "org.slowed")) == 1
    assert await join_from("192.0.2.78", "Tina Tutor", "open-sesame") == 200


async def test_failures_survive_a_redis_flush_and_a_restart(
    make_gateway: MakeGateway,
    sqlite_url: str,
    redis_url: str,
    redis_server: RedisServer,
) -> None:
    gateway = await make_gateway(sqlite_url, redis_url=redis_url)
    world = await build_world(gateway)
    for _ in range(3):
        assert (await world.join("Sam Green", password=WRONG)).status == 401
    redis_server.command("FLUSHALL")
    assert (await world.join("Sam Green", password=WRONG)).status == 401
    assert (await world.join("Sam Green", password=WRONG)).status == 429  # the fifth: locked
    # another process on the same database sees the same lock
    again = await make_gateway(sqlite_url, redis_url=redis_url)
    again.clock.set(gateway.clock.now())
    device = await again.client()
    body = {"token": world.invites["Sam Green"]["token"], "password": "open-sesame"}
    assert (await device.post("/v1/join", body)).status == 429


async def test_a_password_join_with_redis_down_is_503_and_audited(
    make_gateway: MakeGateway,
    sqlite_url: str,
    redis_url: str,
    redis_server: RedisServer,
) -> None:
    gateway = await make_gateway(sqlite_url, redis_url=redis_url)
    world = await build_world(gateway)
    redis_server.stop()
    try:
        started = time.monotonic()
        answer = await world.join("Sam Green")
        assert time.monotonic() - started < 5
        assert answer.status == 503 and answer.code == "live_state_unavailable"
        # Nothing is judged while the session's authority cannot be checked: no guess is tested.
        wrong = await world.join("Ada Hill", password=WRONG)
        assert wrong.status == 503 and wrong.code == "live_state_unavailable"
    finally:
        redis_server.start()
    refused = await audit(gateway, None, "request.refused")
    assert "live_state_unavailable" in [e.data["code"] for e in refused]
