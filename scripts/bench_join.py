"""Benchmark: POST /v1/join against a bare aiohttp JSON handler, on loopback, in one run.

The join must reach >= 0.10 of the bare handler's requests/s on SQLite (aim: 0.15), with every
admitted join's audit entry committed before its answer goes out.

    /tmp/venv/bin/python scripts/bench_join.py [--duration 10] [--connections 64] [--no-docs]
                                               [--audit] [--on sqlite,postgres-redis]

`--on` names the stores to run on, one full run each (default: both, or BENCH_JOIN_ON):
`sqlite` (a file in a temporary directory, live state in the gateway process) and
`postgres-redis`, the production shape: a throwaway PostgreSQL cluster and Redis server on
loopback, started and stopped by this script (tests/plugins/servers.py), live state in Redis.

What runs (every server is a subprocess on 127.0.0.1, stopped at the end):

1. Setup, in this process, through the services (`build_runtime`) on a fresh temporary SQLite
   database and key directory: an organisation on a copy of policies/demo.toml, with
   `invites.password_required = false` (so a session may have no password) and the per-invite
   attempt limit raised to 100 (64 connections replay one invite; the default 5 would answer
   429 once more than 5 passwords are in flight), a vetted tutor and a DSL, and sessions with
   the tutor as host: 16 "open" ones (no password) and one "locked" (a password, checked with
   argon2id).
2. The bare handler: `aiohttp.web.run_app` with one POST /v1/join route that parses the JSON
   body and answers a JSON document of the join answer's size; logging configured as the
   gateway's.
3. The gateway: `python -m gateway.cli serve --port P` with GATEWAY_DATABASE_URL,
   GATEWAY_KEYS_DIR and GATEWAY_POLICY pointing into the temporary directory.
4. For each host invite, one join binds the invite to a "device" (the HttpOnly cookie it
   sets); wrk then replays {"token", "password"} with that Cookie header: the 16 open
   sessions' invites in turn (joins arriving together are for different invites, as on a real
   gateway), the locked one alone. Each answer: a vetted adult admitted, one `join.decision`
   audit entry per join.
5. Both servers run side by side; wrk -t2 -cN -dD --latency measures them in alternating
   rounds (bare, join, bare, join, ...; a 2 s warm-up each first, not counted), so a slow minute
   on a shared machine hits both alike; each figure is its median round. Then the password case
   once. After the gateway has stopped (SIGINT: graceful, the audit writer drains), the audit
   log must hold at least one `join.decision` entry per 200 answer, and `gateway audit verify`
   must find the chain intact.

The figures go to stdout as a markdown table and into docs/benchmarks.md (its "Join" and
"Join on PostgreSQL + Redis" sections and the machine line; other sections are kept).
`--audit` also runs scripts/bench_audit.py (about 2.5 minutes on 2 cores, mostly generating
the log) and fills the "Audit log" section.
`scripts/bench join --on postgres-redis` passes flags through; BENCH_JOIN_DURATION /
_CONNECTIONS / _ROUNDS / _ON set them for a plain `scripts/bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIN_RATIO = 0.10
AIM_RATIO = 0.15
HOST = "127.0.0.1"
PASSWORD = "bench-session-password"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTIONS = ("machine", "join", "join_pg", "audit", "relay", "soak")
PLACEHOLDERS = {
    "machine": "(not measured yet)",
    "join": "Not measured yet: `scripts/bench join`.",
    "join_pg": "Not measured yet: `scripts/bench join --on postgres-redis`.",
    "audit": "Not measured yet: `scripts/bench audit`.",
    "relay": "Relay benchmark results will be filled in here by `scripts/bench relay`.",
    "soak": "Not measured yet: `scripts/bench soak`.",
}
TITLES = {
    "join": "Join",
    "join_pg": "Join on PostgreSQL + Redis",
    "audit": "Audit log",
    "relay": "Relay",
    "soak": "Soak",
}
#: The stores the join is measured on; the docs section each one fills.
STORES = {"sqlite": "join", "postgres-redis": "join_pg"}


# the bare handler ------------------------------------------------------------------------------


def bare_server(port: int) -> None:
    """A minimal aiohttp JSON handler, started like `gateway serve` (run_app, same logging)."""
    from aiohttp import web

    from gateway.app import configure_logging

    answer = {
        "outcome": "admit",
        "reasons": ["vetted_adult"],
        "grants": {"publish_audio": True, "publish_video": True, "subscribe": True},
        "policy_version": "2026-11-21-bench",
        "session": {
            "id": "0" * 32,
            "kind": "group",
            "title": "Bench maths club",
            "recording_purpose": "lesson_review",
            "recording_notice": "This session may be recorded, only if everyone in it has "
            "agreed in writing. Why: Letting the tutor and the child's family look back at "
            "a lesson.",
            "safeguarding_contact": "our safeguarding lead, Alex, on 0100 000 0000 or "
            "safeguarding@example.org",
        },
        "participant": {"identity": "p-" + "1" * 16, "display_name": "Priya S.", "role": "host"},
        "media": {"credential": "x" * 300, "ice_servers": [], "slots": 8},
    }

    async def join(request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or "token" not in body:
            return web.json_response({"code": "body_invalid"}, status=400)
        return web.json_response(answer)

    configure_logging("WARNING")
    app = web.Application()
    app.router.add_post("/v1/join", join)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", health)
    web.run_app(app, host=HOST, port=port, print=None)


# setup -----------------------------------------------------------------------------------------


# The no-password case joins this many sessions' hosts in turn (each invite on its own device),
# as a gateway sees them: joins arriving together are for different invites.
OPEN_SESSIONS = 16


@dataclass
class Sessions:
    org_id: str
    open_sessions: list[str]
    open_tokens: list[str]
    locked_session: str
    locked_token: str


def write_policy(path: Path) -> None:
    text = (ROOT / "policies" / "demo.toml").read_text()
    for key, value in (
        ("password_required", "false"),
        ("password_max_attempts", "100"),
        ("version", '"bench"'),
    ):
        text, n = re.subn(rf"(?m)^{key}\s*=\s*\S+", f"{key} = {value}", text, count=1)
        assert n == 1, f"policies/demo.toml has no {key}"
    # 64 connections replay one invite from one address: the join flood limits are raised so
    # that every answer is a real join (the run fails unless every answer is a 200).
    text, n = re.subn(
        r"(?m)^\[invites\]$",
        "[invites]\njoins_per_minute_per_invite = 1000000\njoins_per_minute_per_source = 1000000",
        text,
        count=1,
    )
    assert n == 1, "policies/demo.toml has no [invites]"
    path.write_text(text)


async def setup(settings: Any, policy: Path) -> Sessions:
    from datetime import timedelta

    from gateway.app import build_runtime
    from gateway.domain.models import SessionKind, SessionRole, StaffRole, Vetting

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
        made: list[tuple[str, str]] = []
        cases = [(f"Bench open {i + 1}", None) for i in range(OPEN_SESSIONS)]
        for title, password in [*cases, ("Bench locked", PASSWORD)]:
            created = await services.sessions.create(
                org,
                "bench",
                SessionKind.GROUP,
                title,
                tutor.id,
                now - timedelta(minutes=5),
                now + timedelta(hours=3),
                "lesson_review",
                password,
                dsl.id,  # approved out of hours, so the run works at any time of day
            )
            session_id = created.session.id
            roster = await services.sessions.roster(org, session_id)
            host = next(p for p in roster if p.role is SessionRole.HOST)
            issued = await services.sessions.issue_invite(org, "bench", session_id, host.id)
            made.append((session_id, issued.token))
        opened, (locked, locked_token) = made[:-1], made[-1]
        return Sessions(
            org.id, [s for s, _ in opened], [t for _, t in opened], locked, locked_token
        )
    finally:
        await runtime.close()


# processes -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    argv: list[str], env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server subprocess, wait for /healthz, and always stop it (SIGINT, then kill)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_healthy(port, proc, log)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # run_app: graceful exit, cleanup runs
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not healthy after 30 s")


def first_join(port: int, body: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
    """Bind the invite to a device; return the Cookie header, the answer, its size in bytes."""
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", "/v1/join", json.dumps(body), {"Content-Type": "application/json"})
        answer = conn.getresponse()
        raw = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"first join answered {answer.status}: {raw[:500]!r}")
        cookies = [
            value.split(";", 1)[0] for name, value in answer.getheaders() if name == "Set-Cookie"
        ]
        if not cookies:
            raise RuntimeError("first join set no device cookie")
        cookie = "; ".join(cookies)
        # the same device again, as wrk will send it
        conn.request(
            "POST",
            "/v1/join",
            json.dumps(body),
            {"Content-Type": "application/json", "Cookie": cookie},
        )
        again = conn.getresponse()
        again_raw = again.read()
        if again.status != 200:
            raise RuntimeError(f"second join answered {again.status}: {again_raw[:500]!r}")
        view = json.loads(again_raw)
        if view.get("outcome") != "admit":
            raise RuntimeError(f"host not admitted: {view}")
        return cookie, view, len(again_raw)
    finally:
        conn.close()


# wrk -------------------------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    requests: int
    non_2xx: int
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_ms: float | None = None  # the server's CPU time per request (all its threads)


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system, all threads), from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run: Callable[[], Load]) -> Load:
    """`run`, with the CPU time process `pid` spent per request during it. Unlike requests/s
    this hardly moves when other work shares the cores: it is the figure to compare between
    runs on a busy machine."""
    before = cpu_seconds(pid)
    load = run()
    spent = cpu_seconds(pid) - before
    if load.requests:
        load.cpu_ms = 1000 * spent / load.requests
    return load


LUA = """wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{cookie}
"""
# Several invites in turn: each request the next one's body with its own device's cookie.
LUA_IN_TURN = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local joins = {{ {joins} }}
local i = 0
init = function(args) i = math.random(#joins) end
request = function()
  i = (i % #joins) + 1
  wrk.headers["Cookie"] = joins[i][2]
  return wrk.format(nil, nil, nil, joins[i][1])
end
"""


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_lua_in_turn(path: Path, joins: list[tuple[dict[str, Any], str]]) -> None:
    pairs = ", ".join(
        f"{{ {lua_string(json.dumps(body))}, {lua_string(cookie)} }}" for body, cookie in joins
    )
    path.write_text(LUA_IN_TURN.format(joins=pairs))


