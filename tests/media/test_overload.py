"""Overload: past its measured capacity the relay refuses new sessions (then any new
connection) with a clear error, and the sessions already running go on undisturbed."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.media_load import LoadLevel, LoadLimits
from gateway.http.live_api import LIVE
from gateway.media import passthrough
from gateway.media.errors import RelayOverloaded
from gateway.media.grants import MediaGrants
from gateway.media.load import LoadMonitor, udp_drops_of_this_process
from gateway.media.relay import EmbeddedRelay
from tests.http.world import build_world
from tests.live_media._session import People
from tests.plugins.gateway_server import Gateway

from ._load_peers import PacketPeer
from ._peers import wait_until

pytestmark = pytest.mark.media

FULL = MediaGrants(can_publish=True, can_subscribe=True)


class Relay:
    def __init__(self, limits: LoadLimits) -> None:
        self.relay = EmbeddedRelay(disconnect_timeout=5.0, load_limits=limits)
        assert self.relay.load is not None
        # A short window so the test sees load change within a fraction of a second.
        self.relay.load = LoadMonitor(limits, self.relay.forwarded_streams, window=0.3)
        self.peers: list[PacketPeer] = []

    async def join(self, room: str, name: str) -> PacketPeer:
        await self.relay.open_room(room)
        peer = PacketPeer(name, video_bytes=500, audio_bytes=60, slots=3)
        self.peers.append(peer)
        answer = await self.relay.connect(room, name, FULL, await peer.offer())
        await peer.accept(answer)
        return peer

    async def connected(self, room: str, *names: str) -> None:
        def ok() -> bool:
            present = {p.identity for p in self.relay.participants(room) if p.connected}
            return set(names) <= present

        await wait_until(ok, timeout=15)

    async def refused(self, room: str, name: str) -> RelayOverloaded:
        await self.relay.open_room(room)
        peer = PacketPeer(name, video_bytes=500, slots=3)
        self.peers.append(peer)
        with pytest.raises(RelayOverloaded) as refused:
            await self.relay.connect(room, name, FULL, await peer.offer())
        assert name not in {p.identity for p in self.relay.participants(room)}
        return refused.value


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    made: list[Relay] = []

    def build(limits: LoadLimits) -> Relay:
        made.append(Relay(limits))
        return made[-1]

    yield build
    for relay in made:
        for peer in relay.peers:
            await peer.close()
        await relay.relay.close()


async def _delivery(sub: PacketPeer, pub: PacketPeer, seconds: float) -> float:
    sent0, got0 = pub.sent(), sub.received()
    await asyncio.sleep(seconds)
    return (sub.received() - got0) / max(1, pub.sent() - sent0)


async def test_past_the_stream_limit_a_new_session_is_refused_and_running_ones_go_on(
    make: Any,
) -> None:
    relay = make(LoadLimits(max_loop_lag=10.0, max_streams=4, retry_after=20))
    a = await relay.join("running", "a")
    b = await relay.join("running", "b")
    await relay.connected("running", "a", "b")
    await wait_until(lambda: relay.relay.forwarded_streams() >= 4, timeout=10)
    assert relay.relay.load.verdict().level is LoadLevel.BUSY

    refusal = await relay.refused("new-session", "c")
    assert refusal.code == "overloaded" and refusal.retry_after == 20
    assert "cannot start a new session" in str(refusal)
    assert "sessions already running are not affected" in str(refusal)
    assert refusal.reasons == ("4 streams forwarded (limit 4)",)
    # Someone joining the session that is already running still gets in (busy, not saturated).
    late = await relay.join("running", "late")
    await relay.connected("running", "late")
    # And the running session's media never stopped.
    assert await _delivery(b, a, 2.0) >= 0.9
    await wait_until(lambda: late.received() > 10, timeout=10)


async def test_a_starved_event_loop_refuses_every_new_connection_until_it_recovers(
    make: Any,
) -> None:
    """Measured lag, not a count: a loop kept late (as by a CPU shortage) refuses even people
    joining a running session; a reconnect is still taken (it adds no load); when the lag
    falls, new sessions are admitted again."""
    relay = make(LoadLimits(max_loop_lag=0.03))
    a = await relay.join("running", "a")
    b = await relay.join("running", "b")
    await relay.connected("running", "a", "b")
    assert relay.relay.load.verdict().level is LoadLevel.OK

    hogging = True

    async def hog() -> None:
        while hogging:
            time.sleep(0.2)  # the loop is blocked, as when the process gets too little CPU
            await asyncio.sleep(0.005)

    hog_task = asyncio.create_task(hog())
    try:
        await wait_until(
            lambda: relay.relay.load.verdict().level is LoadLevel.SATURATED, timeout=10
        )
        refusal = await relay.refused("running", "joiner")
        assert "cannot join this session" in str(refusal)
        assert any("event loop" in reason for reason in refusal.reasons)
        await relay.refused("another", "starter")
        # "a" reconnecting (a new connection replacing its own) is not refused.
        again = PacketPeer("a", video_bytes=500, slots=3)
        relay.peers.append(again)
        await again.accept(await relay.relay.connect("running", "a", FULL, await again.offer()))
    finally:
        hogging = False
        await hog_task
    await wait_until(lambda: relay.relay.load.verdict().level is LoadLevel.OK, timeout=10)
    await relay.join("another", "starter")
    await relay.connected("another", "starter")
    await relay.connected("running", "a", "b")
    await wait_until(lambda: b.received() > 0 and a.received() >= 0, timeout=5)


def test_udp_drops_on_this_process_sockets_are_counted() -> None:
    """A socket of this process that is not read overflows: the kernel's drops show in the
    count the admission reads (``/proc/net/udp``, this process's sockets only)."""
    before = udp_drops_of_this_process()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        receiver.bind(("127.0.0.1", 0))
        for _ in range(200):
            sender.sendto(b"x" * 1000, receiver.getsockname())
        assert udp_drops_of_this_process() - before >= 100


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def gateway_settings() -> dict[str, Any]:
    # The stream cap alone decides here (a loaded test machine must not add a lag refusal).
    return {"media_max_streams": 4, "media_max_loop_lag_seconds": 30.0}


async def test_host_starting_a_session_past_capacity_gets_503_overloaded_over_http(
    gateway: Gateway,
) -> None:
    """One session runs (tutor and observer: 4 streams, the configured capacity). A host of
    another organisation opening their session gets 503 `overloaded` with Retry-After and a
    plain message for their page; a child joining the running session still gets in; the
    running session's media and supervision go on."""
    running = People(await build_world(gateway))
    other = People(await build_world(gateway))
    try:
        tutor = await running.arrive("Tina Tutor")
        observer = await running.arrive("Oscar Observer")
        platform = gateway.app[LIVE]._platform
        await wait_until(lambda: platform.relay.forwarded_streams() >= 4, timeout=10)

        host = await other.join("Tina Tutor")
        assert host.body["outcome"] == "admit"
        peer = PacketPeer("host", video_bytes=500, slots=2)
        host.peer = None
        try:
            offer = {"credential": host.body["media"]["credential"], "sdp": await peer.offer()}
            answer = await host.device.post("/v1/media/offer", offer)
        finally:
            await peer.close()
        assert answer.status == 503, answer.body
        assert answer.code == "overloaded"
        assert int(answer.headers["Retry-After"]) >= 30
        message = answer.body["error"]["message"]
        assert "at capacity" in message and "not affected" in message

        child = await running.arrive("Sam Green")  # joins the running session: let in
        await wait_until(lambda: running.admitted(child.identity), timeout=10)
        assert tutor.peer is not None and observer.peer is not None
        before = tutor.peer.total("video")
        await asyncio.sleep(1.0)
        assert tutor.peer.total("video") - before >= 15  # observer's video still arrives
    finally:
        await running.close()
        await other.close()


def _rmem_max() -> int:
    return int(Path("/proc/sys/net/core/rmem_max").read_text())


@pytest.mark.skipif(not Path("/proc/sys/net/core/rmem_max").exists(), reason="Linux only")
@pytest.mark.parametrize("over_the_cap", [False, True])
async def test_socket_buffers_are_asked_for_and_a_kernel_cap_is_logged(
    over_the_cap: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay's media sockets get the receive buffer it asks for; when the kernel caps it
    (net.core.rmem_max), the operator is told how to fix it, once."""
    asked = 4 * _rmem_max() if over_the_cap else _rmem_max() // 2
    relay = EmbeddedRelay(socket_buffer_bytes=asked)
    await relay.open_room("room")
    peers = [PacketPeer(f"p{i}", slots=1) for i in range(2)]
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.media.relay"):
            for peer in peers:
                await peer.accept(await relay.connect("room", peer.name, FULL, await peer.offer()))
        pc = relay._rooms["room"].peers["p0"].pc
        sizes = [
            p.transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            for c in passthrough._ice_connections(pc)
            for p in c._protocols
        ]
        assert sizes
        capped = [r for r in caplog.records if "net.core.rmem_max" in r.getMessage()]
        if over_the_cap:
            assert all(size == 2 * _rmem_max() for size in sizes)  # Linux reports it doubled
            assert len(capped) == 1  # once per relay, not per socket
        else:
            assert all(size >= 2 * asked for size in sizes)
            assert not capped
    finally:
        for peer in peers:
            await peer.close()
        await relay.close()
