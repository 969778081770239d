"""LiveKit's own cases (issue 10, "Tokens", "Control", "Bad input"), against a real server.

Tokens: minted just in time, minutes long, the opaque per-admission identity and the display
name only, every grant explicit. Rooms: created by the gateway (the server is configured not
to create rooms on its own), named unguessably. Control: holds through UpdateParticipant
(verified by ListParticipants: permission and published tracks), removal that an old token
cannot undo, a second connection with the same identity, a newer admission superseding an
older connection. Bad input: a token for one room used for another, LiveKit unreachable, a
wrong API secret.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from livekit import api, rtc

from gateway.adapters.platform_livekit import LiveKitPlatform, masked_part
from gateway.clock import SystemClock
from gateway.domain.errors import ErrorCode, Unavailable
from gateway.domain.models import Grants
from tests.platforms._drivers import LiveKitDriver, eventually
from tests.plugins.livekit_server import LiveKitServer
from tests.plugins.servers import free_port

pytestmark = pytest.mark.media

SPEAKER = Grants(can_publish=True, can_subscribe=True)
VIEWER = Grants(can_publish=False, can_subscribe=True, hidden=True)
EVERY_VIDEO_GRANT = {
    "roomCreate",
    "roomList",
    "roomRecord",
    "roomAdmin",
    "roomJoin",
    "room",
    "canPublish",
    "canSubscribe",
    "canPublishData",
    "canPublishSources",
    "canUpdateOwnMetadata",
    "ingressAdmin",
    "hidden",
    "recorder",
    "agent",
    "canSubscribeMetrics",
    "canManageAgentSession",
}


@pytest.fixture
async def driver(livekit_server: LiveKitServer) -> AsyncIterator[LiveKitDriver]:
    chosen = LiveKitDriver(livekit_server)
    try:
        yield chosen
    finally:
        await chosen.close()


@pytest.fixture
async def room_service(livekit_server: LiveKitServer) -> AsyncIterator[Any]:
    """LiveKit's API as an operator sees it (the test's view of the truth)."""
    client = api.LiveKitAPI(
        livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret
    )
    try:
        yield client.room
    finally:
        await client.aclose()


def _session() -> str:
    return "session-" + secrets.token_hex(6)


def _identity() -> str:
    return "p_" + secrets.token_hex(8)


def _claims(token: str, server: LiveKitServer) -> dict[str, Any]:
    return dict(jwt.decode(token, server.api_secret, algorithms=["HS256"], issuer=server.api_key))


async def _info(room_service: Any, room_name: str) -> dict[str, Any]:
    listed = await room_service.list_participants(api.ListParticipantsRequest(room=room_name))
    return {p.identity: p for p in listed.participants}


# --- tokens -----------------------------------------------------------------------------------


async def test_a_token_carries_the_identity_the_name_and_every_grant_explicitly(
    driver: LiveKitDriver, livekit_server: LiveKitServer
) -> None:
    session, identity = _session(), _identity()
    await driver.platform.open_room(session, "org")
    ticket = await driver.platform.admit(session, identity, "Student 3", SPEAKER)
    assert ticket is not None
    assert set(ticket) == {"platform", "url", "token", "expires_in"}
    assert ticket["url"] == livekit_server.url

    claims = _claims(str(ticket["token"]), livekit_server)
    assert set(claims) == {"video", "name", "sub", "iss", "nbf", "exp"}  # no metadata
    assert claims["name"] == "Student 3"
    assert masked_part(claims["sub"]) == identity and claims["sub"] != identity
    assert 60 <= claims["exp"] - claims["nbf"] <= 600  # minutes, not hours
    assert abs(claims["nbf"] - time.time()) < 30  # minted now
    video = claims["video"]
    assert set(video) == EVERY_VIDEO_GRANT
    assert video["room"] == driver.platform.room_name(session)
    assert video["roomJoin"] is True
    assert (video["canPublish"], video["canSubscribe"]) == (True, True)
    assert video["canPublishSources"] == ["camera", "microphone"]
    assert video["canPublishData"] is False
    assert video["canUpdateOwnMetadata"] is False
    assert video["hidden"] is False
    for admin_grant in ("roomCreate", "roomList", "roomRecord", "roomAdmin", "ingressAdmin"):
        assert video[admin_grant] is False, admin_grant


async def test_a_viewer_token_is_hidden_and_subscribe_only_and_each_admission_is_new(
    driver: LiveKitDriver, livekit_server: LiveKitServer
) -> None:
    session, identity = _session(), _identity()
    await driver.platform.open_room(session, "org")
    first = await driver.platform.admit(session, identity, "Viewer 1", VIEWER)
    second = await driver.platform.admit(session, identity, "Viewer 1", VIEWER)
    assert first is not None and second is not None
    one, two = (_claims(str(t["token"]), livekit_server) for t in (first, second))
    assert one["video"]["hidden"] is True
    assert (one["video"]["canPublish"], one["video"]["canSubscribe"]) == (False, True)
    assert one["video"]["canPublishSources"] == []
    assert one["sub"] != two["sub"]  # a fresh platform identity per admission
    assert masked_part(one["sub"]) == masked_part(two["sub"]) == identity


async def test_room_names_are_unguessable_and_carry_no_session_id(
    livekit_server: LiveKitServer,
) -> None:
    session = _session()
    ours = LiveKitPlatform(
        url=livekit_server.url, api_key="k", api_secret="one secret", clock=SystemClock()
    )
    other = LiveKitPlatform(
        url=livekit_server.url, api_key="k", api_secret="another secret", clock=SystemClock()
    )
    name = ours.room_name(session)
    assert name == ours.room_name(session)  # the same on every gateway instance
    assert name != other.room_name(session)  # not computable without the secret
    assert session not in name and len(name) >= 32


async def test_rooms_exist_only_once_the_gateway_created_them(
    driver: LiveKitDriver, livekit_server: LiveKitServer, room_service: Any
) -> None:
    session = _session()
    token = driver.platform.mint(
        driver.platform.room_name(session), _identity() + ".x", "Tutor", SPEAKER, _now()
    )
    with pytest.raises(rtc.ConnectError):  # no room yet, and LiveKit will not make one
        await driver.connect({"url": livekit_server.url, "token": token})

    await driver.platform.open_room(session, "org")
    rooms = await room_service.list_rooms(api.ListRoomsRequest())
    assert driver.platform.room_name(session) in {r.name for r in rooms.rooms}
    # A webhook names the room: it leads back to the session on any gateway instance.
    assert driver.platform.session_for_room(driver.platform.room_name(session)) == session


async def test_any_instance_maps_a_room_name_back_to_its_session_and_nothing_else(
    livekit_server: LiveKitServer,
) -> None:
    """A webhook may reach a process that never opened the room (issue 10, point 7)."""
    session = _session()
    opener, other_process, other_key = (
        LiveKitPlatform(url=livekit_server.url, api_key="k", api_secret=secret, clock=SystemClock())
        for secret in ("one secret", "one secret", "another secret")
    )
    name = opener.room_name(session)

    assert other_process.session_for_room(name) == session
    assert other_key.session_for_room(name) is None  # a name made with another key
    tampered = name[:-3] + ("aaa" if not name.endswith("aaa") else "bbb")
    for forged in (tampered, "r_" + "a" * 77, "r_!!", session, "", "r_"):
        assert opener.session_for_room(forged) is None


async def test_a_token_for_one_room_is_refused_for_another(
    driver: LiveKitDriver, livekit_server: LiveKitServer, room_service: Any
) -> None:
    mine, theirs = _session(), _session()
    await driver.platform.open_room(theirs, "org")
    await driver.platform.open_room(mine, "org")
    ticket = await driver.platform.admit(mine, _identity(), "Student 3", SPEAKER)
    assert ticket is not None
    forged = _with_room(str(ticket["token"]), driver.platform.room_name(theirs))

    with pytest.raises(rtc.ConnectError):
        await driver.connect({**ticket, "token": forged})
    assert await _info(room_service, driver.platform.room_name(theirs)) == {}

    arrival = await driver.connect(dict(ticket))  # the real one still works, in its own room
    assert arrival.room.name == driver.platform.room_name(mine)


# --- control ----------------------------------------------------------------------------------


async def test_a_hold_unpublishes_and_unsubscribes_through_update_participant(
    driver: LiveKitDriver, room_service: Any
) -> None:
    session, child = _session(), _identity()
    arrival = await driver.arrive(session, child, SPEAKER)
    name = driver.platform.room_name(session)
    platform_identity = arrival.room.local_participant.identity

    async def publishing() -> bool:
        info = (await _info(room_service, name)).get(platform_identity)
        return info is not None and len(info.tracks) == 1

    await eventually(publishing)

    await driver.platform.set_grants(session, child, Grants.none())

    info = (await _info(room_service, name))[platform_identity]
    permission = info.permission
    assert (permission.can_publish, permission.can_subscribe) == (False, False)
    assert permission.can_publish_data is False and permission.can_update_metadata is False

    async def unpublished() -> bool:
        return len((await _info(room_service, name))[platform_identity].tracks) == 0

    await eventually(unpublished)


async def test_a_removed_participant_cannot_come_back_with_their_old_token(
    driver: LiveKitDriver, room_service: Any
) -> None:
    session, removed = _session(), _identity()
    first = await driver.arrive(session, removed, SPEAKER)
    name = driver.platform.room_name(session)
    await eventually(lambda: _listed(driver, session, removed))

    await driver.platform.remove(session, removed)
    await eventually(_set(first.disconnected))

    # The token has not expired and LiveKit checks nothing else: it lets them in again...
    again = await driver.connect(first.ticket)
    assert again.room.isconnected()
    # ...and the gateway's next look at the room removes them and does not count them.
    assert not await _listed(driver, session, removed)
    await eventually(_set(again.disconnected))
    assert await _info(room_service, name) == {}


async def test_the_same_identity_twice_keeps_one_connection(
    driver: LiveKitDriver, room_service: Any
) -> None:
    session, child = _session(), _identity()
    first = await driver.arrive(session, child, SPEAKER)
    name = driver.platform.room_name(session)

    copy = await driver.connect(first.ticket)  # the same token again (a copied link)

    await eventually(_set(first.disconnected))  # LiveKit kicks the first
    assert list(await _info(room_service, name)) == [copy.room.local_participant.identity]
    assert await _listed(driver, session, child)


async def test_a_newer_admission_supersedes_an_older_connection(
    driver: LiveKitDriver, room_service: Any
) -> None:
    session, child = _session(), _identity()
    old_tab = await driver.arrive(session, child, SPEAKER)
    new_tab = await driver.arrive(session, child, Grants.none())  # joined again, held now
    name = driver.platform.room_name(session)

    # The older connection, with the grants it had, is disconnected at the new admission...
    await eventually(_set(old_tab.disconnected))
    # ...and if it comes back with its old token, it is removed and not counted.
    comeback = await driver.connect(old_tab.ticket)
    listed = await driver.platform.participants(session)
    assert [(p.identity, p.grants.can_subscribe) for p in listed] == [(child, False)]
    await eventually(_set(comeback.disconnected))
    assert new_tab.room.isconnected()
    assert list(await _info(room_service, name)) == [new_tab.room.local_participant.identity]


async def test_a_new_owner_vouches_only_for_its_own_admissions(
    driver: LiveKitDriver, livekit_server: LiveKitServer, room_service: Any
) -> None:
    """The session's owner is killed (its memory of admissions and removals gone) and another
    process takes the session over: a removed person back with their old token, an older tab
    and every connection the former owner admitted are removed when the new owner looks; only
    what it admitted itself counts."""
    session, removed, child, tutor = _session(), _identity(), _identity(), _identity()
    former = driver.platform
    gone = await driver.arrive(session, removed, SPEAKER)
    old_tab = await driver.arrive(session, child, SPEAKER)
    await driver.arrive(session, child, Grants.none())  # joined again: the old tab superseded
    await eventually(_set(old_tab.disconnected))
    await former.remove(session, removed)
    await eventually(_set(gone.disconnected))
    still_there = await driver.arrive(session, tutor, SPEAKER)  # admitted by the former owner

    new_owner = LiveKitPlatform(
        url=livekit_server.url,
        api_key=livekit_server.api_key,
        api_secret=livekit_server.api_secret,
        clock=SystemClock(),
    )
    try:
        await new_owner.open_room(session, "org")  # the session taken over (the room is there)
        back = await driver.connect(gone.ticket)  # unexpired tokens: LiveKit lets them in
        old_back = await driver.connect(old_tab.ticket)
        assert back.room.isconnected() and old_back.room.isconnected()

        assert await new_owner.participants(session) == []
        for arrival in (back, old_back, still_there):
            await eventually(_set(arrival.disconnected))
        assert await _info(room_service, new_owner.room_name(session)) == {}

        # The tutor's page re-joins at the new owner: that admission counts.
        again = await new_owner.admit(session, tutor, "Tutor", SPEAKER)
        assert again is not None
        rejoined = await driver.connect(dict(again))
        listed = await new_owner.participants(session)
        assert [p.identity for p in listed] == [tutor]
        assert rejoined.room.isconnected()
    finally:
        await new_owner.close()


# --- bad input --------------------------------------------------------------------------------


async def test_livekit_unreachable_is_platform_unavailable_within_the_deadline() -> None:
    closed = LiveKitPlatform(
        url=f"ws://127.0.0.1:{free_port()}",
        api_key="APIkey",
        api_secret="s" * 40,
        clock=SystemClock(),
        timeout_seconds=1.0,
    )
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable) as refused:
            await closed.open_room(_session(), "org")
        assert refused.value.code is ErrorCode.PLATFORM_UNAVAILABLE
        assert time.monotonic() - started < 3
        with pytest.raises(Unavailable):
            await closed.participants(_session())
        with pytest.raises(Unavailable):
            await closed.set_grants(_session(), _identity(), Grants.none())
    finally:
        await closed.close()


async def test_a_wrong_api_secret_is_platform_unavailable_not_an_admission(
    livekit_server: LiveKitServer,
) -> None:
    wrong = LiveKitPlatform(
        url=livekit_server.url,
        api_key=livekit_server.api_key,
        api_secret="not the secret " * 4,
        clock=SystemClock(),
    )
    try:
        with pytest.raises(Unavailable) as refused:
            await wrong.open_room(_session(), "org")
        assert refused.value.code is ErrorCode.PLATFORM_UNAVAILABLE
        assert "secret" not in refused.value.message
    finally:
        await wrong.close()


# --- helpers ----------------------------------------------------------------------------------


def _now() -> Any:
    return SystemClock().now()


def _with_room(token: str, room: str) -> str:
    """The token with its room claim changed and its signature kept (what a forger can do)."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["video"]["room"] = room
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}.{signature}"


async def _listed(driver: LiveKitDriver, session: str, identity: str) -> bool:
    return any(
        p.identity == identity and p.connected for p in await driver.platform.participants(session)
    )


def _set(event: Any) -> Any:
    async def check() -> bool:
        return bool(event.is_set())

    return check
