"""Benchmark: LiveKit webhook ingestion against a bare aiohttp handler, on loopback, in one run.

    scripts/bench webhooks [--seconds 8] [--connections 32] [--rounds 3] [--no-docs]

The gateway runs in this process (SQLite in a temporary directory, one organisation, one
session whose room the webhooks are about); each webhook is a distinct, validly signed
`participant_joined` (a fresh event id, a later `created_at`), so every one is verified on the
raw body, parsed, de-duplicated and ordered in SQL, audited (`livekit.webhook`) and turned into a
reconciliation hint: the whole path. The bare handler is an aiohttp app in the same process
that reads the body and answers `{"outcome": "ok"}`. The load comes from a separate process
(an aiohttp client, `--connections` at once, requests signed beforehand so the client does no
crypto while measuring), the same for both, in alternating rounds (bare, webhooks, ...); the
median round of each is reported. Requirement: webhooks >= 0.10 of bare.

The result goes to stdout and to docs/benchmarks.md ("LiveKit webhooks" section).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:webhooks -->", "<!-- /bench:webhooks -->"
NEEDED = 0.10


# --- the load, in its own process ------------------------------------------------------------
async def load(url: str, requests_file: Path, seconds: float, connections: int) -> dict[str, Any]:
    requests = [json.loads(line) for line in requests_file.read_text().splitlines()]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_request = 0
    deadline = time.perf_counter() + seconds

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal next_request
        while time.perf_counter() < deadline and next_request < len(requests):
            body, authorization = requests[next_request]
            next_request += 1
            started = time.perf_counter()
            async with http.post(
                url,
                data=body.encode(),
                headers={
                    "Content-Type": "application/webhook+json",
                    "Authorization": authorization,
                },
            ) as answer:
                await answer.read()
            latencies.append(time.perf_counter() - started)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:
        began = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "count": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "statuses": statuses,
        "exhausted": next_request >= len(requests),
    }


def run_load(url: str, requests_file: Path, seconds: float, connections: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--load", url, "--requests", str(requests_file)]
        + ["--seconds", str(seconds), "--connections", str(connections)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


# --- the servers, in this process ------------------------------------------------------------
async def bare_app(port: int) -> web.AppRunner:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"outcome": "ok"})

    app = web.Application()
    app.router.add_post("/platform/livekit/webhook", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def signed_requests(path: Path, room: str, key: str, secret: str, count: int) -> None:
    from livekit.protocol import models

    from tests.livekit_double import LiveKitDouble, event_body, sign_webhook

    double = LiveKitDouble(api_key=key, secret=secret)
    base = int(time.time())
    with path.open("w") as out:
        for n in range(count):
            event = double.event(
                "participant_joined",
                room=models.Room(name=room),
                participant=models.ParticipantInfo(identity=f"p_{n % 50}"),
            )
            event.created_at = base + n
            body = event_body(event)
            out.write(json.dumps([body.decode(), sign_webhook(body, key, secret)]) + "\n")


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import replace

    from gateway.app import build_app
    from gateway.clock import FrozenClock
    from gateway.http.connection_limits import start_server
    from gateway.settings import Settings
    from tests.http.world import build_world
    from tests.plugins.gateway_server import MONDAY_10AM, Gateway
    from tests.plugins.servers import free_port

    key, secret = "APIbench", secrets.token_urlsafe(32)
    results: dict[str, list[dict[str, Any]]] = {"bare": [], "webhooks": []}
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        keys = Path(tmp) / "livekit-keys.json"
        keys.write_text(json.dumps({key: {"secret": secret, "organisations": "*"}}))
        os.chmod(keys, 0o600)
        port, bare_port = free_port(), free_port()
        settings = replace(
            Settings(
                database_url=f"sqlite+aiosqlite:///{tmp}/gateway.db",
                policy_path=ROOT / "policies" / "default.toml",
                keys_dir=Path(tmp) / "keys",
                public_url=f"http://127.0.0.1:{port}",
            ),
            livekit_keys_file=keys,
            connections_per_source=4 * args.connections,
        )
        clock = FrozenClock(MONDAY_10AM)
        app = build_app(settings, clock)
        runner, _ = await start_server(app, "127.0.0.1", port, settings)
        bare = await bare_app(bare_port)
        sessions: list[aiohttp.ClientSession] = []
        try:
            world = await build_world(
                Gateway(f"http://127.0.0.1:{port}", clock, app, settings, sessions)
            )
            room = world.session["id"]
            per_round = int(args.seconds * 4000)  # more than either can take in a round
            for round_ in range(args.rounds):
                for name, url in (
                    ("bare", f"http://127.0.0.1:{bare_port}/platform/livekit/webhook"),
                    ("webhooks", f"http://127.0.0.1:{port}/platform/livekit/webhook"),
                ):
                    requests_file = Path(tmp) / f"{name}-{round_}.jsonl"
                    await asyncio.to_thread(
                        signed_requests, requests_file, room, key, secret, per_round
                    )
                    got = await asyncio.to_thread(
                        run_load, url, requests_file, args.seconds, args.connections
                    )
                    results[name].append(got)
                    print(f"round {round_ + 1} {name}: {got}", flush=True)
            audited = await world.admin.get("/v1/audit?kind=livekit.webhook&limit=1")
            assert audited.status == 200 and audited.body["items"], audited.body
        finally:
            for http in sessions:
                await http.close()
            await bare.cleanup()
            await runner.cleanup()
    return results


def median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    by_rate = sorted(rounds, key=lambda r: r["rate"])
    return by_rate[len(by_rate) // 2]


def report(results: dict[str, Any], args: argparse.Namespace, load_before: float) -> str:
    bare, hooks = median(results["bare"]), median(results["webhooks"])
    ratio = hooks["rate"] / bare["rate"]
    ok = hooks["statuses"] == {"200": hooks["count"]}  # every webhook taken, none refused
    verdict = "PASS" if ratio >= NEEDED and ok else "FAIL"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d at %H:%M UTC")
    rows = [
        "| endpoint | webhooks/s | p50 ms | p99 ms | vs bare | 200 / all |",
        "|:---|---:|---:|---:|---:|---:|",
    ]
    for label, r in (
        ("bare aiohttp handler (reads the body)", bare),
        ("POST /platform/livekit/webhook", hooks),
    ):
        twos = r["statuses"].get("200", r["statuses"].get(200, 0))
        rows.append(
            f"| {label} | {r['rate']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['rate'] / bare['rate']:.3f} | {twos:,} / {r['count']:,} |"
        )
    return (
        f"`scripts/bench webhooks`: {args.connections} connections from one aiohttp client "
        f"process (requests signed beforehand), {args.rounds} alternating rounds of "
        f"{args.seconds:g} s (median round shown), both servers in one process, SQLite in a "
        "temporary directory. Each webhook a distinct signed `participant_joined` about a "
        "known session: verified on the raw body, parsed, de-duplicated and ordered in SQL, "
        "audited, and a reconciliation hint. Requirement: webhooks >= 0.10 of bare. Run on "
        f"{now}, load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after "
        "(other jobs on the machine):\n\n"
        + "\n".join(rows)
        + f"\n\nwebhooks/bare = {ratio:.3f} (needed >= {NEEDED}); result: **{verdict}**."
    )


def update_docs(content: str) -> None:
    text = DOCS.read_text()
    if START not in text:
        text = text.rstrip("\n") + f"\n\n## LiveKit webhooks\n\n{START}\n{END}\n"
    first = text.index(START)
    last = text.index(END, first) + len(END)
    DOCS.write_text(text[:first] + f"{START}\n{content.strip()}\n{END}" + text[last:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(
            json.dumps(asyncio.run(load(args.load, args.requests, args.seconds, args.connections)))
        )
        return 0
    load_before = os.getloadavg()[0]
    results = asyncio.run(measure(args))
    text = report(results, args, load_before)
    print(text)
    if not args.no_docs:
        update_docs(text)
    return 0 if "**PASS**" in text else 1


if __name__ == "__main__":
    sys.exit(main())
