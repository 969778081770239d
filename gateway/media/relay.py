"""The embedded relay: a selective forwarding unit inside the gateway process, built on aiortc.

Media is never decoded: publishers' encoded VP8/Opus frames are forwarded as they are (see
:mod:`gateway.media.passthrough`). No renegotiation after the first offer/answer: each client
offers its own send m-lines plus N receive "slots", and the relay switches what each slot
carries.

Offer layout (the slot protocol, see ``docs`` in the module :data:`SLOT_PROTOCOL`):

* at most one ``sendonly`` (or ``sendrecv``) audio m-line and one video m-line: what the client
  publishes. Accepted whatever the grants; forwarded only while ``can_publish``.
* any number of ``recvonly`` audio and video m-lines: the receive slots. The i-th recvonly audio
  m-line and the i-th recvonly video m-line (in offer order) form slot ``i``; a slot carries one
  publisher's audio and video. At most ``slots_per_peer`` slots are used; extra m-lines are
  answered ``inactive``.
* only audio and video (no data channel); VP8 video and Opus audio (answer restricted to them);
  every m-line in one BUNDLE group (all browsers do this by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from . import passthrough
from .errors import (
    CodecUnsupported,
    ParticipantNotFound,
    RelayClosed,
    RoomNotFound,
    SdpInvalid,
    SdpTooLarge,
    SdpUnsupported,
)
from .events import LeftReason, ParticipantJoined, ParticipantLeft, RelayEvent, SlotsChanged
from .grants import IceServerConfig, MediaGrants, RelayParticipant

__all__ = ["MAX_SDP_BYTES", "SLOT_PROTOCOL", "EmbeddedRelay", "MediaTap"]

logger = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024
KINDS = ("audio", "video")

SLOT_PROTOCOL = """\
Browser side (no renegotiation ever):
  pc = new RTCPeerConnection({iceServers: <from the gateway>})
  pc.addTransceiver(micTrack,  {direction: "sendonly"})   // omit both to publish nothing
  pc.addTransceiver(camTrack,  {direction: "sendonly"})
  for (i = 0; i < N; i++) {                                // N <= slots_per_peer
    slot[i] = {audio: pc.addTransceiver("audio", {direction: "recvonly"}),
               video: pc.addTransceiver("video", {direction: "recvonly"})}
  }
  offer -> gateway -> answer; setRemoteDescription(answer)
  slot_map / SlotsChanged {i: identity} says whose media slot i's transceivers carry;
  an index missing from the map is an empty slot (hide its tile).
