"""The double answers LiveKit's own client (livekit-api) as LiveKit does: bodies, grant checks,
signed webhooks; and its knobs do what they say. If these fail, tests built on the double mean
nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from livekit import api
from livekit.protocol import egress as eg
from livekit.protocol import models
from livekit.protocol import room as rm

from tests.livekit_double import LiveKitDouble, running_double
from tests.plugins.servers import free_port


@pytest.fixture
async def double() -> AsyncIterator[LiveKitDouble]:
    async with running_double() as started:
        yield started


@pytest.fixture
async def lk(double: LiveKitDouble) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(double.url, double.api_key, double.secret)
    yield client
    await client.aclose()


async def test_rooms_participants_and_permissions_over_twirp(
    double: LiveKitDouble, lk: api.LiveKitAPI
) -> None:
    room = await lk.room.create_room(rm.CreateRoomRequest(name="r1", max_participants=4))
    assert room.name == "r1" and room.max_participants == 4
    await double.join("r1", "p_adult")
    listed = await lk.room.list_participants(rm.ListParticipantsRequest(room="r1"))
    assert [p.identity for p in listed.participants] == ["p_adult"]

    held = models.ParticipantPermission(can_publish=False, can_subscribe=False)
    await lk.room.update_participant(
        rm.UpdateParticipantRequest(room="r1", identity="p_adult", permission=held)
    )
    assert double.participants["r1"]["p_adult"].permission.can_subscribe is False
    await lk.room.remove_participant(rm.RoomParticipantIdentity(room="r1", identity="p_adult"))
    listed = await lk.room.list_participants(rm.ListParticipantsRequest(room="r1"))
    assert list(listed.participants) == []
    rooms = await lk.room.list_rooms(rm.ListRoomsRequest())
    assert [r.name for r in rooms.rooms] == ["r1"]
    await lk.room.delete_room(rm.DeleteRoomRequest(room="r1"))
    assert double.rooms == {}


async def test_each_call_needs_its_own_grant_for_its_own_room(double: LiveKitDouble) -> None:
    await double._create_room(rm.CreateRoomRequest(name="r1"))
    await double._create_room(rm.CreateRoomRequest(name="r2"))

    async def call(method: str, body: bytes, grants: api.VideoGrants, secret: str = "") -> int:
        token = (
            api.AccessToken(double.api_key, secret or double.secret).with_grants(grants).to_jwt()
        )
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{double.url}/twirp/livekit.RoomService/{method}",
                data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            ) as answer,
        ):
            return answer.status

    r1 = b'{"room": "r1"}'
    assert await call("ListParticipants", r1, api.VideoGrants(room_admin=True, room="r1")) == 200
    assert await call("ListParticipants", r1, api.VideoGrants(room_admin=True, room="r2")) == 403
    assert await call("ListParticipants", r1, api.VideoGrants(room_list=True)) == 403
    assert await call("ListRooms", b"{}", api.VideoGrants(room_admin=True, room="r1")) == 403
    assert await call("CreateRoom", b'{"name": "r3"}', api.VideoGrants(room_list=True)) == 403
    wrong_secret = "x" * 40
    assert await call("ListRooms", b"{}", api.VideoGrants(room_list=True), wrong_secret) == 401


async def test_egress_starts_lists_stops_and_can_fail_mid_recording(
    double: LiveKitDouble, lk: api.LiveKitAPI
) -> None:
    await lk.room.create_room(rm.CreateRoomRequest(name="r1"))
    await double.join("r1", "p_tutor")
    started = await lk.egress.start_participant_egress(
        eg.ParticipantEgressRequest(room_name="r1", identity="p_tutor")
    )
    assert started.status == eg.EgressStatus.EGRESS_ACTIVE
    await double.fail_egress(started.egress_id)
    listed = await lk.egress.list_egress(eg.ListEgressRequest(room_name="r1"))
    assert [(e.egress_id, e.status) for e in listed.items] == [
        (started.egress_id, eg.EgressStatus.EGRESS_FAILED)
    ]
    with pytest.raises(api.TwirpError):
        await lk.egress.stop_egress(eg.StopEgressRequest(egress_id=started.egress_id))
    other = await lk.egress.start_track_egress(
        eg.TrackEgressRequest(room_name="r1", track_id="TR_1")
    )
    stopped = await lk.egress.stop_egress(eg.StopEgressRequest(egress_id=other.egress_id))
    # As LiveKit: ENDING at once, COMPLETE once its file is finished (and uploaded)
    assert stopped.status == eg.EgressStatus.EGRESS_ENDING
    for _ in range(100):
        listed = await lk.egress.list_egress(eg.ListEgressRequest(egress_id=other.egress_id))
        if listed.items[0].status == eg.EgressStatus.EGRESS_COMPLETE:
            break
        await asyncio.sleep(0.02)
    assert listed.items[0].status == eg.EgressStatus.EGRESS_COMPLETE


async def test_unreachable_mid_call(double: LiveKitDouble) -> None:
    client = api.LiveKitAPI(double.url, double.api_key, double.secret)
    try:
        await client.room.create_room(rm.CreateRoomRequest(name="r1"))
        double.unreachable = True
        with pytest.raises((aiohttp.ClientError, api.TwirpError)):
            await client.room.list_participants(rm.ListParticipantsRequest(room="r1"))
        double.unreachable = False
        listed = await client.room.list_participants(rm.ListParticipantsRequest(room="r1"))
        assert list(listed.participants) == []
    finally:
        await client.aclose()


async def test_webhooks_are_signed_as_livekit_signs_them_and_can_be_reordered() -> None:
    """livekit-api's own WebhookReceiver accepts what the double sends; held webhooks come
    out in the order asked for; duplicates come twice."""
    received: list[str] = []
    receiver: api.WebhookReceiver | None = None

    async def hook(request: web.Request) -> web.Response:
        assert receiver is not None
        assert request.content_type == "application/webhook+json"
        event = receiver.receive((await request.read()).decode(), request.headers["Authorization"])
        received.append(f"{event.event}:{event.participant.identity}")
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with running_double(webhook_url=f"http://127.0.0.1:{port}/hook") as double:
            receiver = api.WebhookReceiver(api.TokenVerifier(double.api_key, double.secret))
            await double._create_room(rm.CreateRoomRequest(name="r1"))
            double.webhooks = "hold"
            await double.join("r1", "p1")
            await double.leave("r1", "p1")
            await double.release_held(lambda bodies: bodies[::-1])
            double.webhooks, double.duplicate_webhooks = "deliver", True
            await double.join("r1", "p2")
            double.webhooks = "drop"
            await double.join("r1", "p3")
    finally:
        await runner.cleanup()
    assert received == [
        "room_started:",
        "participant_left:p1",
        "participant_joined:p1",
        "participant_joined:p2",
        "participant_joined:p2",
    ]
