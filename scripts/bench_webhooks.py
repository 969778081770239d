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
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_join import Load, median_round, parse_wrk  # one wrk parser for every benchmark

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:webhooks -->", "<!-- /bench:webhooks -->"
NEEDED = 0.10


# --- the load: wrk, cycling through requests signed beforehand ---------------------------------
LUA = """
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  reqs = {}
  local threads = tonumber(args[2])
  local i = 0
  for line in io.lines(args[1]) do
    if i % threads == id then  -- each thread its own events: no duplicates between threads
      local tab = line:find("\t")
      reqs[#reqs + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/webhook+json",
        ["Authorization"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    i = i + 1
  end
  n = 0
end
function request()
  n = n + 1
  return reqs[((n - 1) % #reqs) + 1]
end
"""
THREADS = 2


def run_wrk(url: str, requests_file: Path, seconds: float, connections: int) -> Load:
    script = requests_file.with_suffix(".lua")
    script.write_text(LUA)
    argv = ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s"]
    argv += ["--latency", "-s", str(script), url, "--", str(requests_file), str(THREADS)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse_wrk(done.stdout)


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
            out.write(sign_webhook(body, key, secret) + "\t" + body.decode() + "\n")


async def measure(args: argparse.Namespace) -> tuple[dict[str, list[Load]], int]:
    from dataclasses import replace

    from gateway.app import build_app
    from gateway.clock import FrozenClock
    from gateway.http.connection_limits import start_server
    from gateway.settings import Settings
    from tests.http.world import build_world
    from tests.plugins.gateway_server import MONDAY_10AM, Gateway
    from tests.plugins.servers import free_port

    key, secret = "APIbench", secrets.token_urlsafe(32)
    results: dict[str, list[Load]] = {"bare": [], "webhooks": []}
    audited = 0
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
            per_round = int(args.seconds * 3000)  # more than the gateway takes in a round
            for round_ in range(args.rounds):
                requests_file = Path(tmp) / f"round-{round_}.txt"
                await asyncio.to_thread(
                    signed_requests, requests_file, room, key, secret, per_round
                )
                for name, url in (
                    ("bare", f"http://127.0.0.1:{bare_port}/platform/livekit/webhook"),
                    ("webhooks", f"http://127.0.0.1:{port}/platform/livekit/webhook"),
                ):
                    got = await asyncio.to_thread(
                        run_wrk, url, requests_file, args.seconds, args.connections
                    )
                    results[name].append(got)
                    print(f"round {round_ + 1} {name}: {got}", flush=True)
            with sqlite3.connect(f"{tmp}/gateway.db") as db:
                (audited,) = db.execute(
                    "SELECT count(*) FROM audit_log WHERE kind = 'livekit.webhook'"
                ).fetchone()
        finally:
            for http in sessions:
                await http.close()
            await bare.cleanup()
            await runner.cleanup()
    return results, int(audited)


def report(
    results: dict[str, list[Load]], audited: int, args: argparse.Namespace, load_before: float
) -> str:
    bare, hooks = median_round(results["bare"]), median_round(results["webhooks"])
    ratio = hooks.rps / bare.rps
    sent = sum(r.requests - r.non_2xx - r.errors for r in results["webhooks"])
    refused = sum(r.non_2xx + r.errors for r in results["webhooks"])
    # wrk counts requests still in flight at the end; each answered 200 left one audit entry
    fresh = audited >= sent - args.connections * args.rounds and refused == 0
    verdict = "PASS" if ratio >= NEEDED and fresh else "FAIL"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d at %H:%M UTC")
    rows = [
        "| endpoint | requests/s | p50 ms | p99 ms | vs bare | non-2xx / all |",
        "|:---|---:|---:|---:|---:|---:|",
    ]
    for label, r in (
        ("bare aiohttp handler (reads the body)", bare),
        ("POST /platform/livekit/webhook", hooks),
    ):
        rows.append(
            f"| {label} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.rps / bare.rps:.3f} | {r.non_2xx + r.errors:,} / {r.requests:,} |"
        )
    return (
        f"`scripts/bench webhooks`: wrk -t{THREADS} -c{args.connections} -d{int(args.seconds)}s"
        f" --latency on 127.0.0.1, {args.rounds} alternating rounds (median round shown), both "
        "servers in one process, SQLite in a temporary directory. Each webhook a distinct "
        "`participant_joined` about a known session, signed beforehand (wrk cycles through "
        "them; each thread its own): verified on the raw body, parsed, de-duplicated and "
        "ordered in SQL, audited, and turned into a reconciliation hint. Requirement: webhooks "
        f">= 0.10 of bare. Run on {now}, load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after (other jobs on the machine):\n\n"
        + "\n".join(rows)
        + f"\n\n{audited:,} `livekit.webhook` audit entries for {sent:,} answered webhooks "
        f"({'every one fresh' if fresh else 'NOT every one fresh or accepted'}); "
        f"webhooks/bare = {ratio:.3f} (needed >= {NEEDED}); result: **{verdict}**."
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
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results, audited = asyncio.run(measure(args))
    text = report(results, audited, args, load_before)
    print(text)
    if not args.no_docs:
        update_docs(text)
    return 0 if "**PASS**" in text else 1


if __name__ == "__main__":
    sys.exit(main())
