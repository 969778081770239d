"""Helpers for in-process live tests: people arriving with real aiortc media through the
embedded relay, what the relay grants them, and what their event stream says."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from gateway.http.live_api import LIVE
from tests.http.world import World
from tests.media._peers import Client as Peer
from tests.media._peers import wait_until
from tests.plugins.gateway_server import Client, Gateway


@dataclass
class Arrival:
    name: str
    device: Client
    body: dict[str, Any]
    peer: Peer | None = None

    @property
    def identity(self) -> str:
        return str(self.body["participant"]["identity"])


@dataclass
class People:
    """Everyone who arrived in a test; `close` hangs up every peer."""

    world: World
    arrived: dict[str, Arrival] = field(default_factory=dict)

    @property
    def gateway(self) -> Gateway:
        return self.world.gateway

    @property
    def session_id(self) -> str:
        return str(self.world.session["id"])

    def token(self, name: str) -> str:
        return str(self.world.invites[name]["token"])

    async def join(self, name: str, device: Client | None = None) -> Arrival:
        """An HTTP join only (no media)."""
        device = device or await self.gateway.client()
        answer = await self.world.join(name, device)
        assert answer.status == 200, answer.body
        arrival = Arrival(name, device, answer.body)
        self.arrived[name] = arrival
        return arrival

    async def arrive(self, name: str, device: Client | None = None) -> Arrival:
        """Join and connect media; returns once the relay has them connected."""
        arrival = await self.join(name, device)
        await self.connect(arrival)
        return arrival

    async def connect(self, arrival: Arrival) -> None:
        peer = Peer(arrival.name, slots=2)
        arrival.peer = peer
        offer = {"credential": arrival.body["media"]["credential"], "sdp": await peer.offer()}
        answer = await arrival.device.post("/v1/media/offer", offer)
        assert answer.status == 200, answer.body
        await peer.accept(answer.body["sdp"])
        await wait_until(lambda: self.connected(arrival.identity), timeout=10)
        await asyncio.sleep(0.2)  # the relay's `joined` event is handled

    def connected(self, identity: str) -> bool:
        platform = self.gateway.app[LIVE]._platform
        return any(
            p.identity == identity and p.connected
            for p in platform.participants_now(self.session_id)
        )

    def admitted(self, identity: str) -> bool:
        """What the relay itself grants (the truth): can this person see and hear others?"""
        platform = self.gateway.app[LIVE]._platform
        return any(
            p.identity == identity and p.grants.can_subscribe
            for p in platform.participants_now(self.session_id)
        )

    async def audit(self, kind: str | None = None) -> list[dict[str, Any]]:
        path = "/v1/audit?limit=500" + (f"&kind={kind}" if kind else "")
        return list((await self.world.admin.get(path)).body["items"])

    async def incidents(self, at_least: int = 0, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The incident log, once it has `at_least` entries (or the timeout passed)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            items = list((await self.world.admin.get("/v1/incidents")).body["items"])
            if len(items) >= at_least or asyncio.get_running_loop().time() > deadline:
                return items
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for arrival in self.arrived.values():
            if arrival.peer is not None:
                await arrival.peer.close()


async def stream(device: Client, token: str, into: list[dict[str, Any]]) -> None:
    """Read a participant's event stream into `into` until the server closes it."""
    async with device.http.post(device.base + "/v1/live/events", json={"token": token}) as answer:
        assert answer.status == 200, await answer.text()
        async for line in answer.content:
            if line.startswith(b"data: "):
                into.append(json.loads(line[6:]))
