"""LiveKit webhooks over real HTTP: only LiveKit's signature on the raw body is believed;
duplicates, replays, late events and unknown rooms change nothing; another organisation's room
is refused; and a webhook never admits a child by itself (R4)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from datetime import timedelta
from typing import Any

import aiohttp
import jwt
from livekit.protocol import models

from gateway.http.live_api import LIVE
from gateway.http.livekit_webhooks_api import WEBHOOK_PATH
from tests.http.audit_rows import entries_without_org
from tests.http.world import World, build_world
from tests.livekit_double import LiveKitDouble, event_body, sign_webhook
from tests.livekit_webhooks.conftest import KEY, OTHER_KEY, OTHER_SECRET, SECRET
from tests.plugins.gateway_server import Gateway


def joined(double: LiveKitDouble, room: str, identity: str, at: int | None = None) -> bytes:
    event = double.event(
        "participant_joined",
        room=models.Room(name=room),
        participant=models.ParticipantInfo(identity=identity, name="Should Not Be Read"),
    )
    if at is not None:
        event.created_at = at
    return event_body(event)


async def post(gateway: Gateway, body: bytes, authorization: str | None, **headers: str) -> Any:
    sent = {"Content-Type": "application/webhook+json", **headers}
    if authorization is not None:
        sent["Authorization"] = authorization
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.base + WEBHOOK_PATH, data=body, headers=sent) as answer,
    ):
        return answer.status, await answer.json()


async def webhook_entries(world: World) -> list[dict[str, Any]]:
    answer = await world.admin.get("/v1/audit?kind=livekit.webhook")
    assert answer.status == 200
    return list(answer.body["items"])


async def test_forged_resigned_tampered_and_expired_webhooks_get_one_answer_and_are_audited(
    gateway: Gateway, double: LiveKitDouble
) -> None:
    world = await build_world(gateway)
    body = joined(double, world.session["id"], "p_x")
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    tampered = body.replace(b"p_x", b"p_y")
    attempts = {
        "no signature": (body, None),
        "not a token": (body, "garbage"),
        "re-signed with another secret": (body, sign_webhook(body, KEY, "w" * 43)),
        "unknown key": (body, sign_webhook(body, "APIunknown", SECRET)),
        "body tampered after signing": (tampered, sign_webhook(body, KEY, SECRET)),
        "hash of another body": (body, sign_webhook(b"{}", KEY, SECRET)),
        "expired": (body, sign_webhook(body, KEY, SECRET, ttl=timedelta(minutes=-5))),
        "bearer prefix, wrong secret": (body, "Bearer " + sign_webhook(body, KEY, "q" * 43)),
        "another key named as issuer": (
            body,
            jwt.encode({"iss": OTHER_KEY, "exp": time.time() + 60, "sha256": digest}, SECRET),
        ),
        "no expiry": (body, jwt.encode({"iss": KEY, "sha256": digest}, SECRET)),
        "not yet valid": (
            body,
            jwt.encode(
                {"iss": KEY, "exp": time.time() + 600, "nbf": time.time() + 300, "sha256": digest},
                SECRET,
            ),
        ),
        "algorithm none": (
            body,
            jwt.encode({"iss": KEY, "exp": time.time() + 60, "sha256": digest}, None, "none"),
        ),
    }
    for case, (sent, authorization) in attempts.items():
        status, answer = await post(gateway, sent, authorization)
        assert status == 401, case
        assert answer == {
            "error": {"code": "unauthenticated", "message": "The webhook's signature is not valid."}
        }, case
        assert digest not in str(answer)
    # Anonymous refusals: the first ten from one address one by one, the rest counted.
    refused = await entries_without_org(gateway, "request.refused")
    assert [(e.data["code"], e.data["route"]) for e in refused] == [
        ("unauthenticated", WEBHOOK_PATH)
    ] * 10
    await gateway.services.audit.flush(everything=True)
    (counted,) = await entries_without_org(gateway, "request.refused.aggregate")
    assert counted.data["counts"] == [
        {"code": "unauthenticated", "route": WEBHOOK_PATH, "count": len(attempts) - 10}
    ]
    assert await webhook_entries(world) == []  # nothing was taken as an event

    # The genuine one goes through, once.
    status, answer = await post(gateway, body, sign_webhook(body, KEY, SECRET))
    assert (status, answer) == (200, {"outcome": "reconcile"})


async def test_duplicates_and_replays_are_ignored_by_event_id(
    gateway: Gateway, double: LiveKitDouble
) -> None:
    world = await build_world(gateway)
    body = joined(double, world.session["id"], "p_tutor")
    token = sign_webhook(body, KEY, SECRET)
    assert await post(gateway, body, token) == (200, {"outcome": "reconcile"})
    assert await post(gateway, body, token) == (200, {"outcome": "duplicate"})  # replayed
    fresh = sign_webhook(body, KEY, SECRET)  # LiveKit's own retry signs again
    assert await post(gateway, body, fresh) == (200, {"outcome": "duplicate"})
    double.duplicate_webhooks = True
    await double.join(world.session["id"], "p_observer")
    assert [status for status, _ in double.delivered] == [200, 200]
    entries = await webhook_entries(world)
    assert sorted(e["data"]["identity"] for e in entries) == ["p_observer", "p_tutor"]
    assert all("Should Not Be Read" not in str(e) for e in entries)  # names are never read
    sampled = await entries_without_org(gateway, "request.refused")
    assert [e.data["code"] for e in sampled] == ["webhook_duplicate"] * 3


async def test_an_older_event_never_overrides_newer_knowledge(
    gateway: Gateway, double: LiveKitDouble
) -> None:
    world = await build_world(gateway)
    room = world.session["id"]
    double.webhooks = "hold"
    await double.join(room, "p_tutor")
    await double.leave(room, "p_tutor")
    # LiveKit stamps whole seconds; make the leave clearly later than the join.
    first, second = double.held
    later = double.event("participant_left", room=models.Room(name=room))
    later.participant.identity = "p_tutor"
    later.created_at = int(first[0].split(b'"createdAt": "')[1].split(b'"')[0]) + 5
    double.held = [first, (event_body(later), "participant_left")]
    await double.release_held(lambda bodies: bodies[::-1])  # the leave arrives first
    entries = await webhook_entries(world)
    outcomes = {(e["data"]["event"], e["data"]["outcome"]) for e in entries}
    assert outcomes == {("participant_left", "reconcile"), ("participant_joined", "stale")}
    assert second  # the original leave was replaced by one five seconds later


async def test_unknown_rooms_are_ignored_and_audited_in_aggregate_only(
    gateway: Gateway, double: LiveKitDouble
) -> None:
    world = await build_world(gateway)
    statuses = []
    for n in range(25):  # a valid key inventing rooms cannot grow the log at will
        body = joined(double, f"no-such-room-{n}", "p_x")
        statuses.append(await post(gateway, body, sign_webhook(body, KEY, SECRET)))
    assert statuses == [(200, {"outcome": "unknown_room"})] * 25
    individual = await entries_without_org(gateway, "request.refused")
    assert [e.data["code"] for e in individual] == ["webhook_room_unknown"] * 10
    await gateway.services.audit.flush(everything=True)
    (aggregate,) = await entries_without_org(gateway, "request.refused.aggregate")
    assert aggregate.data["counts"] == [
        {"code": "webhook_room_unknown", "route": WEBHOOK_PATH, "count": 15}
    ]
    assert "no-such-room" not in str(aggregate.data)
    assert await webhook_entries(world) == []


async def test_a_webhook_about_another_organisations_room_is_refused(
    gateway: Gateway, double: LiveKitDouble
) -> None:
    world = await build_world(gateway)
    body = joined(double, world.session["id"], "p_tutor")
    status, answer = await post(gateway, body, sign_webhook(body, OTHER_KEY, OTHER_SECRET))
    assert status == 403 and answer["error"]["code"] == "forbidden"
    assert world.session["id"] not in str(answer)
    assert await webhook_entries(world) == []
    # Not recorded as seen: the right deployment's copy of the same event still counts.
    assert await post(gateway, body, sign_webhook(body, KEY, SECRET)) == (
        200,
        {"outcome": "reconcile"},
    )


async def test_bodies_over_the_limit_or_not_webhooks_are_refused_unread(
    gateway: Gateway, double: LiveKitDouble
) -> None:
    big = b'{"event": "' + b"x" * 70_000 + b'"}'
    status, answer = await post(gateway, big, sign_webhook(big, KEY, SECRET))
    assert status == 413 and answer["error"]["code"] == "body_too_large"
    body = joined(double, "r", "p")
    status, answer = await post(
        gateway, body, sign_webhook(body, KEY, SECRET), **{"Content-Type": "text/plain"}
    )
    assert status == 415


async def test_a_webhook_never_admits_a_child_by_itself(
    gateway: Gateway, double: LiveKitDouble
) -> None:
    """Both adults joined but their media never connected: LiveKit-looking webhooks saying
    they joined and publish make the authority reconcile, and the platform's own list (the
    truth) still has no adult with media, so the child stays held."""
    world = await build_world(gateway)
    session_id = world.session["id"]
    tutor = await world.join("Tina Tutor")
    observer = await world.join("Oscar Observer")
    device = await gateway.client()
    child = await world.join("Sam Green", device)
    assert child.body["outcome"] == "hold"
    for adult in (tutor, observer):
        identity = adult.body["participant"]["identity"]
        assert await double.send(joined(double, session_id, identity)) == 200
        published = double.event("track_published", room=models.Room(name=session_id))
        published.participant.identity = identity
        assert await double.send(event_body(published)) == 200
    await asyncio.sleep(1.0)  # the hint, and three reconciliation rounds besides
    presences = await gateway.app[LIVE]._live.present(session_id)
    held = {p.participant_id: p.held for p in presences}
    assert held[world.participants["Sam Green"]] is True
    again = await world.join("Sam Green", device)
    assert again.body["outcome"] == "hold" and "awaiting_supervision" in again.body["reasons"]
    assert len(await webhook_entries(world)) == 4
