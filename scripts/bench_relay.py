"""Benchmark the embedded relay (loopback only).

Run: /tmp/venv/bin/python scripts/bench_relay.py [--quick]

1. Server CPU per forwarded 640x480 video stream: (a) EmbeddedRelay (encoded pass-through) vs
   (b) an aiortc MediaRelay server (decode once, re-encode per subscriber). The relay runs in its
   own process (multiprocessing, spawn) and reports its own time.process_time(); the clients run
   in this process and are cheap: publishers send pre-encoded VP8/Opus packets, subscribers count
   encoded frames without decoding.
2. Concurrent 4-person sessions (everyone sends 640x480 video + audio, receives the other three)
   one relay process sustains with delivered video frame rate >= 90% of sent; the count steps up
   until it fails or the time budget runs out. Note: relay and load generator share the machine's
   cores, so the load generator's CPU is printed too.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import fractions
import math
import multiprocessing
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import av
from aiohttp import ClientSession, web
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from gateway.media import passthrough
from gateway.media.grants import MediaGrants
from gateway.media.relay import EmbeddedRelay

WIDTH, HEIGHT, FPS = 640, 480, 30
FULL = MediaGrants(can_publish=True, can_subscribe=True)
VIEWER = MediaGrants(can_publish=False, can_subscribe=True)


def _config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


# --------------------------------------------------------------------------- relay server process


class _MediaRelayServer:
    """Baseline: aiortc MediaRelay, decode the publisher once and re-encode per subscriber."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.pcs: list[RTCPeerConnection] = []

    async def connect(self, room: str, identity: str, publish: bool, sdp: str) -> str:
        pc = RTCPeerConnection(_config())
        self.pcs.append(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self.tracks[room] = track

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if not publish:
            pc.addTrack(self.relay.subscribe(self.tracks[room]))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        self.pcs.clear()
        self.tracks.clear()


async def _serve(port_queue: Any) -> None:
    embedded = EmbeddedRelay(disconnect_timeout=15.0)
    baseline = _MediaRelayServer()
    stop = asyncio.Event()

    async def connect(request: web.Request) -> web.Response:
        body = await request.json()
        if body["mode"] == "embedded":
            await embedded.open_room(body["room"])
            grants = FULL if body["publish"] else VIEWER
            answer = await embedded.connect(body["room"], body["identity"], grants, body["sdp"])
        else:
            answer = await baseline.connect(
                body["room"], body["identity"], body["publish"], body["sdp"]
            )
        return web.json_response({"sdp": answer})

    async def reset(request: web.Request) -> web.Response:
        for room in list(embedded._rooms):
            await embedded.close_room(room)
        await baseline.close()
        return web.json_response({})

    async def cpu(request: web.Request) -> web.Response:
        return web.json_response({"cpu": time.process_time(), "wall": time.monotonic()})

    async def stats(request: web.Request) -> web.Response:
        total: Counter[str] = Counter()
        for name, room in embedded._rooms.items():
            for identity in room.peers:
                total.update(embedded.stats(name, identity))
        return web.json_response(dict(total))

    async def shutdown(request: web.Request) -> web.Response:
        stop.set()
        return web.json_response({})

    app = web.Application()
    app.add_routes(
        [
            web.post("/connect", connect),
            web.post("/reset", reset),
            web.get("/cpu", cpu),
            web.get("/stats", stats),
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
    await baseline.close()
    await runner.cleanup()


def _server_main(port_queue: Any) -> None:
    asyncio.run(_serve(port_queue))


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


class BenchClient:
    def __init__(
        self,
        video: list[bytes],
        audio: list[bytes] | None,
        *,
        publish: bool,
        slots: int,
        slot_audio: bool,
    ) -> None:
        self.pc = RTCPeerConnection(_config())
        self.received: Counter[str] = Counter()
        self.tracks: list[PacketTrack] = []
        if publish:
            if audio is not None:
                self.tracks.append(PacketTrack("audio", audio))
            self.tracks.append(PacketTrack("video", video))
            for track in self.tracks:
                self.pc.addTransceiver(track, direction="sendonly")
        for _ in range(slots):
            kinds = ("audio", "video") if slot_audio else ("video",)
            for kind in kinds:
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                passthrough.install_receiver_tap(transceiver.receiver, kind, self._counter(kind))

    def _counter(self, kind: str) -> Any:
        def count(frame: passthrough.EncodedFrame) -> None:
            self.received[kind] += 1

        return count

    def sent(self, kind: str) -> int:
        return sum(t.sent for t in self.tracks if t.kind == kind)

    async def connect(
        self, http: ClientSession, base: str, mode: str, room: str, identity: str
    ) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {
            "mode": mode,
            "room": room,
            "identity": identity,
            "publish": bool(self.tracks),
            "sdp": self.pc.localDescription.sdp,
        }
        async with http.post(f"{base}/connect", json=body) as response:
            response.raise_for_status()
            answer = (await response.json())["sdp"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def close(self) -> None:
        await self.pc.close()


async def _server_cpu(http: ClientSession, base: str) -> float:
    async with http.get(f"{base}/cpu") as response:
        return float((await response.json())["cpu"])


async def _wait_connected(clients: list[BenchClient], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while any(c.pc.connectionState != "connected" for c in clients):
        if time.monotonic() > deadline:
            raise RuntimeError("clients did not connect")
        await asyncio.sleep(0.1)


def _udp_rcvbuf_errors() -> int:
    """Kernel-wide UDP receive-buffer drops (Linux), to tell loss from an overloaded loop."""
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return -1
    rows = [line.split() for line in lines if line.startswith("Udp:")]
    if len(rows) < 2 or "RcvbufErrors" not in rows[0]:
        return -1
    return int(rows[1][rows[0].index("RcvbufErrors")])


@dataclass
class Window:
    server_cpu: float
    client_cpu: float
    wall: float
    received: int
    sent: int
    sent_fps: float
    udp_drops: int = 0


async def _measure(
    http: ClientSession, base: str, clients: list[BenchClient], seconds: float, fanout: int
) -> Window:
    cpu0 = await _server_cpu(http, base)
    ccpu0 = time.process_time()
    wall0 = time.monotonic()
    recv0 = sum(c.received["video"] for c in clients)
    sent0 = sum(c.sent("video") for c in clients)
    drops0 = _udp_rcvbuf_errors()
    await asyncio.sleep(seconds)
    drops = _udp_rcvbuf_errors() - drops0
    cpu1 = await _server_cpu(http, base)
    wall = time.monotonic() - wall0
    sent = sum(c.sent("video") for c in clients) - sent0
    publishers = sum(1 for c in clients if c.tracks)
    return Window(
        server_cpu=cpu1 - cpu0,
        client_cpu=time.process_time() - ccpu0,
        wall=wall,
        received=sum(c.received["video"] for c in clients) - recv0,
        sent=sent * fanout,
        sent_fps=sent / wall / max(publishers, 1),
        udp_drops=drops,
    )


async def _reset(http: ClientSession, base: str, clients: list[BenchClient]) -> None:
    for c in clients:
        await c.close()
    async with http.post(f"{base}/reset") as response:
        response.raise_for_status()
    await asyncio.sleep(1.0)


async def _per_stream_cost(
    http: ClientSession, base: str, video: list[bytes], mode: str, subscribers: int, secs: float
) -> Window:
    publisher = BenchClient(video, None, publish=True, slots=0, slot_audio=False)
    await publisher.connect(http, base, mode, f"cost-{mode}", "pub")
    await _wait_connected([publisher])
    subs = [
        BenchClient(video, None, publish=False, slots=1, slot_audio=False)
        for _ in range(subscribers)
    ]
    for i, sub in enumerate(subs):
        await sub.connect(http, base, mode, f"cost-{mode}", f"sub{i}")
    clients = [publisher, *subs]
    await _wait_connected(clients)
    await asyncio.sleep(3.0)  # warm-up: keyframes, encoder start
    window = await _measure(http, base, clients, secs, subscribers)
    await _reset(http, base, clients)
    return window


async def _sessions(
    http: ClientSession, base: str, video: list[bytes], audio: list[bytes], n: int, secs: float
) -> Window:
    clients: list[BenchClient] = []
    try:
        for room in range(n):
            members = [
                BenchClient(video, audio, publish=True, slots=3, slot_audio=True) for _ in range(4)
            ]
            for i, c in enumerate(members):
                await c.connect(http, base, "embedded", f"s{room}", f"p{i}")
            clients += members
        await _wait_connected(clients)
        await asyncio.sleep(3.0)
        win = await _measure(http, base, clients, secs, 3)
        if os.environ.get("BENCH_DEBUG"):
            async with http.get(f"{base}/stats") as response:
                print("relay stats", await response.json())
            print(
                "clients sent",
                sum(c.sent("video") for c in clients),
                "received",
                sum(c.received["video"] for c in clients),
            )
        return win
    finally:
        await _reset(http, base, clients)


async def _run(quick: bool) -> None:
    started = time.monotonic()
    budget = 120.0 if quick else 270.0
    ctx = multiprocessing.get_context("spawn")
    port_queue = ctx.Queue()
    server = ctx.Process(target=_server_main, args=(port_queue,), daemon=True)
    server.start()
    port = port_queue.get(timeout=30)
    base = f"http://127.0.0.1:{port}"
    video, audio = _encode_video(), _encode_audio()
    kbps = sum(map(len, video)) * 8 / (len(video) / FPS) / 1000
    print(
        f"# Embedded relay benchmark ({os.cpu_count()} CPUs, loopback, "
        f"640x480 VP8 @ {FPS} fps ~{kbps:.0f} kbit/s, Opus 20 ms)\n"
    )
    try:
        async with ClientSession() as http:
            secs = 4.0 if quick else 8.0
            subs = 3
            rows = {}
            for mode in ("embedded", "mediarelay"):
                win = await _per_stream_cost(http, base, video, mode, subs, secs)
                rows[mode] = win
            print("## Server CPU per forwarded 640x480 video stream\n")
            print(
                "| relay | subscribers | delivered / sent | server CPU (% of one core) "
                "| per stream (% core) |"
            )
            print("|---|---|---|---|---|")
            per = {}
            for mode, win in rows.items():
                load = 100 * win.server_cpu / win.wall
                per[mode] = load / subs
                delivered = 100 * win.received / win.sent if win.sent else 0.0
                print(f"| {mode} | {subs} | {delivered:.0f}% | {load:.1f} | {per[mode]:.2f} |")
            ratio = per["embedded"] / per["mediarelay"] if per["mediarelay"] else float("nan")
            verdict = "OK" if ratio <= 0.2 else "ABOVE TARGET"
            print(f"\nratio embedded / MediaRelay = **{ratio:.3f}** (target <= 0.2: {verdict})\n")

            print("## Concurrent 4-person sessions (video+audio, each receives the other 3)\n")
            print(
                "| sessions | peers | video delivered / sent | sent fps per publisher "
                "| relay CPU (% core) | load-gen CPU (% core) | UDP rcvbuf drops | result |"
            )
            print("|---|---|---|---|---|---|---|---|")
            best = 0
            for n in (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24):
                if time.monotonic() - started > budget:
                    print(f"| {n} | | | | | | | not run (time budget) |")
                    break
                win = await _sessions(http, base, video, audio, n, 3.0 if quick else 6.0)
                ratio_n = win.received / win.sent if win.sent else 0.0
                ok = ratio_n >= 0.9 and win.sent_fps >= 0.9 * FPS
                note = "pass" if ok else "FAIL"
                if win.sent_fps < 0.9 * FPS:
                    note += " (load generator could not keep 30 fps)"
                print(
                    f"| {n} | {4 * n} | {100 * ratio_n:.1f}% | {win.sent_fps:.1f} "
                    f"| {100 * win.server_cpu / win.wall:.0f} "
                    f"| {100 * win.client_cpu / win.wall:.0f} | {win.udp_drops} | {note} |"
                )
                if not ok:
                    break
                best = n
            print(f"\nsustained: **{best}** concurrent 4-person sessions")
            async with http.post(f"{base}/shutdown") as response:
                response.raise_for_status()
    finally:
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
    print(f"\n(total {time.monotonic() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows, 2 min budget")
    asyncio.run(_run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
