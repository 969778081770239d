"""Embedded relay against real aiortc peers over loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiortc.rtcrtpreceiver as rtcrtpreceiver
import pytest

from gateway.media import passthrough
from gateway.media.errors import (
    ParticipantNotFound,
    RelayError,
    RoomNotFound,
)
from gateway.media.events import ParticipantJoined, ParticipantLeft, RelayEvent, SlotsChanged
from gateway.media.grants import HOLD, MediaGrants
from gateway.media.relay import EmbeddedRelay

from ._peers import Client, join, wait_until

pytestmark = pytest.mark.media

ROOM = "room-1"
FULL = MediaGrants(can_publish=True, can_subscribe=True)
VIEWER = MediaGrants(can_publish=False, can_subscribe=True)


class Harness:
    def __init__(self, **relay_kwargs: Any) -> None:
        self.events: list[RelayEvent] = []
        self.relay = EmbeddedRelay(on_event=self._on_event, **relay_kwargs)
        self.clients: list[Client] = []

    async def _on_event(self, event: RelayEvent) -> None:
        self.events.append(event)

    def client(self, name: str, **kwargs: Any) -> Client:
        c = Client(name, **kwargs)
        self.clients.append(c)
        return c

    async def join(self, client: Client, grants: MediaGrants = FULL) -> None:
        await join(self.relay, ROOM, client, grants)

    async def joined(self, *names: str, timeout: float = 10.0) -> None:
        def ok() -> bool:
            got = {e.identity for e in self.events if isinstance(e, ParticipantJoined)}
            return set(names) <= got

        await wait_until(ok, timeout)

    def left(self, name: str) -> list[ParticipantLeft]:
        return [e for e in self.events if isinstance(e, ParticipantLeft) and e.identity == name]

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        await self.relay.close()


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    harnesses: list[Harness] = []

    async def factory(**kwargs: Any) -> Harness:
        h = Harness(**kwargs)
        await h.relay.open_room(ROOM)
        harnesses.append(h)
        return h

    yield factory
    for h in harnesses:
        await h.close()


async def test_video_and_audio_reach_two_subscribers_without_decoding(
    make: Callable[..., Awaitable[Harness]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Instrument aiortc: which decoder threads serve relay taps, which threads build decoders.
    tap_threads: set[int] = set()
    decoding_threads: set[int] = set()
    real_worker = rtcrtpreceiver.decoder_worker
    real_get_decoder = rtcrtpreceiver.get_decoder

    def worker(loop: Any, input_q: Any, output_q: Any, error: Any) -> None:
        if isinstance(input_q, passthrough._TapQueue):
            tap_threads.add(threading.get_ident())
        real_worker(loop, input_q, output_q, error)

    def get_decoder(codec: Any) -> Any:
        decoding_threads.add(threading.get_ident())
        return real_get_decoder(codec)

    monkeypatch.setattr(rtcrtpreceiver, "decoder_worker", worker)
    monkeypatch.setattr(rtcrtpreceiver, "get_decoder", get_decoder)

    h = await make()
    pub = h.client("pub", slots=2)
    sub1 = h.client("sub1", publish=False)
    sub2 = h.client("sub2", publish=False)
    await h.join(pub)
    await h.join(sub1, VIEWER)
    await h.join(sub2, VIEWER)
    await h.joined("pub", "sub1", "sub2")

    await wait_until(lambda: sub1.total("video") >= 10 and sub2.total("video") >= 10, 10)
    await wait_until(lambda: sub1.total("audio") >= 10 and sub2.total("audio") >= 10, 5)
    assert sub1.sizes == {(640, 480)} and sub2.sizes == {(640, 480)}
    assert h.relay.slot_map(ROOM, "sub1") == {0: "pub"}
    assert h.relay.slot_map(ROOM, "sub2") == {0: "pub"}
    assert h.relay.slot_map(ROOM, "pub") == {}  # nobody else publishes
    assert sub1.frames[(1, "video")] == 0

    # The relay forwarded encoded frames: its receivers never reached a decoder.
    stats = h.relay.stats(ROOM, "pub")
    assert stats["video_tap_frames"] >= 10 and stats["audio_tap_frames"] >= 10
    assert stats["video_decoder_fed"] == 0 and stats["audio_decoder_fed"] == 0
    assert len(tap_threads) == 2  # pub's audio + video receivers on the relay
    assert not (tap_threads & decoding_threads)
    assert decoding_threads  # the subscribers did decode, so the instrumentation works

    parts = {p.identity: p for p in h.relay.participants(ROOM)}
    assert set(parts) == {"pub", "sub1", "sub2"}
    assert all(p.connected for p in parts.values())
    assert parts["pub"].publishing == {"audio", "video"}
    assert parts["sub1"].publishing == frozenset()
    assert parts["sub1"].grants == VIEWER
    assert any(
        isinstance(e, SlotsChanged) and e.identity == "sub1" and dict(e.slots) == {0: "pub"}
        for e in h.events
    )


async def test_answer_restricts_codecs(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make()
    c = h.client("a", slots=1)
    answer = await h.relay.connect(ROOM, "a", FULL, await c.offer())
    codecs = {
        line.split()[1].split("/")[0].lower()
        for line in answer.splitlines()
        if line.startswith("a=rtpmap:")
    }
    assert codecs == {"vp8", "rtx", "opus"}
    await c.accept(answer)


@pytest.mark.parametrize(
    ("sdp", "code"),
    [
        ("hello", "sdp_invalid"),
        ("", "sdp_invalid"),
        ("v=0\r\nm=audio xx\r\n", "sdp_invalid"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "sdp_invalid"),
        ("v=0\r\n" + "a=x-pad:" + "x" * (64 * 1024) + "\r\n", "sdp_too_large"),
    ],
)
async def test_bad_sdp_refused_with_stable_code(
    make: Callable[..., Awaitable[Harness]], sdp: str, code: str
) -> None:
    h = await make()
    with pytest.raises(RelayError) as info:
        await h.relay.connect(ROOM, "x", FULL, sdp)
    assert info.value.code == code
    assert h.relay.participants(ROOM) == []


async def test_offer_variants_refused(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make()
    c = h.client("c", slots=1)
    good = await c.offer()
    # Mangled ICE credentials.
    with pytest.raises(RelayError) as info:
        await h.relay.connect(ROOM, "c", FULL, good.replace("a=ice-pwd:", "a=x-pwd:"))
    assert info.value.code == "sdp_invalid"
    # Data channel.
    dc = good + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    with pytest.raises(RelayError) as info:
        await h.relay.connect(ROOM, "c", FULL, dc)
    assert info.value.code == "sdp_unsupported"
    # Video codec other than VP8 only.
    h264_only = "\r\n".join(
        line
        for line in good.split("\r\n")
        if not any(tag in line for tag in ("VP8", "rtx/", "apt=", "rtcp-fb:97", "rtcp-fb:98"))
    )
    h264_only = _drop_payload_types(h264_only, "video", {"97", "98"})
    with pytest.raises(RelayError) as info:
        await h.relay.connect(ROOM, "c", FULL, h264_only)
    assert info.value.code == "codec_unsupported"
    with pytest.raises(RoomNotFound):
        await h.relay.connect("nope", "c", FULL, good)
    assert h.relay.participants(ROOM) == []


def _drop_payload_types(sdp: str, kind: str, pts: set[str]) -> str:
    out = []
    for line in sdp.split("\r\n"):
        if line.startswith(f"m={kind} "):
            parts = line.split(" ")
            line = " ".join(parts[:3] + [p for p in parts[3:] if p not in pts])
        out.append(line)
    return "\r\n".join(out)


async def test_hold_stops_media_both_ways_and_release_restores(
    make: Callable[..., Awaitable[Harness]],
) -> None:
    h = await make()
    a = h.client("a", slots=2)
    b = h.client("b", slots=2)
    await h.join(a)
    await h.join(b)
    await h.joined("a", "b")
    await wait_until(lambda: a.total("video") >= 5 and b.total("video") >= 5, 10)

    await h.relay.set_grants(ROOM, "b", HOLD)
    assert h.relay.slot_map(ROOM, "b") == {}
    assert h.relay.slot_map(ROOM, "a") == {}
    assert h.relay.participants(ROOM)[1].grants == HOLD
    assert h.relay.participants(ROOM)[1].publishing == frozenset()
    await asyncio.sleep(0.5)  # frames already in flight
    a_video, a_audio, b_video, b_audio = (
        a.total("video"),
        a.total("audio"),
        b.total("video"),
        b.total("audio"),
    )
    b_in = h.relay.stats(ROOM, "b")["video_frames_in"]
    await asyncio.sleep(1.5)
    assert (a.total("video"), a.total("audio")) == (a_video, a_audio)  # nothing from b
    assert (b.total("video"), b.total("audio")) == (b_video, b_audio)  # nothing to b
    assert h.relay.stats(ROOM, "b")["video_frames_in"] > b_in  # b still sends; relay drops

    b.first_video_at = None
    await h.relay.set_grants(ROOM, "b", FULL)
    assert h.relay.slot_map(ROOM, "b") == {0: "a"}
    assert h.relay.slot_map(ROOM, "a") == {0: "b"}
    # Keyframes were requested on release: decodable pictures arrive quickly both ways.
    await wait_until(lambda: b.total("video") >= b_video + 5 and a.total("video") >= a_video + 5, 3)
    await wait_until(lambda: b.total("audio") > b_audio and a.total("audio") > a_audio, 3)
    slot_events = [e for e in h.events if isinstance(e, SlotsChanged) and e.identity == "b"]
    assert [dict(e.slots) for e in slot_events][-2:] == [{}, {0: "a"}]


async def test_viewer_publishing_reaches_nobody(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make()
    viewer = h.client("viewer", slots=1)  # offers to send audio+video anyway
    watcher = h.client("watcher", slots=2)
    await h.join(viewer, VIEWER)
    await h.join(watcher)
    await h.joined("viewer", "watcher")
    await wait_until(lambda: viewer.total("video") >= 5, 10)  # viewer does receive
    await asyncio.sleep(1.0)
    assert h.relay.stats(ROOM, "viewer")["video_frames_in"] > 0  # it did send
    assert watcher.total("video") == 0 and watcher.total("audio") == 0
    assert h.relay.slot_map(ROOM, "watcher") == {}
    parts = {p.identity: p for p in h.relay.participants(ROOM)}
    assert parts["viewer"].publishing == frozenset()


async def test_removed_participant_is_disconnected_for_good(
    make: Callable[..., Awaitable[Harness]],
) -> None:
    h = await make()
    a = h.client("a", slots=1)
    b = h.client("b", slots=1)
    await h.join(a)
    await h.join(b)
    await h.joined("a", "b")
    await wait_until(lambda: a.total("video") >= 5, 10)

    await h.relay.remove(ROOM, "b")
    assert [p.identity for p in h.relay.participants(ROOM)] == ["a"]
    assert h.relay.slot_map(ROOM, "a") == {}
    await wait_until(lambda: b.pc.connectionState in ("closed", "failed"), 5)
    assert [e.reason for e in h.left("b")] == ["removed"]
    with pytest.raises(ParticipantNotFound):
        await h.relay.set_grants(ROOM, "b", FULL)
    with pytest.raises(ParticipantNotFound):
        await h.relay.remove(ROOM, "b")
    seen = a.total("video")
    await asyncio.sleep(0.8)
    assert a.total("video") - seen <= 2
    assert not h.left("a")


async def test_vanished_peer_leaves_within_timeout(
    make: Callable[..., Awaitable[Harness]],
) -> None:
    h = await make(disconnect_timeout=1.0)
    a = h.client("a", slots=1)
    b = h.client("b", slots=1)
    await h.join(a)
    await h.join(b)
    await h.joined("a", "b")
    await wait_until(lambda: a.total("video") >= 3, 10)

    passthrough.abort_ice_transports(b.pc)  # no DTLS close_notify, no RTCP BYE
    loop = asyncio.get_running_loop()
    start = loop.time()
    await wait_until(lambda: bool(h.left("b")), 4)
    assert loop.time() - start < 1.0 + 1.5
    assert [e.reason for e in h.left("b")] == ["timeout"]
    assert [p.identity for p in h.relay.participants(ROOM)] == ["a"]
    assert h.relay.slot_map(ROOM, "a") == {}
    assert not h.left("a")  # the live peer (sending media) is not timed out


async def test_keyframe_requests_reach_the_publisher(
    make: Callable[..., Awaitable[Harness]],
) -> None:
    # aiortc's encoder makes a keyframe only every 3000 frames, so a subscriber arriving late
    # gets a picture quickly only if the relay asks the publisher for one.
    h = await make(keyframe_interval=0.2)
    pub = h.client("pub", slots=1)
    await h.join(pub)
    await h.joined("pub")
    await asyncio.sleep(1.5)
    before = h.relay.stats(ROOM, "pub")["video_plis_sent"]
    late = h.client("late", publish=False, slots=1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await h.join(late, VIEWER)
    await wait_until(lambda: late.total("video") >= 3, 5)
    assert late.first_video_at is not None
    assert late.first_video_at - start < 3.0
    assert h.relay.stats(ROOM, "pub")["video_plis_sent"] > before

    # A PLI from the subscriber is forwarded to the publisher.
    await asyncio.sleep(0.3)
    before = h.relay.stats(ROOM, "pub")["video_plis_sent"]
    await passthrough.send_pli(late.slots[0]["video"].receiver)
    await wait_until(lambda: h.relay.stats(ROOM, "pub")["video_plis_sent"] > before, 2)


async def test_reconnect_replaces_and_room_close_ends_everyone(
    make: Callable[..., Awaitable[Harness]],
) -> None:
    h = await make()
    a1 = h.client("a", slots=1)
    b = h.client("b", slots=1)
    await h.join(a1)
    await h.join(b)
    await h.joined("a", "b")
    a2 = h.client("a", slots=1)
    await h.join(a2)
    assert [e.reason for e in h.left("a")] == ["replaced"]
    await wait_until(lambda: sum(isinstance(e, ParticipantJoined) for e in h.events) == 3, 10)
    await wait_until(lambda: a2.total("video") >= 3, 10)
    assert h.relay.slot_map(ROOM, "b") == {0: "a"}

    await h.relay.close_room(ROOM)
    assert {e.identity for e in h.events if isinstance(e, ParticipantLeft)} == {"a", "b"}
    assert sorted(e.reason for e in h.left("b")) == ["room_closed"]
    with pytest.raises(RoomNotFound):
        h.relay.participants(ROOM)
    await wait_until(lambda: b.pc.connectionState in ("closed", "failed"), 5)


async def test_loopback_only_candidates(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make(loopback_candidates=True)
    a = h.client("a", slots=1, loopback=True)
    b = h.client("b", slots=1, loopback=True)
    for c in (a, b):
        # Keep only loopback candidates on both sides, as on a host whose only address is
        # 127.0.0.1 (aioice itself never gathers loopback).
        offer = _loopback_only(await c.offer())
        answer = await h.relay.connect(ROOM, c.name, FULL, offer)
        assert " 127.0.0.1 " in answer
        await c.accept(_loopback_only(answer))
    await h.joined("a", "b")
    await wait_until(lambda: a.total("video") >= 3 and b.total("video") >= 3, 10)


async def test_more_publishers_than_slots(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make(slots_per_peer=1)
    a = h.client("a", slots=2)  # second slot m-lines are answered inactive
    b = h.client("b", slots=0)
    c = h.client("c", slots=0)
    await h.join(a)
    await h.join(b)
    await h.joined("a", "b")
    await h.join(c)
    await h.joined("c")
    assert h.relay.slot_map(ROOM, "a") == {0: "b"}
    await h.relay.remove(ROOM, "b")
    assert h.relay.slot_map(ROOM, "a") == {0: "c"}
    await wait_until(lambda: a.total("video") >= 3, 10)


def _loopback_only(sdp: str) -> str:
    lines = [
        line
        for line in sdp.split("\r\n")
        if not line.startswith("a=candidate:") or " 127.0.0.1 " in line
    ]
    assert any(line.startswith("a=candidate:") for line in lines)
    return "\r\n".join(lines)
