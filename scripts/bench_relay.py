"""Benchmark the embedded relay beside Janus (loopback only).

Run: scripts/bench relay [--quick] [--only embedded|janus] [--steps 2,4,6] [--profile N]

Two servers, one load generator, one run:

* **embedded**: the gateway's EmbeddedRelay in its own process (multiprocessing, spawn), behind a
  tiny HTTP signalling endpoint.
* **janus**: Janus (Debian package ``janus``, installed by ``scripts/bench``'s setup when
  missing) started on loopback from a generated configuration (VideoRoom plugin and HTTP
  transport only; ICE on ``lo`` only), see ``scripts/janus_videoroom.py``.

The load generator (this process, aiortc) is the same for both: publishers send the same
pre-encoded VP8 (640x480, 30 fps) and Opus packets in real time, subscribers count encoded video
frames without decoding. Every peer offers a 127.0.0.1 candidate. Server CPU is read from
``/proc/<pid>/stat`` of each server process (all threads), the load generator's from its own
process, the whole machine's from ``/proc/stat`` (other work on the machine is shown, not hidden).

1. CPU per forwarded stream: one publisher (video only), three subscribers, per server.
2. Concurrent 4-person sessions (everyone sends video + audio and receives the other three):
   steps up per server until fewer than 90% of video frames are delivered (or the load
   generator cannot keep 30 fps, or the time budget runs out).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import cProfile
import fractions
import io
import math
import multiprocessing
import os
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import av
from aiohttp import ClientSession, web
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from janus_videoroom import (
    JanusError,
    JanusHandle,
    JanusProcess,
    JanusSession,
    janus_binary,
    process_cpu_seconds,
)

from gateway.media import passthrough
from gateway.media.grants import MediaGrants
from gateway.media.relay import EmbeddedRelay

WIDTH, HEIGHT, FPS = 640, 480, 30
FULL = MediaGrants(can_publish=True, can_subscribe=True)
VIEWER = MediaGrants(can_publish=False, can_subscribe=True)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
# Socket buffers the load generator asks for (same for both servers).
CLIENT_SOCKET_BUFFER = 1 << 21


def _config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


# --------------------------------------------------------------------------- relay server process


async def _serve(port_queue: Any, options: dict[str, Any]) -> None:
    embedded = EmbeddedRelay(
        disconnect_timeout=15.0, socket_buffer_bytes=options.get("socket_buffer")
    )
    stop = asyncio.Event()
    profiler: list[cProfile.Profile] = []

    async def connect(request: web.Request) -> web.Response:
        body = await request.json()
        await embedded.open_room(body["room"])
        grants = FULL if body["publish"] else VIEWER
        answer = await embedded.connect(body["room"], body["identity"], grants, body["sdp"])
        return web.json_response({"sdp": answer})

    async def reset(request: web.Request) -> web.Response:
        for room in list(embedded._rooms):
            await embedded.close_room(room)
        return web.json_response({})

    async def stats(request: web.Request) -> web.Response:
        total: Counter[str] = Counter()
        for name, room in embedded._rooms.items():
            for identity in room.peers:
                total.update(embedded.stats(name, identity))
        return web.json_response(dict(total))

    async def profile(request: web.Request) -> web.Response:
        if request.query.get("action") == "start":
            profiler.append(cProfile.Profile(time.thread_time))  # CPU, not wall time
            profiler[-1].enable()
            return web.json_response({})
        prof = profiler.pop()
        prof.disable()
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(int(request.query.get("top", "30")))
        return web.json_response({"text": out.getvalue()})

    async def shutdown(request: web.Request) -> web.Response:
        stop.set()
        return web.json_response({})

    app = web.Application()
    app.add_routes(
        [
            web.post("/connect", connect),
            web.post("/reset", reset),
            web.get("/stats", stats),
            web.post("/profile", profile),
            web.post("/shutdown", shutdown),
        ]
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port_queue.put(server.sockets[0].getsockname()[1])
    await stop.wait()
    await embedded.close()
    await runner.cleanup()


def _keep_remb_estimator() -> None:
    """A/B lever: give the relay's tapped video receivers back aiortc's REMB estimator."""
    from aiortc.rate import RemoteBitrateEstimator

    original = passthrough.install_receiver_tap

    def with_estimator(receiver: Any, kind: str, *args: Any, **kwargs: Any) -> Any:
        tap = original(receiver, kind, *args, **kwargs)
        if kind == "video":
            setattr(receiver, passthrough._ESTIMATOR_ATTR, RemoteBitrateEstimator())
        return tap

    passthrough.install_receiver_tap = with_estimator  # type: ignore[assignment]


def _server_main(port_queue: Any, options: dict[str, Any]) -> None:
    if options.get("remb"):
        _keep_remb_estimator()
    if options.get("uvloop"):
        import uvloop  # measured only (see docs/benchmarks.md), not a dependency

        uvloop.install()
    asyncio.run(_serve(port_queue, options))


# ------------------------------------------------------------------------------ load generator


def _encode_video(frames: int = 60) -> list[bytes]:
    """Pre-encode a 2 s loop of 640x480 VP8 (keyframe first), textured to ~500 kbit/s."""
    ctx: Any = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    ctx.bit_rate = 500_000
    ctx.time_base = fractions.Fraction(1, FPS)
    ctx.framerate = FPS
    ctx.gop_size = frames
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    noise = os.urandom(WIDTH * 96)
    out: list[bytes] = []
    for i in range(frames):
        x = i * WIDTH // frames
        row = bytearray(b"\x50" * WIDTH)
        row[x : x + 64] = b"\xd0" * len(row[x : x + 64])
        shift = (i * 640 * 3) % len(noise)
        band = (noise[shift:] + noise[:shift])[: WIDTH * 96]
        y = bytes(row) * (HEIGHT - 96) + band
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(y)
        frame.planes[1].update(bytes([128]) * (WIDTH * HEIGHT // 4))
        frame.planes[2].update(bytes([(100 + i) % 256]) * (WIDTH * HEIGHT // 4))
        frame.pts = i
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out


def _encode_audio(packets: int = 50) -> list[bytes]:
    """Pre-encode 1 s of a 440 Hz tone as 20 ms Opus packets."""
    ctx: Any = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 48_000, "stereo", "s16"
    ctx.bit_rate = 32_000
    ctx.time_base = fractions.Fraction(1, 48_000)
    out: list[bytes] = []
    for i in range(packets + 5):
        samples = array.array(
            "h",
            (
                int(8000 * math.sin(2 * math.pi * 440 * (i * 960 + n // 2) / 48_000))
                for n in range(960 * 2)
            ),
        )
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = 48_000
        frame.pts = i * 960
        frame.time_base = fractions.Fraction(1, 48_000)
        out += [bytes(p) for p in ctx.encode(frame)]
    return out[:packets]


class PacketTrack(MediaStreamTrack):
    """Sends pre-encoded packets in real time (no encoding in the load generator)."""

    def __init__(self, kind: str, packets: list[bytes]) -> None:
        super().__init__()
        self.kind = kind
        self.packets = packets
        self.interval = 1 / FPS if kind == "video" else 0.02
        self.step = 90_000 // FPS if kind == "video" else 960
        self.time_base = fractions.Fraction(1, 90_000 if kind == "video" else 48_000)
        self.index = 0
        self.sent = 0
        self.start: float | None = None

    async def recv(self) -> av.Packet:
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        due = self.start + self.index * self.interval
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self.packets[self.index % len(self.packets)])
        packet.pts = self.index * self.step
        packet.time_base = self.time_base
        self.index += 1
        self.sent += 1
        return packet


@dataclass
class Peer:
    """One bench participant: its connections (one for the relay, two for Janus) and counts."""

    tracks: list[PacketTrack] = field(default_factory=list)
    pcs: list[RTCPeerConnection] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)

    def new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(_config())
        self.pcs.append(pc)
        return pc

    def add_tracks(
        self, pc: RTCPeerConnection, video: list[bytes], audio: list[bytes] | None
    ) -> None:
        if audio is not None:
            self.tracks.append(PacketTrack("audio", audio))
        self.tracks.append(PacketTrack("video", video))
        for track in self.tracks:
            pc.addTransceiver(track, direction="sendonly")

    def counter(self, kind: str) -> Callable[[passthrough.EncodedFrame], None]:
        def count(frame: passthrough.EncodedFrame) -> None:
            self.received[kind] += 1

        return count

    def sent(self, kind: str) -> int:
        return sum(t.sent for t in self.tracks if t.kind == kind)

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()


async def _local_offer(pc: RTCPeerConnection) -> str:
    offer = await pc.createOffer()
    passthrough.install_loopback_candidates(pc, True)
    passthrough.install_socket_buffers(pc, CLIENT_SOCKET_BUFFER)
    await pc.setLocalDescription(offer)
    return str(pc.localDescription.sdp)


async def _answer(pc: RTCPeerConnection, offer_sdp: str, peer: Peer) -> str:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    for transceiver in pc.getTransceivers():
        kind = transceiver.kind
        passthrough.install_receiver_tap(transceiver.receiver, kind, peer.counter(kind))
    passthrough.install_loopback_candidates(pc, True)
    passthrough.install_socket_buffers(pc, CLIENT_SOCKET_BUFFER)
    await pc.setLocalDescription(await pc.createAnswer())
    return str(pc.localDescription.sdp)


class Target:
    """A server under test: builds the two scenarios and reports its CPU seconds."""

    name = ""

    def cpu_seconds(self) -> float:
        raise NotImplementedError

    async def cost_scenario(self, video: list[bytes], subscribers: int) -> list[Peer]:
        raise NotImplementedError

    async def session_scenario(
        self, video: list[bytes], audio: list[bytes], rooms: int
    ) -> list[Peer]:
        raise NotImplementedError

    async def reset(self, peers: list[Peer]) -> None:
        for peer in peers:
            await peer.close()


class EmbeddedTarget(Target):
    name = "embedded relay"

    def __init__(self, http: ClientSession, base: str, pid: int) -> None:
        self.http, self.base, self.pid = http, base, pid
        self._room = 0

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    async def _connect(
        self,
        room: str,
        identity: str,
        video: list[bytes],
        audio: list[bytes] | None,
        *,
        publish: bool,
        slots: int,
        slot_audio: bool,
    ) -> Peer:
        peer = Peer()
        pc = peer.new_pc()
        if publish:
            peer.add_tracks(pc, video, audio)
        for _ in range(slots):
            for kind in ("audio", "video") if slot_audio else ("video",):
                transceiver = pc.addTransceiver(kind, direction="recvonly")
                passthrough.install_receiver_tap(transceiver.receiver, kind, peer.counter(kind))
        body = {"room": room, "identity": identity, "publish": publish, "sdp": ""}
        body["sdp"] = await _local_offer(pc)
        async with self.http.post(f"{self.base}/connect", json=body) as response:
            response.raise_for_status()
            answer = (await response.json())["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return peer

    async def cost_scenario(self, video: list[bytes], subscribers: int) -> list[Peer]:
        self._room += 1
        room = f"cost{self._room}"
        pub = await self._connect(room, "pub", video, None, publish=True, slots=0, slot_audio=False)
        await _wait_connected([pub])
        subs = [
            await self._connect(
                room, f"sub{i}", video, None, publish=False, slots=1, slot_audio=False
            )
            for i in range(subscribers)
        ]
        return [pub, *subs]

    async def session_scenario(
        self, video: list[bytes], audio: list[bytes], rooms: int
    ) -> list[Peer]:
        peers: list[Peer] = []
        for _ in range(rooms):
            self._room += 1
            for i in range(4):
                peers.append(
                    await self._connect(
                        f"s{self._room}",
                        f"p{i}",
                        video,
                        audio,
                        publish=True,
                        slots=3,
                        slot_audio=True,
                    )
                )
        return peers

    async def reset(self, peers: list[Peer]) -> None:
        await super().reset(peers)
        async with self.http.post(f"{self.base}/reset") as response:
            response.raise_for_status()

    async def profile(self, action: str) -> str:
        async with self.http.post(f"{self.base}/profile?action={action}") as response:
            return str((await response.json()).get("text", ""))


class JanusTarget(Target):
    name = "Janus VideoRoom"

    def __init__(self, http: ClientSession, janus: JanusProcess) -> None:
        self.http, self.janus = http, janus
        self._room = 1000
        self._feed = 0
        self._sessions: list[JanusSession] = []

    def cpu_seconds(self) -> float:
        return self.janus.cpu_seconds()

    async def _session(self) -> JanusSession:
        session = JanusSession(self.http, self.janus.url)
        await session.create()
        self._sessions.append(session)
        return session

    async def _room_create(self, session: JanusSession) -> int:
        self._room += 1
        handle = await session.attach()
        await handle.request(
            {
                "request": "create",
                "room": self._room,
                "publishers": 8,
                "videocodec": "vp8",
                "audiocodec": "opus",
                "bitrate": 0,
                "fir_freq": 0,
                "notify_joining": False,
                "permanent": False,
            }
        )
        await handle.detach()
        return self._room

    async def _publish(
        self, session: JanusSession, room: int, video: list[bytes], audio: list[bytes] | None
    ) -> tuple[Peer, int]:
        self._feed += 1
        feed = self._feed
        peer = Peer()
        pc = peer.new_pc()
        peer.add_tracks(pc, video, audio)
        handle = await session.attach()
        offer = await _local_offer(pc)
        _, jsep = await handle.message(
            {
                "request": "joinandconfigure",
                "room": room,
                "ptype": "publisher",
                "id": feed,
                "audio": audio is not None,
                "video": True,
            },
            {"type": "offer", "sdp": offer, "trickle": False},
        )
        if jsep is None:
            raise JanusError("publisher got no answer")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="answer"))
        return peer, feed

    async def _subscribe(
        self, session: JanusSession, room: int, peer: Peer, feeds: list[int]
    ) -> None:
        handle: JanusHandle = await session.attach()
        _, jsep = await handle.message(
            {
                "request": "join",
                "room": room,
                "ptype": "subscriber",
                "streams": [{"feed": f} for f in feeds],
            }
        )
        if jsep is None:
            raise JanusError("subscriber got no offer")
        pc = peer.new_pc()
        answer = await _answer(pc, jsep["sdp"], peer)
        await handle.message({"request": "start"}, {"type": "answer", "sdp": answer})

    async def cost_scenario(self, video: list[bytes], subscribers: int) -> list[Peer]:
        session = await self._session()
        room = await self._room_create(session)
        pub, feed = await self._publish(session, room, video, None)
        await _wait_connected([pub])
        subs = [Peer() for _ in range(subscribers)]
        for sub in subs:
            await self._subscribe(session, room, sub, [feed])
        return [pub, *subs]

    async def session_scenario(
        self, video: list[bytes], audio: list[bytes], rooms: int
    ) -> list[Peer]:
        session = await self._session()
        peers: list[Peer] = []
        for _ in range(rooms):
            room = await self._room_create(session)
            members = [await self._publish(session, room, video, audio) for _ in range(4)]
            await _wait_connected([p for p, _ in members])
            for peer, feed in members:
                await self._subscribe(session, room, peer, [f for _, f in members if f != feed])
            peers += [p for p, _ in members]
        return peers

    async def reset(self, peers: list[Peer]) -> None:
        await super().reset(peers)
        for session in self._sessions:
            await session.destroy()
        self._sessions.clear()


async def _wait_connected(peers: list[Peer], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while any(pc.connectionState != "connected" for p in peers for pc in p.pcs):
        if time.monotonic() > deadline:
            states = Counter(pc.connectionState for p in peers for pc in p.pcs)
            raise RuntimeError(f"peers did not connect: {dict(states)}")
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------ measuring


def _udp_counters() -> dict[str, int]:
    """Kernel-wide UDP counters (Linux): receive-buffer drops tell loss from a slow loop."""
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return {}
    rows = [line.split() for line in lines if line.startswith("Udp:")]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0][1:], map(int, rows[1][1:]), strict=False))


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = list(map(int, fields))
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    server_cpu: float
    client_cpu: float
    machine_cpu: float
    wall: float
    received: int
    sent: int
    sent_fps: float
    udp_drops: int

    @property
    def delivered(self) -> float:
        return self.received / self.sent if self.sent else 0.0

    def pct(self, seconds: float) -> float:
        return 100 * seconds / self.wall

    @property
    def other_cpu(self) -> float:
        return max(0.0, self.machine_cpu - self.server_cpu - self.client_cpu)


async def _measure(target: Target, peers: list[Peer], seconds: float, fanout: int) -> Window:
    cpu0, ccpu0, mcpu0 = target.cpu_seconds(), time.process_time(), _machine_busy_seconds()
    wall0 = time.monotonic()
    recv0 = sum(p.received["video"] for p in peers)
    sent0 = sum(p.sent("video") for p in peers)
    drops0 = _udp_counters().get("RcvbufErrors", 0)
    await asyncio.sleep(seconds)
    drops = _udp_counters().get("RcvbufErrors", 0) - drops0
    cpu1, ccpu1, mcpu1 = target.cpu_seconds(), time.process_time(), _machine_busy_seconds()
    wall = time.monotonic() - wall0
    sent = sum(p.sent("video") for p in peers) - sent0
    publishers = sum(1 for p in peers if p.tracks)
    return Window(
        server_cpu=cpu1 - cpu0,
        client_cpu=ccpu1 - ccpu0,
        machine_cpu=mcpu1 - mcpu0,
        wall=wall,
        received=sum(p.received["video"] for p in peers) - recv0,
        sent=sent * fanout,
        sent_fps=sent / wall / max(publishers, 1),
        udp_drops=drops,
    )


async def _run_cost(target: Target, video: list[bytes], subscribers: int, secs: float) -> Window:
    peers: list[Peer] = []
    try:
        peers = await target.cost_scenario(video, subscribers)
        await _wait_connected(peers)
        await asyncio.sleep(3.0)  # warm-up: keyframes
        return await _measure(target, peers, secs, subscribers)
    finally:
        await target.reset(peers)
        await asyncio.sleep(1.0)


async def _run_sessions(
    target: Target,
    video: list[bytes],
    audio: list[bytes],
    rooms: int,
    secs: float,
    profile_top: int = 0,
) -> tuple[Window, str]:
    peers: list[Peer] = []
    text = ""
    try:
        peers = await target.session_scenario(video, audio, rooms)
        await _wait_connected(peers)
        await asyncio.sleep(3.0)
        profiling = profile_top and isinstance(target, EmbeddedTarget)
        if profiling:
            assert isinstance(target, EmbeddedTarget)
            await target.profile("start")
        win = await _measure(target, peers, secs, 3)
        if profiling:
            assert isinstance(target, EmbeddedTarget)
            text = await target.profile(f"stop&top={profile_top}")
        return win, text
    finally:
        await target.reset(peers)
        await asyncio.sleep(1.5)


def _loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def _rmem_max() -> str:
    try:
        return Path("/proc/sys/net/core/rmem_max").read_text().strip()
    except OSError:
        return "?"


async def _run(args: argparse.Namespace) -> list[str]:
    started = time.monotonic()
    budget = args.budget or (150.0 if args.quick else 420.0)
    out: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    load_before = _loadavg()
    ctx = multiprocessing.get_context("spawn")
    port_queue = ctx.Queue()
    options = {"uvloop": args.uvloop, "socket_buffer": args.socket_buffer, "remb": args.remb}
    server = ctx.Process(target=_server_main, args=(port_queue, options), daemon=True)
    want = ["embedded", "janus"] if args.only is None else [args.only]
    janus: JanusProcess | None = None
    if "janus" in want and janus_binary() is None:
        say("janus is not installed (Debian package janus): Janus rows not run")
        want.remove("janus")
    server.start()
    try:
        port = port_queue.get(timeout=60)
        if "janus" in want:
            janus = JanusProcess()
            await janus.start()
        video, audio = _encode_video(), _encode_audio()
        kbps = sum(map(len, video)) * 8 / (len(video) / FPS) / 1000
        async with ClientSession() as http:
            targets: dict[str, Target] = {}
            if "embedded" in want:
                targets["embedded"] = EmbeddedTarget(http, f"http://127.0.0.1:{port}", server.pid)
            if janus is not None:
                targets["janus"] = JanusTarget(http, janus)
            say(
                f"`scripts/bench relay{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}` "
                f"on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
                f"{os.cpu_count()} CPUs, load average {'/'.join(load_before)} before the run; "
                f"640x480 VP8 @ {FPS} fps ~{kbps:.0f} kbit/s + Opus 20 ms, pre-encoded; "
                f"relay socket buffers {args.socket_buffer or 'kernel default'} "
                f"(net.core.rmem_max {_rmem_max()}), event loop "
                f"{'uvloop' if args.uvloop else 'asyncio'}"
                f"{', aiortc REMB estimator kept on the relay' if args.remb else ''}."
            )
            say()
            secs = 4.0 if args.quick else 8.0
            subs = args.subscribers
            say(
                f"CPU per forwarded 640x480 video stream (1 publisher, {subs} subscribers, "
                "video only):"
            )
            say()
            say(
                "| server | delivered | server CPU (% of a core) | per stream delivered "
                "| load generator | other work on the machine |"
            )
            say("|---|---:|---:|---:|---:|---:|")
            per: dict[str, float] = {}
            for key, target in targets.items():
                win = await _run_cost(target, video, subs, secs)
                # Per stream actually forwarded: a starved server that delivers less is not
                # credited with the frames it dropped.
                per[key] = win.pct(win.server_cpu) / (subs * max(win.delivered, 0.01))
                say(
                    f"| {target.name} | {100 * win.delivered:.1f}% | {win.pct(win.server_cpu):.1f} "
                    f"| {per[key]:.2f} | {win.pct(win.client_cpu):.0f}% "
                    f"| {win.pct(win.other_cpu):.0f}% |"
                )
            if per.get("janus"):
                ratio = per["embedded"] / per["janus"] if "embedded" in per else math.nan
                verdict = "met" if ratio <= 3 else "NOT met"
                say()
                say(
                    f"CPU per forwarded stream, embedded / Janus = **{ratio:.2f}** "
                    f"(aim at most 3: {verdict})."
                )
            say()
            say("Concurrent 4-person sessions (video + audio, each receives the other three):")
            say()
            say(
                "| server | sessions | peers | video delivered | sent fps / publisher "
                "| server CPU | per forwarded stream | load generator CPU | other work "
                "| UDP rcvbuf drops | result |"
            )
            say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            steps = [int(s) for s in args.steps.split(",") if s.strip()]
            best = dict.fromkeys(targets, 0)
            failed: set[str] = set()
            profiles: list[str] = []
            for n in steps:
                for key, target in targets.items():
                    if key in failed:
                        continue
                    if time.monotonic() - started > budget:
                        say(f"| {target.name} | {n} | | | | | | | | | not run (time budget) |")
                        failed.add(key)
                        continue
                    try:
                        win, text = await _run_sessions(
                            target,
                            video,
                            audio,
                            n,
                            3.0 if args.quick else 6.0,
                            args.profile if n == args.profile_at else 0,
                        )
                    except (RuntimeError, JanusError) as exc:
                        say(f"| {target.name} | {n} | {4 * n} | | | | | | | | FAIL ({exc}) |")
                        failed.add(key)
                        continue
                    if text:
                        profiles.append(f"profile of the embedded relay at {n} sessions:\n{text}")
                    ok = win.delivered >= 0.9 and win.sent_fps >= 0.9 * FPS
                    note = "pass" if ok else "FAIL"
                    if win.sent_fps < 0.9 * FPS:
                        note += " (load generator below 30 fps)"
                    streams = 12 * n * max(win.delivered, 0.01)
                    say(
                        f"| {target.name} | {n} | {4 * n} | {100 * win.delivered:.1f}% "
                        f"| {win.sent_fps:.1f} | {win.pct(win.server_cpu):.0f}% "
                        f"| {win.pct(win.server_cpu) / streams:.2f} "
                        f"| {win.pct(win.client_cpu):.0f}% | {win.pct(win.other_cpu):.0f}% "
                        f"| {win.udp_drops} | {note} |"
                    )
                    if ok:
                        best[key] = n
                    else:
                        failed.add(key)
                if len(failed) == len(targets):
                    break
            say()
            say(
                "Sustained (>= 90% of video frames delivered): "
                + ", ".join(f"{targets[k].name} **{v}**" for k, v in best.items())
                + " concurrent 4-person sessions."
            )
            load_after = _loadavg()
            say(f"Load average after the run: {'/'.join(load_after)}.")
            for text in profiles:
                print(text)
            if "embedded" in targets:
                async with http.post(f"http://127.0.0.1:{port}/shutdown") as response:
                    response.raise_for_status()
    finally:
        if janus is not None:
            janus.stop()
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
            server.join(timeout=5)
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return out


def _write_docs(lines: list[str]) -> None:
    text = DOCS.read_text()
    start, end = "<!-- bench:relay -->", "<!-- /bench:relay -->"
    if start not in text or end not in text:
        print(f"docs: no {start} markers in {DOCS}; not written")
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    DOCS.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + tail)
    print(f"docs: wrote the relay run into {DOCS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows, smaller budget")
    parser.add_argument("--only", choices=("embedded", "janus"), help="run one server only")
    parser.add_argument("--steps", default="1,2,3,4,6,8,10,12,14,16", help="sessions to try")
    parser.add_argument("--subscribers", type=int, default=6, help="for the CPU per stream")
    parser.add_argument("--budget", type=float, default=0.0, help="seconds for the ladder")
    parser.add_argument(
        "--socket-buffer",
        type=int,
        default=1 << 21,
        help="SO_RCVBUF/SO_SNDBUF the relay asks for (0: kernel default)",
    )
    parser.add_argument("--remb", action="store_true", help="relay keeps aiortc's REMB estimator")
    parser.add_argument("--uvloop", action="store_true", help="relay process on uvloop")
    parser.add_argument("--profile", type=int, default=0, help="cProfile the relay: top N")
    parser.add_argument("--profile-at", type=int, default=6, help="sessions to profile at")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    lines = asyncio.run(_run(args))
    if not args.no_docs and args.only is None and not args.quick:
        _write_docs(lines)


if __name__ == "__main__":
    main()