def write_lua(path: Path, body: dict[str, Any], cookie: str | None) -> None:
    line = f'wrk.headers["Cookie"] = {lua_string(cookie)}' if cookie else ""
    path.write_text(LUA.format(body=lua_string(json.dumps(body)), cookie=line))


def wrk(port: int, script: Path, seconds: int, connections: int) -> Load:
    argv = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        f"http://{HOST}:{port}/v1/join",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(out.stdout)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(text: str) -> Load:
    def find(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, text)
        if match is None:
            if default is None:
                raise RuntimeError(f"wrk output has no {pattern!r}:\n{text}")
            return default
        return match.group(1)

    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return Load(
        rps=float(find(r"Requests/sec:\s+([\d.]+)")),
        requests=int(find(r"(\d+) requests in")),
        non_2xx=int(find(r"Non-2xx or 3xx responses: (\d+)", "0")),
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        p50_ms=_ms(find(r"\s50%\s+(\S+)")),
        p99_ms=_ms(find(r"\s99%\s+(\S+)")),
    )


def median_round(rounds: list[Load]) -> Load:
    """The round with the median requests/s (its latencies with it)."""
    return sorted(rounds, key=lambda load: load.rps)[len(rounds) // 2]


# the audit check -------------------------------------------------------------------------------


JOIN_ENTRIES_SQL = "SELECT count(*) FROM audit_log WHERE kind = 'join.decision' AND session_id = ?"


def join_entries(database: Path, session_id: str) -> int:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        row = db.execute(JOIN_ENTRIES_SQL, (session_id,)).fetchone()
        return int(row[0])
    finally:
        db.close()


# the stores ------------------------------------------------------------------------------------


@dataclass
class Store:
    """Where the gateway under test keeps its data: its environment and how to count entries."""

    name: str
    env: dict[str, str]
    count_join_entries: Callable[[str], int]
    describe: str


@contextlib.contextmanager
def sqlite_store(tmp: Path, base_env: dict[str, str]) -> Iterator[Store]:
    database = tmp / "gateway.db"
    env = {**base_env, "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    yield Store(
        "sqlite",
        env,
        lambda session_id: join_entries(database, session_id),
        "SQLite in a temporary directory, live state in the gateway process",
    )


@contextlib.contextmanager
def postgres_redis_store(tmp: Path, base_env: dict[str, str]) -> Iterator[Store]:
    """A throwaway PostgreSQL cluster and Redis server on loopback, always stopped at the end."""
    from tests.plugins.servers import PostgresServer, RedisServer

    postgres, redis = PostgresServer(), RedisServer()
    try:
        postgres.start()
        redis.start()
        dbname = postgres.new_database_name("bench")
        postgres.create_database(dbname)
        env = {
            **base_env,
            "GATEWAY_DATABASE_URL": postgres.url(dbname),
            "GATEWAY_REDIS_URL": redis.url(0),
        }

        def count(session_id: str) -> int:
            sql = JOIN_ENTRIES_SQL.replace("?", f"'{session_id}'")  # an id we made: [0-9a-f]
            return int(postgres.psql(sql, dbname).strip())

        version = postgres.bindir.parent.name
        yield Store(
            "postgres-redis",
            env,
            count,
            f"PostgreSQL {version} (fsync off, on loopback) and Redis (no persistence) started "
            "by the script, live state in Redis",
        )
    finally:
        redis.close()
        postgres.close()


STORE_CONTEXTS = {"sqlite": sqlite_store, "postgres-redis": postgres_redis_store}


def verify_chain(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() or out.stderr.strip()


# docs ------------------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import sqlalchemy
        from aiohttp import __version__ as aiohttp_version

        libs = f", aiohttp {aiohttp_version}, SQLAlchemy {sqlalchemy.__version__}"
    except ImportError:
        libs = ""
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{dt.date.today().isoformat()}: {os.cpu_count()} CPUs ({model}), "
        f"Python {platform.python_version()}{libs}, {platform.system()} {platform.release()}, "
        f"wrk {wrk_version[1] if len(wrk_version) > 1 else '?'}; load average after the run "
        f"{load} (1/5/15 min: other work on the machine competes for the same cores)"
    )


def update_docs(sections: dict[str, str]) -> None:
    """Replace the named sections of docs/benchmarks.md; keep every other one as it is."""
    text = DOCS.read_text() if DOCS.exists() else skeleton()
    for name, content in sections.items():
        start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
        if start not in text:
            text = text.rstrip("\n") + f"\n\n## {TITLES.get(name, name)}\n\n{start}\n{end}\n"
        first = text.index(start)
        last = text.index(end, first) + len(end)
        text = text[:first] + f"{start}\n{content.strip()}\n{end}" + text[last:]
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


def skeleton() -> str:
    parts = [
        "# Benchmarks\n",
        "Measured on loopback by `scripts/bench` (each `scripts/bench_*.py` rewrites only its own "
        "section between the `bench:` markers).\n",
        "Machine: <!-- bench:machine -->\n"
        + PLACEHOLDERS["machine"]
        + "\n<!-- /bench:machine -->\n",
    ]
    for name in TITLES:
        parts.append(
            f"## {TITLES[name]}\n\n<!-- bench:{name} -->\n{PLACEHOLDERS[name]}\n"
            f"<!-- /bench:{name} -->\n"
        )
    return "\n".join(parts)


def run_audit_bench() -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_audit.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(out.stdout, end="")
    table = "\n".join(line for line in out.stdout.splitlines() if line.startswith("|"))
    return (
        "`scripts/bench_audit.py` (1,000,000 entries; target: `verify_chain` checks >= 1,000,000 "
        f"entries/s):\n\n{table}\n"
    )


# main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=int, default=int(os.environ.get("BENCH_JOIN_DURATION", 6))
    )
    parser.add_argument(
        "--connections", type=int, default=int(os.environ.get("BENCH_JOIN_CONNECTIONS", 64))
    )
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_JOIN_ROUNDS", 3)))
    parser.add_argument(
        "--on",
        default=os.environ.get("BENCH_JOIN_ON", ",".join(STORES)),
        help=f"comma-separated stores to measure on: {', '.join(STORES)} (default: all)",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--audit", action="store_true", help="also run scripts/bench_audit.py")
    parser.add_argument("--keep", type=Path, help="keep the database and logs in this directory")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile",
        type=Path,
        help="profile the gateway with pyinstrument (a text report) into this file",
    )
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return 0
    stores = [name.strip() for name in args.on.split(",") if name.strip()]
    unknown = [name for name in stores if name not in STORES]
    if unknown or not stores:
        parser.error(f"--on: unknown store {', '.join(unknown)} (known: {', '.join(STORES)})")
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2

    sections: dict[str, str] = {}
    passed = True
    for name in stores:
        section, ok = run_on(name, args)
        sections[STORES[name]] = section
        passed = passed and ok
    if not args.no_docs:
        sections["machine"] = machine()
        if args.audit:
            sections["audit"] = run_audit_bench()
        update_docs(sections)
        print(f"wrote {DOCS.relative_to(ROOT)}")
    return 0 if passed else 1


