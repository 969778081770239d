"""Bad input at the embedded relay: a peer flooding past its announced bitrate, a peer sending
malformed RTP/RTCP, a peer that stops reading. Each time the others' media must go on."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.media import passthrough
from gateway.media.grants import MediaGrants
from gateway.media.relay import EmbeddedRelay

from ._load_peers import PacketPeer
from ._peers import wait_until

pytestmark = pytest.mark.media

ROOM = "room-bad"
FULL = MediaGrants(can_publish=True, can_subscribe=True)
VIEWER = MediaGrants(can_publish=False, can_subscribe=True)


class Room:
    def __init__(self, relay: EmbeddedRelay) -> None:
        self.relay = relay
        self.peers: list[PacketPeer] = []

    async def join(self, peer: PacketPeer, grants: MediaGrants = FULL) -> str:
        self.peers.append(peer)
        answer = await self.relay.connect(ROOM, peer.name, grants, await peer.offer())
        await peer.accept(answer)
        return answer

    async def connected(self, *peers: PacketPeer) -> None:
        def ok() -> bool:
            present = {p.identity for p in self.relay.participants(ROOM) if p.connected}
            return {p.name for p in peers} <= present

        await wait_until(ok, timeout=15)

    def slot_of(self, subscriber: PacketPeer, publisher: PacketPeer) -> int:
        slots = self.relay.slot_map(ROOM, subscriber.name)
        return next(i for i, who in slots.items() if who == publisher.name)

    async def flowing(self, subscriber: PacketPeer, publisher: PacketPeer) -> None:
        await wait_until(
            lambda: publisher.name in self.relay.slot_map(ROOM, subscriber.name).values(), 10
        )
        slot = self.slot_of(subscriber, publisher)
        await wait_until(lambda: subscriber.frames[(slot, "video")] > 5, timeout=10)

    async def delivered(
        self, subscriber: PacketPeer, publisher: PacketPeer, seconds: float
    ) -> tuple[float, int]:
        """Share of ``publisher``'s video frames ``subscriber`` got over ``seconds``, and the
        bytes it got from that publisher."""
        slot = self.slot_of(subscriber, publisher)
        sent0, got0 = publisher.sent(), subscriber.frames[(slot, "video")]
        bytes0 = subscriber.bytes[(slot, "video")]
        await asyncio.sleep(seconds)
        sent = publisher.sent() - sent0
        got = subscriber.frames[(slot, "video")] - got0
        return got / max(sent, 1), subscriber.bytes[(slot, "video")] - bytes0


@pytest.fixture
async def room(request: pytest.FixtureRequest) -> AsyncIterator[Room]:
    kwargs: dict[str, Any] = getattr(request, "param", {})
    relay = EmbeddedRelay(disconnect_timeout=5.0, **kwargs)
    await relay.open_room(ROOM)
    room = Room(relay)
    try:
        yield room
    finally:
        for peer in room.peers:
            await peer.close()
        await relay.close()


@pytest.mark.parametrize("room", [{"max_video_kbps": 200}], indirect=True)
async def test_publisher_at_ten_times_its_announced_bitrate_is_held_to_it(room: Room) -> None:
    """The answer announces 200 kbit/s; a publisher sending 2 Mbit/s reaches its subscriber at
    no more than the policed rate (twice announced, one second of burst), and another
    publisher's video to the same subscriber is untouched."""
    flooder = PacketPeer("flooder", video_bytes=2_000_000 // 8 // 30, slots=0)
    honest = PacketPeer("honest", video_bytes=500, slots=0)
    viewer = PacketPeer("viewer", video_bytes=None, slots=2)
    answer = await room.join(flooder)
    assert "b=AS:200" in answer  # announced to the publisher, in its receive m-section
    await room.join(honest)
    await room.join(viewer, VIEWER)
    await room.connected(flooder, honest, viewer)
    await room.flowing(viewer, honest)
    await asyncio.sleep(1.5)  # the flooder's burst allowance is spent

    window = 3.0
    (honest_share, _), (_, flood_bytes) = await asyncio.gather(
        room.delivered(viewer, honest, window), room.delivered(viewer, flooder, window)
    )
    policed_rate = 2 * 200_000 / 8  # bytes/s let through
    assert flood_bytes <= 1.25 * policed_rate * window  # bounded: ~1/5 of what was sent
    assert flooder.tracks["video"].sent_bytes > 5 * flood_bytes
    assert honest_share >= 0.9
    stats = room.relay.stats(ROOM, "flooder")
    assert stats["video_policed"] > 0
    assert room.relay.stats(ROOM, "honest")["video_policed"] == 0


def _rtp(payload_type: int, seq: int, ssrc: int, payload: bytes, first: int = 0x80) -> bytes:
    return struct.pack("!BBHII", first, payload_type, seq, 1234, ssrc) + payload


def _malformed_rtp(ssrc: int) -> list[bytes]:
    return [
        _rtp(96, 1, ssrc, b""),  # VP8 payload type with no payload at all
        _rtp(96, 2, ssrc, b"\x80"),  # VP8 descriptor announcing an extension that is missing
        _rtp(96, 3, ssrc, b"\xff\xff\xff"),  # every descriptor bit set, truncated
        _rtp(111, 4, ssrc, b""),  # empty Opus
        _rtp(127, 5, ssrc, os.urandom(50)),  # unknown payload type
        _rtp(96, 6, ssrc, os.urandom(20), first=0x90),  # extension bit, no extension header
        _rtp(96, 7, ssrc, b"\x00\x10\x00\x40" + os.urandom(8), first=0x90),  # ext too long
        _rtp(96, 8, ssrc, os.urandom(30), first=0x8F),  # 15 CSRCs announced, too few bytes
        _rtp(96, 9, ssrc, os.urandom(30) + b"\xff", first=0xA0),  # padding longer than packet
        _rtp(96, 10, 0, os.urandom(1100)),  # SSRC nobody announced
    ]


def _malformed_rtcp(ssrc: int) -> list[bytes]:
    return [
        struct.pack("!BBHI", 0x80, 200, 100, ssrc),  # SR whose length runs past the packet
        struct.pack("!BBHI", 0x81, 201, 1, ssrc),  # RR claiming a report block it lacks
        struct.pack("!BBHII", 0x81, 206, 2, ssrc, 0),  # PLI for a media SSRC nobody sends
        struct.pack("!BBHII", 0x8F, 205, 2, ssrc, ssrc) + b"",  # NACK with no FCI
        struct.pack("!BBHI", 0x80, 210, 1, ssrc) + b"\x00" * 4,  # unknown RTCP type
        struct.pack("!BBHI", 0x9F, 202, 0, ssrc),  # SDES with 31 chunks and none present
        struct.pack("!BBHII", 0x81, 203, 1, ssrc, 0) + os.urandom(7),  # BYE with trailing junk
    ]


async def test_malformed_rtp_and_rtcp_crash_nothing_and_others_go_on(room: Room) -> None:
    """Garbage before decryption (random, DTLS-looking, RTP-looking) and well-encrypted but
    malformed RTP/RTCP from one publisher: the relay keeps serving everyone else."""
    rogue = PacketPeer("rogue", video_bytes=500, slots=1)
    honest = PacketPeer("honest", video_bytes=500, slots=1)
    viewer = PacketPeer("viewer", video_bytes=None, slots=2)
    for peer in (rogue, honest):
        await room.join(peer)
    await room.join(viewer, VIEWER)
    await room.connected(rogue, honest, viewer)
    await room.flowing(viewer, honest)

    dtls = rogue.dtls()
    ice = dtls.transport
    garbage = [os.urandom(n) for n in (1, 7, 100, 1400)]
    garbage += [b"\x16\xfe\xfd" + os.urandom(60), b"\x80" + os.urandom(40), b"\x00\x01\x00\x00"]
    protected = []
    for packet in _malformed_rtp(12345):
        try:
            protected.append(dtls._tx_srtp.protect(packet))
        except Exception:  # libsrtp refuses to protect a few of them: send them plain
            protected.append(packet)
    for packet in _malformed_rtcp(12345):
        try:
            protected.append(dtls._tx_srtp.protect_rtcp(packet))
        except Exception:
            protected.append(packet)

    async def attack() -> None:
        for _ in range(30):
            for datagram in garbage + protected:
                await ice._send(datagram)
            await asyncio.sleep(0.05)

    (share, _), _ = await asyncio.gather(room.delivered(viewer, honest, 2.5), attack())
    assert share >= 0.9
    # The relay still takes new people and still forwards to them.
    late = PacketPeer("late", video_bytes=None, slots=2)
    await room.join(late, VIEWER)
    await room.connected(late)
    await room.flowing(late, honest)


async def test_subscriber_that_stops_reading_is_bounded_and_others_unaffected(room: Room) -> None:
    """A subscriber whose sockets stop reading (a frozen tab): the relay's queue towards it
    stays bounded (frames, and bytes waiting in its socket's transport), nothing else slows."""
    publisher = PacketPeer("publisher", video_bytes=4000, audio_bytes=100, slots=0)
    frozen = PacketPeer("frozen", video_bytes=None, slots=1)
    healthy = PacketPeer("healthy", video_bytes=None, slots=1)
    await room.join(publisher)
    await room.join(frozen, VIEWER)
    await room.join(healthy, VIEWER)
    await room.connected(publisher, frozen, healthy)
    await room.flowing(frozen, publisher)
    await room.flowing(healthy, publisher)

    for connection in passthrough._ice_connections(frozen.pc):
        for protocol in connection._protocols:
            protocol.transport.pause_reading()  # the kernel's buffer fills, then drops
    got_before = frozen.received()

    peaks: list[int] = []

    async def watch() -> None:
        peer = room.relay._rooms[ROOM].peers["frozen"]
        for _ in range(30):
            queued = sum(len(t._queue) for s in peer.slots for t in s.tracks.values())
            buffered = sum(
                p.transport.get_write_buffer_size()
                for c in passthrough._ice_connections(peer.pc)
                for p in c._protocols
            )
            peaks.append(queued + buffered)
            await asyncio.sleep(0.1)

    (share, _), _ = await asyncio.gather(room.delivered(healthy, publisher, 3.0), watch())
    assert share >= 0.9
    assert frozen.received() - got_before < 0.2 * 90  # it really stopped reading
    limit = passthrough._QUEUE_LIMIT["video"] + passthrough._QUEUE_LIMIT["audio"]
    assert max(peaks) <= limit  # frames queued plus datagrams buffered: bounded


async def test_forward_queue_of_a_stalled_sender_is_bounded() -> None:
    """If a subscriber's sender stops taking frames, its queue never grows past the limit: it
    is dropped whole and video restarts at the next keyframe (never half a stream)."""
    limit = passthrough._QUEUE_LIMIT["video"]
    track = passthrough.ForwardTrack("video")
    assert track.push(passthrough.EncodedFrame(b"\x10" + b"k" * 100, 0, True))
    peak, results = 0, []
    for i in range(1, 300):
        results.append(track.push(passthrough.EncodedFrame(b"\x11" + b"d" * 100, 3000 * i, False)))
        peak = max(peak, len(track._queue))
    assert peak == limit
    assert results[limit - 1] is False and not any(results[limit:])
    assert track.need_keyframe and len(track._queue) == 0
    assert track.push(passthrough.EncodedFrame(b"\x10" + b"k" * 100, 3000 * 300, True))
    assert len(track._queue) == 1
    track.stop()
