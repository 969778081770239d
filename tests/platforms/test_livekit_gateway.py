"""The gateway on LiveKit, end to end (issue 10): an organisation configured for LiveKit gets
LiveKit tokens at the join, its session's authority holds and releases children and removes
people through LiveKit's API, and with LiveKit unreachable joins are refused (503), nobody
admitted blind. Real participants: the `livekit` real-time SDK with the join's token."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from livekit import api
from livekit.protocol import models, webhook

from gateway.http.livekit_webhooks_api import WEBHOOK_PATH
from gateway.http.vendor import default_livekit_client
from tests.http.world import World, build_world
from tests.livekit_double import event_body, sign_webhook
from tests.platforms._drivers import LiveKitArrival, LiveKitDriver, eventually
from tests.plugins.gateway_server import Gateway
from tests.plugins.livekit_server import LiveKitServer

pytestmark = pytest.mark.media


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def livekit(start_livekit: Callable[..., LiveKitServer]) -> LiveKitServer:
    return start_livekit()  # the test's own: one test stops it


@pytest.fixture
def gateway_settings(livekit: LiveKitServer, tmp_path: Path) -> dict[str, Any]:
    secret_file = tmp_path / "livekit.secret"
    secret_file.write_text(livekit.api_secret + "\n")
    secret_file.chmod(0o600)
    return {
        "livekit_url": livekit.url,
        "livekit_api_key": livekit.api_key,
        "livekit_api_secret_file": secret_file,
        "livekit_organisations": ("*",),
        "livekit_timeout_seconds": 1.0,
    }


@pytest.fixture
async def world(gateway: Gateway) -> World:
    return await build_world(gateway)


@pytest.fixture
async def participants(livekit: LiveKitServer) -> AsyncIterator[LiveKitDriver]:
    driver = LiveKitDriver(livekit)
    try:
        yield driver
    finally:
        await driver.close()


@pytest.fixture
async def room_service(livekit: LiveKitServer) -> AsyncIterator[Any]:
    client = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
    try:
        yield client.room
    finally:
        await client.aclose()


async def _join(world: World, name: str) -> dict[str, Any]:
    answer = await world.join(name)
    assert answer.status == 200, answer.body
    return dict(answer.body)


def _video(body: dict[str, Any], livekit: LiveKitServer) -> dict[str, Any]:
    media = body["media"]
    assert media["platform"] == "livekit" and media["url"] == livekit.url
    assert "credential" not in media  # no signalling through the gateway
    claims = jwt.decode(media["token"], livekit.api_secret, algorithms=["HS256"])
    assert claims["name"] == body["participant"]["display_name"]
    assert claims["sub"].startswith(body["participant"]["identity"] + ".")
    return dict(claims["video"])


async def _permission(room_service: Any, arrival: LiveKitArrival) -> tuple[bool, bool] | None:
    listed = await room_service.list_participants(
        api.ListParticipantsRequest(room=arrival.room.name)
    )
    for each in listed.participants:
        if each.identity == arrival.room.local_participant.identity:
            return (each.permission.can_publish, each.permission.can_subscribe)
    return None


async def test_a_join_on_livekit_answers_with_a_token_a_childs_carrying_no_media(
    world: World, livekit: LiveKitServer
) -> None:
    tutor = _video(await _join(world, "Tina Tutor"), livekit)
    child_body = await _join(world, "Sam Green")
    child = _video(child_body, livekit)

    assert (tutor["canPublish"], tutor["canSubscribe"]) == (True, True)
    # Held (one adult), and in any case a child's token carries no media: the session's
    # authority grants it over LiveKit's API once the child is connected and supervised.
    assert child_body["outcome"] == "hold"
    assert (child["canPublish"], child["canSubscribe"], child["canPublishSources"]) == (
        False,
        False,
        [],
    )
    assert tutor["room"] == child["room"] and world.session["id"] not in tutor["room"]


async def test_the_authority_grants_a_supervised_child_media_and_removal_is_final(
    world: World, gateway: Gateway, participants: LiveKitDriver, room_service: Any
) -> None:
    host = await gateway.client()
    tutor_join = await world.join("Tina Tutor", host)
    assert tutor_join.status == 200, tutor_join.body
    tutor = await participants.connect(tutor_join.body["media"], publish=True)
    await participants.connect((await _join(world, "Oscar Observer"))["media"], publish=True)
    child_body = await _join(world, "Sam Green")
    child = await participants.connect(child_body["media"])

    async def granted() -> bool:
        return await _permission(room_service, child) == (True, True)

    await eventually(granted, timeout=15)  # reconciliation counted both adults, then released

    answer = await host.post(
        "/v1/live/remove",
        {
            "token": world.invites["Tina Tutor"]["token"],
            "identity": child_body["participant"]["identity"],
        },
    )
    assert answer.status == 200, answer.body

    await eventually(_set(child), timeout=10)
    again = await world.join("Sam Green")
    assert again.status == 403  # the gateway issues no new token
    comeback = await participants.connect(child_body["media"])  # the old token, unexpired
    await eventually(_set(comeback), timeout=10)  # removed again at once
    assert tutor.room.isconnected()


async def test_an_adult_leaving_holds_the_child_through_livekit_at_once(
    world: World, gateway: Gateway, participants: LiveKitDriver, room_service: Any
) -> None:
    await participants.connect((await _join(world, "Tina Tutor"))["media"], publish=True)
    observer_device = await gateway.client()
    observer_join = await world.join("Oscar Observer", observer_device)
    observer = await participants.connect(observer_join.body["media"], publish=True)
    child = await participants.connect((await _join(world, "Sam Green"))["media"])

    async def permission_is(want: tuple[bool, bool]) -> bool:
        return await _permission(room_service, child) == want

    await eventually(lambda: permission_is((True, True)), timeout=15)

    # The observer leaves on purpose: the authority holds the child through LiveKit at once.
    left = await observer_device.post(
        "/v1/leave", {"token": world.invites["Oscar Observer"]["token"]}
    )
    assert left.status == 200, left.body
    await eventually(lambda: permission_is((False, False)), timeout=10)
    await eventually(_set(observer), timeout=10)  # and the observer is off LiveKit
    audit = (await world.admin.get("/v1/audit?limit=200&kind=supervision.hold")).body["items"]
    assert audit, "the hold is audited"


async def test_reconciliation_sees_who_livekit_lists_connected_and_who_dropped(
    world: World, participants: LiveKitDriver
) -> None:
    tutor = await participants.connect((await _join(world, "Tina Tutor"))["media"], publish=True)

    async def audited(kind: str) -> bool:
        answer = await world.admin.get(f"/v1/audit?limit=200&kind={kind}")
        return bool(answer.body["items"])

    # No webhook here: ListParticipants, each reconciliation round, is what the gateway sees.
    await eventually(lambda: audited("media.connected"), timeout=10)
    await tutor.leave()  # the connection drops (no "leave" through the gateway)
    await eventually(lambda: audited("media.vanished"), timeout=10)


async def test_the_join_page_may_reach_this_livekit_server_and_gets_its_client_from_here(
    gateway: Gateway, livekit: LiveKitServer
) -> None:
    page = await (await gateway.client()).get("/join")
    policy = page.headers["Content-Security-Policy"]
    connect = next(p for p in policy.split("; ") if p.startswith("connect-src"))
    assert connect.split()[1:] == ["'self'", livekit.url, livekit.http_url]
    assert "script-src 'self';" in policy  # the client is served by the gateway itself

    client = await (await gateway.client()).get("/static/vendor/livekit-client.js")
    if not default_livekit_client().is_file():
        assert client.status == 404  # not installed: nothing served, nothing fetched elsewhere
    else:
        assert client.status == 200
        assert client.headers["Content-Type"].startswith("text/javascript")


async def test_livekit_unreachable_refuses_joins_and_admits_nobody_blind(
    world: World, gateway: Gateway, livekit: LiveKitServer
) -> None:
    livekit.stop()

    answer = await world.join("Tina Tutor")

    assert answer.status == 503 and answer.code == "platform_unavailable"
    assert answer.headers.get("Retry-After")
    assert livekit.api_secret not in str(answer.body)
    audit = (await world.admin.get("/v1/audit?limit=100")).body["items"]
    kinds = [event["kind"] for event in audit]
    assert "join.platform_unavailable" in kinds
    assert "join.decision" not in kinds


def _set(arrival: LiveKitArrival) -> Any:
    async def check() -> bool:
        return arrival.disconnected.is_set()

    return check


async def test_webhooks_of_the_gateways_own_livekit_server_are_taken_for_its_session(
    world: World, gateway: Gateway, livekit: LiveKitServer
) -> None:
    """Without a separate keys file, a webhook signed with the API key the gateway uses for
    LiveKit is believed, and its room (the unguessable LiveKit name) maps back to the session;
    a webhook signed with any other key is refused."""
    room = _video(await _join(world, "Tina Tutor"), livekit)["room"]
    event = webhook.WebhookEvent(
        event="participant_joined",
        id="EV_own_server",
        created_at=int(time.time()),
        room=models.Room(name=room),
        participant=models.ParticipantInfo(identity="p_someone"),
    )
    body = event_body(event)

    async def post(authorization: str) -> int:
        headers = {"Content-Type": "application/webhook+json", "Authorization": authorization}
        async with (
            aiohttp.ClientSession() as http,
            http.post(gateway.base + WEBHOOK_PATH, data=body, headers=headers) as answer,
        ):
            return answer.status

    assert await post(sign_webhook(body, "APIother", "x" * 40)) == 401
    assert await post(sign_webhook(body, livekit.api_key, livekit.api_secret)) == 200
    entries = (await world.admin.get("/v1/audit?kind=livekit.webhook")).body["items"]
    assert [e["session_id"] for e in entries] == [world.session["id"]]
