"""Real participants on each platform, driven through the MediaPlatform port only.

The embedded relay: an aiortc peer whose SDP offer goes to `connect` (as the gateway's
/v1/media/offer does). LiveKit: the `livekit` real-time SDK connecting with the token `admit`
returned (as the join page's LiveKit client does), publishing a microphone when allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from livekit import rtc

from gateway.adapters.platform_livekit import LiveKitPlatform
from gateway.adapters.platform_relay import RelayPlatform
from gateway.clock import SystemClock
from gateway.domain.models import Grants
from tests.media._peers import Client as Peer
from tests.plugins.livekit_server import LiveKitServer

ORG = "org-contract"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


class Arrived(Protocol):
    async def leave(self) -> None: ...


@dataclass
class RelayArrival:
    peer: Peer

    async def leave(self) -> None:
        await self.peer.close()


@dataclass
class LiveKitArrival:
    room: rtc.Room
    ticket: dict[str, Any]
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def leave(self) -> None:
        await self.room.disconnect()


class Driver(Protocol):
    name: str

    @property
    def platform(self) -> Any: ...
    async def arrive(self, room: str, identity: str, grants: Grants) -> Arrived: ...
    async def close(self) -> None: ...


class RelayDriver:
    name = "relay"

    def __init__(self) -> None:
        self.platform = RelayPlatform(disconnect_timeout=3.0)
        self._arrived: list[Arrived] = []

    async def arrive(self, room: str, identity: str, grants: Grants) -> Arrived:
        await self.platform.open_room(room, ORG)
        assert await self.platform.admit(room, identity, "Student 3", grants) is None
        peer = Peer(identity, publish=grants.can_publish, slots=1)
        answer = await self.platform.connect(room, identity, grants, await peer.offer())
        await peer.accept(answer)
        arrival = RelayArrival(peer)
        self._arrived.append(arrival)
        return arrival

    async def close(self) -> None:
        for arrival in self._arrived:
            await arrival.leave()
        await self.platform.close()


class LiveKitDriver:
    name = "livekit"

    def __init__(self, server: LiveKitServer, *, token_seconds: float = 120.0) -> None:
        self.server = server
        self.platform = LiveKitPlatform(
            url=server.url,
            api_key=server.api_key,
            api_secret=server.api_secret,
            clock=SystemClock(),
            token_seconds=token_seconds,
        )
        self._arrived: list[LiveKitArrival] = []

    async def arrive(self, room: str, identity: str, grants: Grants) -> LiveKitArrival:
        await self.platform.open_room(room, ORG)
        ticket = await self.platform.admit(room, identity, "Student 3", grants)
        assert ticket is not None and ticket["platform"] == "livekit"
        return await self.connect(dict(ticket), publish=grants.can_publish)

    async def connect(self, ticket: dict[str, Any], *, publish: bool = False) -> LiveKitArrival:
        """A real participant connecting with a ticket (or a token a test made up)."""
        room = rtc.Room()
        arrival = LiveKitArrival(room, ticket)
        room.on("disconnected", lambda *_: arrival.disconnected.set())
        await room.connect(str(ticket["url"]), str(ticket["token"]))
        self._arrived.append(arrival)
        if publish:
            source = rtc.AudioSource(48000, 1)
            track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            await room.local_participant.publish_track(track, options)
        return arrival

    async def close(self) -> None:
        for arrival in self._arrived:  # kicked or not: each room's native side is released
            with contextlib.suppress(Exception):
                await arrival.room.disconnect()
        await self.platform.close()
