"""Benchmark: join-to-token latency on LiveKit, against the same join on the embedded relay.

    scripts/bench livekit [--invites 16] [--rounds 12] [--concurrency 4] [--no-docs]

What a person waits for between pressing "Join" and holding what their browser connects with:
on LiveKit a just-in-time token (the gateway creates the room through LiveKit's RoomService,
decides the join, supersedes the person's previous admission, mints the token); on the
embedded relay (the baseline) the gateway's own single-use media credential. Same database,
policy, session and people on both, measured in the same run.

What runs (every server a subprocess on 127.0.0.1, stopped at the end):
1. A real LiveKit server (the binary `scripts/livekit_server.sh` caches, or
   GATEWAY_LIVEKIT_SERVER_BIN), with a key pair generated for the run.
2. Two gateways (`gateway serve`), each on its own SQLite database in a temporary directory,
   live state in the process: one with every organisation on LiveKit (GATEWAY_LIVEKIT_URL,
   _API_KEY, _API_SECRET_FILE, _ORGANISATIONS=*), one on the embedded relay.
3. Setup through the services on each database: an organisation on policies/demo.toml (join
   flood limits raised), a group session hosted by a vetted tutor, and `--invites` vetted
   observers on its roster, one invite each. Each invite's first join binds it to a device
   (its cookie) and is timed as a first join (on LiveKit: the room created, a token minted).
4. Rounds alternate between the two gateways (relay, LiveKit, relay, ...): in each, every
   invite joins again, `--concurrency` at a time, each join timed from request to answer
   (on LiveKit the answer carries a token for the LiveKit server; the previous admission of
   the same person is superseded, which costs a RemoveParticipant call). p50/p99 over all
   rounds' samples; the ratio LiveKit/relay is the figure to watch.

The figures go to stdout and into docs/benchmarks.md's "Join on LiveKit" section.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_join import free_port, server, write_policy  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:join_livekit -->", "<!-- /bench:join_livekit -->"
HOST = "127.0.0.1"
PLATFORMS = ("relay", "livekit")


@dataclass
class Invites:
    session_id: str
    tokens: list[str]


@dataclass
class Timings:
    first: list[float] = field(default_factory=list)
    again: list[float] = field(default_factory=list)
    rounds: list[float] = field(default_factory=list)  # each round's median


async def setup(settings: Any, policy: Path, invites: int) -> Invites:
    from datetime import timedelta

    from gateway.app import build_runtime
    from gateway.domain.models import PersonKind, SessionKind, SessionRole, StaffRole, Vetting

    runtime = await build_runtime(settings)
    try:
        services = runtime.services
        org, _key = await services.organisations.create("Bench Club", str(policy))
        today = services.clock.now().date()
        vetting = Vetting("dbs_enhanced", today - timedelta(days=200), today + timedelta(days=900))
        tutor = await services.registry.add_staff(
            org, "bench", "Priya Shah", "priya.shah@example.org", [StaffRole.TUTOR], vetting
        )
        dsl = await services.registry.add_staff(
            org, "bench", "Dana Lee", "dana.lee@example.org", [StaffRole.DSL], vetting
        )
        now = services.clock.now()
        created = await services.sessions.create(
            org,
            "bench",
            SessionKind.GROUP,
            "Bench on LiveKit",
            tutor.id,
            now - timedelta(minutes=5),
            now + timedelta(hours=3),
            "lesson_review",
            None,
            dsl.id,  # approved out of hours, so the run works at any time of day
        )
        session_id = created.session.id
        participants = []
        for n in range(invites):
            observer = await services.registry.add_staff(
                org,
                "bench",
                "Alex " + surname(n),
                f"adult{n}@example.org",
                [StaffRole.OBSERVER],
                vetting,
            )
            participants.append(
                await services.sessions.add_participant(
                    org, "bench", session_id, PersonKind.STAFF, observer.id, SessionRole.OBSERVER
                )
            )
        tokens = []
        for participant in participants:
            issued = await services.sessions.issue_invite(org, "bench", session_id, participant.id)
            tokens.append(issued.token)
        return Invites(session_id, tokens)
    finally:
        await runtime.close()


def surname(n: int) -> str:
    """A distinct made-up surname per number (letters only: names are checked)."""
    letters = "B"
    while True:
        letters += "aeioulmnrst"[n % 11]
        n //= 11
        if n == 0:
            return letters + "son"


@contextlib.contextmanager
def livekit_server() -> Iterator[Any]:
    from tests.plugins.livekit_server import LiveKitServer, livekit_binary_path

    binary = livekit_binary_path()
    if binary is None:
        raise SystemExit("livekit-server not built: run scripts/livekit_server.sh first")
    started = LiveKitServer(binary)
    try:
        started.start()
        yield started
    finally:
        started.close()


async def join(
    http: Any, base: str, token: str, cookie_sent: str | None
) -> tuple[float, str, dict[str, Any]]:
    headers = {"Cookie": cookie_sent} if cookie_sent else {}
    began = time.perf_counter()
    async with http.post(base + "/v1/join", json={"token": token}, headers=headers) as answer:
        body = await answer.json()
        took = (time.perf_counter() - began) * 1000
        if answer.status != 200 or body.get("outcome") != "admit":
            raise RuntimeError(f"join answered {answer.status}: {str(body)[:300]}")
        cookie = "; ".join(f"{m.key}={m.value}" for m in answer.cookies.values())
    return took, cookie or (cookie_sent or ""), body


async def measure(
    bases: dict[str, str],
    invites: dict[str, Invites],
    rounds: int,
    concurrency: int,
    livekit_url: str,
) -> dict[str, Timings]:
    import aiohttp

    timings = {name: Timings() for name in PLATFORMS}
    cookies: dict[str, list[str]] = {name: [] for name in PLATFORMS}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        for name in PLATFORMS:
            for token in invites[name].tokens:
                took, cookie, body = await join(http, bases[name], token, None)
                media = body["media"]
                if name == "livekit":
                    assert media["platform"] == "livekit" and media["url"] == livekit_url, media
                else:
                    assert "credential" in media, media
                timings[name].first.append(took)
                cookies[name].append(cookie)
        for _ in range(rounds):
            for name in PLATFORMS:
                gate = asyncio.Semaphore(concurrency)

                async def one(token: str, cookie: str, name: str = name, gate: Any = gate) -> float:
                    async with gate:
                        took, _, _ = await join(http, bases[name], token, cookie)
                        return took

                samples = await asyncio.gather(
                    *(one(t, c) for t, c in zip(invites[name].tokens, cookies[name], strict=True))
                )
                timings[name].again.extend(samples)
                timings[name].rounds.append(statistics.median(samples))
    return timings


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(
    timings: dict[str, Timings], args: argparse.Namespace, loads: tuple[float, float]
) -> str:
    rows = []
    base = timings["relay"]
    for name, label in (("relay", "embedded relay (baseline)"), ("livekit", "LiveKit")):
        t = timings[name]
        rows.append(
            f"| {label} | {statistics.median(t.first):.1f} | {percentile(t.again, 50):.1f} "
            f"| {percentile(t.again, 99):.1f} "
            f"| {percentile(t.again, 50) / percentile(base.again, 50):.2f} "
            f"| {percentile(t.again, 99) / percentile(base.again, 99):.2f} | {len(t.again)} |"
        )
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d at %H:%M UTC")
    per_round = ", ".join(
        f"{lk / relay:.2f}"
        for lk, relay in zip(timings["livekit"].rounds, base.rounds, strict=True)
    )
    return "\n".join(
        [
            f"`scripts/bench livekit`: {args.invites} vetted observers of one group session, "
            f"each joining again {args.rounds} times, {args.concurrency} joins in flight, "
            "rounds alternating between two gateways (each `gateway serve` on its own SQLite "
            "database, live state in the process): one with every organisation on a real "
            "LiveKit server on loopback (the pinned build), one on the embedded relay "
            "(baseline). Timed from request to answer: on LiveKit a token for the LiveKit "
            "server (the room created through RoomService, supervision's look at "
            "ListParticipants, the person's previous admission superseded through "
            "RemoveParticipant, a token minted), on the relay a single-use media credential. "
            "First joins one at a time (each binds its invite to a device). "
            f"Run on {when}, load average {loads[0]:.1f} before and "
            f"{loads[1]:.1f} after (other jobs on the machine):",
            "",
            "| platform | first join p50 ms | join p50 ms | join p99 ms | p50 vs relay "
            "| p99 vs relay | joins |",
            "|:---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Per round, LiveKit/relay median: {per_round}.",
        ]
    )


def update_docs(content: str) -> None:
    text = DOCS.read_text()
    if START not in text:
        text = text.rstrip("\n") + f"\n\n## Join on LiveKit\n\n{START}\n{END}\n"
    first = text.index(START)
    last = text.index(END, first) + len(END)
    DOCS.write_text(text[:first] + f"{START}\n{content.strip()}\n{END}" + text[last:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invites", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()

    from gateway.app import configure_logging
    from gateway.settings import Settings

    configure_logging("WARNING")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-livekit-") as tmp_name, livekit_server() as lk:
        tmp = Path(tmp_name)
        secret = tmp / "livekit.secret"
        secret.write_text(lk.api_secret + "\n")
        secret.chmod(0o600)
        envs: dict[str, dict[str, str]] = {}
        invites: dict[str, Invites] = {}
        for name in PLATFORMS:
            home = tmp / name
            home.mkdir()
            policy = home / "policy.toml"
            write_policy(policy)
            env = {
                **os.environ,
                "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'gateway.db'}",
                "GATEWAY_KEYS_DIR": str(home / "keys"),
                "GATEWAY_POLICY": str(policy),
                "GATEWAY_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
            if name == "livekit":
                env |= {
                    "GATEWAY_LIVEKIT_URL": lk.url,
                    "GATEWAY_LIVEKIT_API_KEY": lk.api_key,
                    "GATEWAY_LIVEKIT_API_SECRET_FILE": str(secret),
                    "GATEWAY_LIVEKIT_ORGANISATIONS": "*",
                }
            envs[name] = env
            invites[name] = asyncio.run(setup(Settings.from_env(env), policy, args.invites))
        ports = {name: free_port() for name in PLATFORMS}
        with contextlib.ExitStack() as stack:
            for name in PLATFORMS:
                argv = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(ports[name])]
                stack.enter_context(server(argv, envs[name], ports[name], tmp / f"{name}.log"))
            bases = {name: f"http://{HOST}:{ports[name]}" for name in PLATFORMS}
            timings = asyncio.run(measure(bases, invites, args.rounds, args.concurrency, lk.url))
    content = report(timings, args, (load_before, os.getloadavg()[0]))
    print(content)
    if not args.no_docs:
        update_docs(content)
        print(f"wrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