"""

_Role = Literal["publish", "slot", "ignore"]

MediaTap = Callable[[str, int, passthrough.EncodedFrame], None]
"""Receives ``(kind, source, frame)`` for every frame a watched participant publishes while
allowed to publish. ``source`` numbers the publication: it changes when the participant
reconnects, so a consumer knows the timestamps start afresh (and video needs a key frame)."""


@dataclass(frozen=True, slots=True)
class _MediaPlan:
    kind: str
    role: _Role
    slot: int = -1


@dataclass(slots=True)
class _Slot:
    index: int
    tracks: dict[str, passthrough.ForwardTrack] = field(default_factory=dict)
    source: _Peer | None = None


class _Publication:
    """One published track (one kind) of one participant."""

    def __init__(self, relay: EmbeddedRelay, kind: str, transceiver: RTCRtpTransceiver) -> None:
        self.relay = relay
        self.kind = kind
        self.receiver = transceiver.receiver
        self.source = next(relay._seq)
        self.sinks: set[passthrough.ForwardTrack] = set()
        # Media taps (recorders) of this participant; an empty tuple costs one test per frame.
        self.taps: tuple[MediaTap, ...] = ()
        self.active = False
        self.frames_in = 0
        self.plis_sent = 0
        self._last_pli = -math.inf
        self.tap = passthrough.install_receiver_tap(self.receiver, kind, self.on_frame)

    def on_frame(self, frame: passthrough.EncodedFrame) -> None:
        self.frames_in += 1
        if not self.active:
            return
        if self.taps:
            for tap in self.taps:
                tap(self.kind, self.source, frame)
        if not self.sinks:
            return
        need_keyframe = False
        for sink in self.sinks:
            if not sink.push(frame):
                need_keyframe = True
        if need_keyframe:
            self.request_keyframe()

    def request_keyframe(self) -> None:
        if self.kind != "video" or not self.active:
            return
        now = time.monotonic()
        if now - self._last_pli < self.relay.keyframe_interval:
            return
        self._last_pli = now
        self.plis_sent += 1
        self.relay._spawn(passthrough.send_pli(self.receiver))


class _Peer:
    def __init__(
        self, room: str, identity: str, grants: MediaGrants, pc: RTCPeerConnection, seq: int
    ) -> None:
        self.room = room
        self.identity = identity
        self.grants = grants
        self.pc = pc
        self.seq = seq
        self.state: Literal["connecting", "connected", "closed"] = "connecting"
        self.joined = False
        self.created = time.monotonic()
        self.publications: dict[str, _Publication] = {}
        self.slots: list[_Slot] = []
        self.probe = passthrough.ActivityProbe()


@dataclass(slots=True)
class _Room:
    name: str
    peers: dict[str, _Peer] = field(default_factory=dict)


def _codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    wanted = ("video/vp8", "video/rtx") if kind == "video" else ("audio/opus",)
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    return [c for c in codecs if c.mimeType.lower() in wanted]


def _plan_offer(offer_sdp: str, max_bytes: int, slots_per_peer: int) -> list[_MediaPlan]:
    if len(offer_sdp.encode("utf-8", "surrogatepass")) > max_bytes:
        raise SdpTooLarge(f"offer exceeds {max_bytes} bytes")
    if not offer_sdp.lstrip().startswith("v=0"):
        raise SdpInvalid("not an SDP offer")
    try:
        description = aiortc_sdp.SessionDescription.parse(offer_sdp)
    except Exception as exc:  # the parser raises assorted errors on garbage
        raise SdpInvalid("unparsable SDP") from exc
    if not description.media:
        raise SdpInvalid("offer has no media")
    bundle = next((g for g in description.group if g.semantic == "BUNDLE"), None)
    mids = [m.rtp.muxId for m in description.media]
    if bundle is None or sorted(bundle.items) != sorted(mids) or len(set(mids)) != len(mids):
        raise SdpUnsupported("offer must BUNDLE all its media sections")
    plans: list[_MediaPlan] = []
    publishers = dict.fromkeys(KINDS, 0)
    slots = dict.fromkeys(KINDS, 0)
    for media in description.media:
        if media.kind not in KINDS:
            raise SdpUnsupported(f"unsupported media kind {media.kind!r}")
        ice = media.ice
        if ice is None or not ice.usernameFragment or not ice.password or not media.dtls:
            raise SdpInvalid("media section without ICE credentials or DTLS fingerprint")
        direction = media.direction or "sendrecv"
        if direction in ("sendonly", "sendrecv"):
            publishers[media.kind] += 1
            if publishers[media.kind] > 1:
                raise SdpInvalid(f"more than one sending {media.kind} m-line")
            plans.append(_MediaPlan(media.kind, "publish"))
        elif direction == "recvonly" and slots[media.kind] < slots_per_peer:
            plans.append(_MediaPlan(media.kind, "slot", slots[media.kind]))
            slots[media.kind] += 1
        else:
            plans.append(_MediaPlan(media.kind, "ignore"))
    return plans


class EmbeddedRelay:
    """SFU inside the gateway process. All methods must be called from one event loop."""

    def __init__(
        self,
        *,
        ice_servers: Sequence[IceServerConfig] = (),
        slots_per_peer: int = 8,
        on_event: Callable[[RelayEvent], Awaitable[None]] | None = None,
        disconnect_timeout: float = 10.0,
        connect_timeout: float = 30.0,
        keyframe_interval: float = 0.25,
        loopback_candidates: bool | None = None,
        max_sdp_bytes: int = MAX_SDP_BYTES,
    ) -> None:
        """
        :param disconnect_timeout: a connected peer from which nothing at all (media, RTCP,
            STUN consent checks) arrives for this long is dropped with a ``timeout`` left event.
            Browsers send consent checks every ~5 s even when silent, so keep it above ~7 s
            outside tests.
        :param connect_timeout: a peer that has not connected this long after its answer is
            dropped (no event: it never joined).
        :param keyframe_interval: minimum seconds between keyframe requests to one publisher.
        :param loopback_candidates: offer a 127.0.0.1 ICE candidate always (True), never
            (False), or only when the host has no other address (None).
        """
        passthrough.check_aiortc()
        if slots_per_peer < 0:
            raise ValueError("slots_per_peer must be >= 0")
        self._ice_servers = [
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in ice_servers
        ]
        self.slots_per_peer = slots_per_peer
        self.disconnect_timeout = disconnect_timeout
        self.connect_timeout = connect_timeout
        self.keyframe_interval = keyframe_interval
        self.loopback_candidates = loopback_candidates
        self.max_sdp_bytes = max_sdp_bytes
        self._on_event = on_event
        self._rooms: dict[str, _Room] = {}
        self._taps: dict[tuple[str, str], tuple[MediaTap, ...]] = {}
        self._seq = itertools.count()
        self._closed = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self._events: asyncio.Queue[RelayEvent | None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- rooms

    async def open_room(self, room: str) -> None:
        self._check_open()
        self._start_background()
        self._rooms.setdefault(room, _Room(room))

    async def close_room(self, room: str) -> None:
        """Close every peer in ``room`` (``room_closed``) and forget the room; idempotent."""
        room_obj = self._rooms.pop(room, None)
        if room_obj is None:
            return
        await asyncio.gather(*(self._drop(p, "room_closed") for p in list(room_obj.peers.values())))

    # ----------------------------------------------------------- participants

    async def connect(self, room: str, identity: str, grants: MediaGrants, offer_sdp: str) -> str:
        """Answer ``offer_sdp`` for ``identity`` (already authenticated); returns the answer SDP.

        A second connect for a connected identity replaces the first connection.
        """
        self._check_open()
        room_obj = self._room(room)
        plans = _plan_offer(offer_sdp, self.max_sdp_bytes, self.slots_per_peer)

        # max-bundle: one ICE/DTLS transport from the start (with the default "balanced" policy
        # aiortc 1.16 leaves pre-created same-kind transceivers on a discarded transport).
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=list(self._ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
            )
        )
        peer = _Peer(room, identity, grants, pc, next(self._seq))
        try:
            self._build_transceivers(peer, plans)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            peer.probe = passthrough.install_activity_probe(pc)
            passthrough.install_loopback_candidates(pc, self.loopback_candidates)
            await pc.setLocalDescription(await pc.createAnswer())
        except OperationError as exc:
            await pc.close()
            raise CodecUnsupported("no common codec (VP8 video, Opus audio)") from exc
        except (ValueError, InvalidStateError, InvalidAccessError, InternalError) as exc:
            await pc.close()
            raise SdpInvalid(f"offer rejected: {exc}") from exc
        except BaseException:
            await pc.close()
            raise
        if self._closed or self._rooms.get(room) is not room_obj:
            await pc.close()
            raise RelayClosed("room or relay closed during connect")
        for publication in peer.publications.values():
            publication.active = grants.can_publish
            publication.taps = self._taps.get((room, identity), ())

        @pc.on("connectionstatechange")
        async def _on_state() -> None:
            await self._on_connection_state(peer)

        old = room_obj.peers.get(identity)
        room_obj.peers[identity] = peer
        if old is not None:
            await self._drop(old, "replaced")
        local = pc.localDescription
        assert local is not None
        return str(local.sdp)

    async def set_grants(self, room: str, identity: str, grants: MediaGrants) -> None:
        """Change grants; ``MediaGrants(False, False)`` holds, anything else releases."""
        peer = self._peer(room, identity)
        released = grants.can_subscribe and not peer.grants.can_subscribe
        peer.grants = grants
        for publication in peer.publications.values():
            if grants.can_publish and not publication.active:
                # Taps see a new stream after a hold: what was held back is not in it.
                publication.source = next(self._seq)
            publication.active = grants.can_publish
        self._rebalance(self._room(room))
        if released:
            for slot in peer.slots:
                if slot.source is not None and "video" in slot.source.publications:
                    slot.source.publications["video"].request_keyframe()

    async def remove(self, room: str, identity: str) -> None:
        """Close ``identity``'s connection for good (``removed``)."""
        await self._drop(self._peer(room, identity), "removed")

    def participants(self, room: str) -> list[RelayParticipant]:
        """The relay's own view of who is in ``room`` (connecting and connected)."""
        result = []
        for peer in sorted(self._room(room).peers.values(), key=lambda p: p.seq):
            publishing = frozenset(peer.publications) if peer.grants.can_publish else frozenset()
            result.append(
                RelayParticipant(
                    identity=peer.identity,
                    connected=peer.state == "connected",
                    publishing=publishing,
                    grants=peer.grants,
                )
            )
        return result

    def slot_map(self, room: str, identity: str) -> dict[int, str]:
        """Slot index -> publisher identity for ``identity``'s receive slots."""
        return _slot_map(self._peer(room, identity))

    def stats(self, room: str, identity: str) -> dict[str, int]:
        """Diagnostics: frames received/forwarded, keyframe requests, for one participant."""
        peer = self._peer(room, identity)
        out: dict[str, int] = {}
        for kind, pub in peer.publications.items():
            out[f"{kind}_frames_in"] = pub.frames_in
            out[f"{kind}_tap_frames"] = pub.tap.frames
            out[f"{kind}_plis_sent"] = pub.plis_sent
            out[f"{kind}_decoder_fed"] = int(pub.tap.decoder_fed)
        for kind in KINDS:
            out[f"{kind}_frames_out"] = sum(
                s.tracks[kind].frames_out for s in peer.slots if kind in s.tracks
            )
        return out

    # ------------------------------------------------------------ media taps

    def add_tap(self, room: str, identity: str, tap: MediaTap) -> None:
        """Hand ``identity``'s published frames in ``room`` to ``tap`` from now on, including
        those of a later connection (a participant who joins or reconnects after this call).
        ``tap`` runs on the event loop, inside the frame path: it must only queue."""
        key = (room, identity)
        self._taps[key] = (*self._taps.get(key, ()), tap)
        self._retap(room, identity)

    def remove_tap(self, room: str, identity: str, tap: MediaTap) -> None:
        """Stop handing frames to ``tap`` (no frame reaches it after this returns)."""
        key = (room, identity)
        remaining = tuple(t for t in self._taps.get(key, ()) if t != tap)
        if remaining:
            self._taps[key] = remaining
        else:
            self._taps.pop(key, None)
        self._retap(room, identity)

    def request_keyframe(self, room: str, identity: str) -> None:
        """Ask ``identity``'s video publisher for a key frame (rate-limited; no-op without one)."""
        room_obj = self._rooms.get(room)
        peer = room_obj.peers.get(identity) if room_obj is not None else None
        if peer is not None and "video" in peer.publications:
            peer.publications["video"].request_keyframe()

    def _retap(self, room: str, identity: str) -> None:
        room_obj = self._rooms.get(room)
        peer = room_obj.peers.get(identity) if room_obj is not None else None
        if peer is not None:
            taps = self._taps.get((room, identity), ())
            for publication in peer.publications.values():
                publication.taps = taps

    async def close(self) -> None:
        """Close every room and stop background work; the relay cannot be reused."""
        if self._closed:
            return
        self._closed = True
        for room in list(self._rooms):
            await self.close_room(room)
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._events is not None and self._dispatcher is not None:
            self._events.put_nowait(None)
            await self._dispatcher

    # -------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise RelayClosed("relay is closed")

    def _room(self, room: str) -> _Room:
        room_obj = self._rooms.get(room)
        if room_obj is None:
            raise RoomNotFound(room)
        return room_obj

    def _peer(self, room: str, identity: str) -> _Peer:
        peer = self._room(room).peers.get(identity)
        if peer is None:
            raise ParticipantNotFound(identity)
        return peer

    def _start_background(self) -> None:
        if self._monitor is None:
            self._monitor = asyncio.create_task(self._run_monitor())
        if self._on_event is not None and self._dispatcher is None:
            self._events = asyncio.Queue()
            self._dispatcher = asyncio.create_task(self._run_dispatcher())

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("relay background task failed", exc_info=task.exception())

    def _emit(self, event: RelayEvent) -> None:
        if self._events is not None:
            self._events.put_nowait(event)

    async def _run_dispatcher(self) -> None:
        assert self._events is not None and self._on_event is not None
        while (event := await self._events.get()) is not None:
            try:
                await self._on_event(event)
            except Exception:
                logger.exception("relay on_event handler failed for %r", event)

    async def _run_monitor(self) -> None:
        interval = max(0.05, min(1.0, self.disconnect_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for room in list(self._rooms.values()):
                for peer in list(room.peers.values()):
                    if peer.state == "connected":
                        if peer.probe.idle_for() > self.disconnect_timeout:
                            self._spawn(self._drop(peer, "timeout"))
                    elif peer.state == "connecting" and now - peer.created > self.connect_timeout:
                        self._spawn(self._drop(peer, "failed"))

    def _build_transceivers(self, peer: _Peer, plans: list[_MediaPlan]) -> None:
        pc = peer.pc
        slot_count = max((p.slot + 1 for p in plans if p.role == "slot"), default=0)
        peer.slots = [_Slot(i) for i in range(slot_count)]
        for plan in plans:
            if plan.role == "publish":
                transceiver = pc.addTransceiver(plan.kind, direction="recvonly")
                peer.publications[plan.kind] = _Publication(self, plan.kind, transceiver)
            elif plan.role == "slot":
                track = passthrough.ForwardTrack(plan.kind)
                transceiver = pc.addTransceiver(track, direction="sendonly")
                slot = peer.slots[plan.slot]
                slot.tracks[plan.kind] = track
                if plan.kind == "video":
                    passthrough.install_keyframe_hook(
                        transceiver.sender, self._keyframe_forwarder(slot)
                    )
            else:
                transceiver = pc.addTransceiver(plan.kind, direction="inactive")
            transceiver.setCodecPreferences(_codec_preferences(plan.kind))

    def _keyframe_forwarder(self, slot: _Slot) -> Callable[[], None]:
        def forward() -> None:
            source = slot.source
            if source is not None and "video" in source.publications:
                source.publications["video"].request_keyframe()

        return forward

    async def _on_connection_state(self, peer: _Peer) -> None:
        state = peer.pc.connectionState
        if state == "connected" and peer.state == "connecting":
            peer.state = "connected"
            peer.joined = True
            peer.probe.touch()
            self._emit(ParticipantJoined(peer.room, peer.identity))
            room = self._rooms.get(peer.room)
            if room is not None and room.peers.get(peer.identity) is peer:
                self._rebalance(room)
        elif state in ("failed", "closed"):
            await self._drop(peer, "failed" if state == "failed" else "closed")

    async def _drop(self, peer: _Peer, reason: LeftReason) -> None:
        if peer.state == "closed":
            return
        peer.state = "closed"
        room = self._rooms.get(peer.room)
        if room is not None and room.peers.get(peer.identity) is peer:
            del room.peers[peer.identity]
        for publication in peer.publications.values():
            publication.active = False
            publication.taps = ()
            for sink in publication.sinks:
                sink.reset_source()
            publication.sinks.clear()
        for slot in peer.slots:
            _detach(slot)
        if peer.joined:
            self._emit(ParticipantLeft(peer.room, peer.identity, reason))
        if room is not None:
            self._rebalance(room)
        try:
            await peer.pc.close()
        except Exception:  # closing must never fail an exit
            logger.warning("error closing peer connection", exc_info=True)

    def _rebalance(self, room: _Room) -> None:
        """Fit every subscriber's slots to the publishers it may currently see."""
        connected = sorted(
            (p for p in room.peers.values() if p.state == "connected"), key=lambda p: p.seq
        )
        publishers = [p for p in connected if p.grants.can_publish and p.publications]
        for sub in connected:
            visible = [p for p in publishers if p is not sub] if sub.grants.can_subscribe else []
            changed = False
            for slot in sub.slots:
                if slot.source is not None and not any(slot.source is p for p in visible):
                    _detach(slot)
                    changed = True
            shown = {id(s.source) for s in sub.slots if s.source is not None}
            free = [s for s in sub.slots if s.source is None]
            for pub in visible:
                if id(pub) in shown:
                    continue
                if not free:
                    break
                _attach(free.pop(0), pub)
                changed = True
            if changed:
                self._emit(SlotsChanged(room.name, sub.identity, _slot_map(sub)))


def _slot_map(peer: _Peer) -> dict[int, str]:
    return {s.index: s.source.identity for s in peer.slots if s.source is not None}


def _attach(slot: _Slot, source: _Peer) -> None:
    slot.source = source
    for kind, track in slot.tracks.items():
        publication = source.publications.get(kind)
        if publication is None:
            continue
        track.reset_source()
        publication.sinks.add(track)
        publication.request_keyframe()


def _detach(slot: _Slot) -> None:
    source = slot.source
    slot.source = None
    if source is None:
        return
    for kind, track in slot.tracks.items():
        publication = source.publications.get(kind)
        if publication is not None:
            publication.sinks.discard(track)
        track.reset_source()
