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