def run_on(store_name: str, args: argparse.Namespace) -> tuple[str, bool]:
    """One full run (setup, alternating rounds, password case, audit check) on one store."""
    from gateway.app import configure_logging
    from gateway.settings import Settings

    print(f"\n== join benchmark on {store_name}")
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    tmp_context = tempfile.TemporaryDirectory(prefix="bench-join-")
    with tmp_context as tmp_name:
        tmp = args.keep / store_name if args.keep else Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        policy = tmp / "policy.toml"
        write_policy(policy)
        base_env = {
            **os.environ,
            "GATEWAY_KEYS_DIR": str(tmp / "keys"),
            "GATEWAY_POLICY": str(policy),
            "GATEWAY_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        with STORE_CONTEXTS[store_name](tmp, base_env) as store:
            env = store.env
            configure_logging("WARNING")
            settings = Settings.from_env(env)
            sessions = asyncio.run(setup(settings, policy))

            # Both servers run side by side (the idle one costs nothing) and are measured in
            # alternating rounds, so a slow minute on a shared machine hits both alike; the
            # figures are the median round of each.
            bare_port, port = free_port(), free_port()
            bare_lua = tmp / "bare.lua"
            write_lua(bare_lua, {"token": sessions.open_tokens[0]}, None)
            gateway_argv = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)]
            if args.profile:
                # pyinstrument (pip install pyinstrument) runs in the gateway's own process, so
                # its CPU figure still holds; the text report is written when it stops.
                gateway_argv = [
                    sys.executable,
                    "-m",
                    "pyinstrument",
                    "-r",
                    "text",
                    "--show-all",
                    "-o",
                    str(args.profile.with_suffix(f".{store_name}{args.profile.suffix}")),
                    *gateway_argv[1:],
                ]
            runs: dict[str, list[Load]] = {"open": [], "locked": []}
            bare_rounds: list[Load] = []
            answer_bytes = 0
            with (
                server(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--bare-server",
                        str(bare_port),
                    ],
                    env,
                    bare_port,
                    tmp / "bare.log",
                ) as bare,
                server(gateway_argv, env, port, tmp / "gateway.log") as gateway,
            ):
                scripts: dict[str, Path] = {"open": tmp / "open.lua", "locked": tmp / "locked.lua"}
                open_joins = []
                for token in sessions.open_tokens:
                    body = {"token": token, "password": None}
                    cookie, _view, size = first_join(port, body)
                    answer_bytes = answer_bytes or size
                    open_joins.append((body, cookie))
                write_lua_in_turn(scripts["open"], open_joins)
                locked = {"token": sessions.locked_token, "password": PASSWORD}
                cookie, _view, _size = first_join(port, locked)
                write_lua(scripts["locked"], locked, cookie)
                wrk(bare_port, bare_lua, 2, args.connections)  # warm-ups, not counted
                runs["open"].append(wrk(port, scripts["open"], 2, args.connections))
                for _ in range(args.rounds):
                    bare_rounds.append(
                        measured(
                            bare.pid,
                            lambda: wrk(bare_port, bare_lua, args.duration, args.connections),
                        )
                    )
                    runs["open"].append(
                        measured(
                            gateway.pid,
                            lambda: wrk(port, scripts["open"], args.duration, args.connections),
                        )
                    )
                runs["locked"].append(wrk(port, scripts["locked"], 2, args.connections))
                runs["locked"].append(
                    measured(
                        gateway.pid,
                        lambda: wrk(port, scripts["locked"], args.duration, args.connections),
                    )
                )
            # the gateway has stopped: its writer drained, every acknowledged entry is stored
            counts = {
                "open": sum(map(store.count_join_entries, sessions.open_sessions)),
                "locked": store.count_join_entries(sessions.locked_session),
            }
            chain = verify_chain(env)

    # + 2 per invite: the binding join and the check join
    first = {"open": 2 * len(sessions.open_tokens), "locked": 2}
    ok_answers = {
        case: sum(r.requests - r.non_2xx for r in loads) + first[case]
        for case, loads in runs.items()
    }
    audited = {case: counts[case] >= ok_answers[case] for case in runs}
    bare = median_round(bare_rounds)
    open_run, locked_run = median_round(runs["open"][1:]), runs["locked"][1]
    ratio = open_run.rps / bare.rps if bare.rps else 0.0
    locked_ratio = locked_run.rps / bare.rps if bare.rps else 0.0
    intact = chain.startswith("audit log intact")
    # Only joins count: a run with any refused answer (a limit, an outage) measures nothing.
    all_joined = all(r.non_2xx == 0 for r in (open_run, *runs["open"]))
    passed = ratio >= MIN_RATIO and all(audited.values()) and intact and all_joined
    verdict = "PASS" if passed else "FAIL"
    if passed and ratio >= AIM_RATIO:
        verdict += " (aim met)"

    def row(name: str, run: Load, vs: str, audit: str) -> str:
        cpu = "-" if run.cpu_ms is None else f"{run.cpu_ms:.2f}"
        return (
            f"| {name} | {run.rps:,.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} | {vs} "
            f"| {cpu} | {run.requests - run.non_2xx:,} / {run.requests:,} | {audit} |"
        )

    def audit_cell(case: str) -> str:
        mark = "ok" if audited[case] else "MISSING"
        return f"{counts[case]:,} entries for {ok_answers[case]:,} answers: {mark}"

    table = "\n".join(
        [
            "| endpoint (64 connections) | requests/s | p50 ms | p99 ms | vs bare "
            "| server CPU ms per request | 200 / all "
            "| join.decision audit |".replace("64", str(args.connections)),
            "|:---|---:|---:|---:|---:|---:|---:|:---|",
            row("bare aiohttp JSON handler", bare, "1", "-"),
            row("POST /v1/join, no password (main)", open_run, f"{ratio:.3f}", audit_cell("open")),
            row(
                "POST /v1/join, with password (argon2id)",
                locked_run,
                f"{locked_ratio:.3f}",
                audit_cell("locked"),
            ),
        ]
    )
    load_after = os.getloadavg()[0]
    cpu_per_join = "" if open_run.cpu_ms is None else f"; {open_run.cpu_ms:.2f} ms of CPU per join"
    summary = (
        f"join/bare = {ratio:.3f} on {store_name} (needed >= {MIN_RATIO:.2f}, aim "
        f"{AIM_RATIO:.2f}){cpu_per_join}; audit chain: {chain.split(';')[0]}; result: "
        f"**{verdict}**"
    )
    print()
    print(table)
    print()
    print(summary)
    print(
        f"(join answer {answer_bytes} bytes; run took {time.monotonic() - started:.0f} s; "
        f"load average {load_before:.1f} before, {load_after:.1f} after, on "
        f"{os.cpu_count()} CPUs)"
    )
    section = (
        f"`scripts/bench_join.py --on {store_name}`: wrk -t2 -c{args.connections} "
        f"-d{args.duration}s --latency on 127.0.0.1, {args.rounds} alternating rounds of bare and "
        "join (each after a 2 s warm-up; median round shown), each server a separate process "
        f"started like `gateway serve` (`web.run_app`); {store.describe}. "
        f"The join replays {OPEN_SESSIONS} sessions' vetted hosts' invites in turn, each "
        "with its bound device cookie: "
        "admitted every time, one `join.decision` audit entry committed (group commit) "
        "before each answer; the audit count is read after the gateway has stopped "
        "(it exceeds the answers by the joins still in flight when wrk stopped). "
        f"Requirement: join >= {MIN_RATIO:.2f} of bare (aim {AIM_RATIO:.2f}). Load average "
        f"{load_before:.1f} before the run, {load_after:.1f} after "
        f"(on {os.cpu_count()} CPUs: other work competes for the same cores).\n\n"
        f"{table}\n\n{summary}\n"
    )
    return section, passed


if __name__ == "__main__":
    sys.exit(main())
