"""Benchmark: a soak. Sessions are created, joined and ended continuously against one gateway
process on PostgreSQL + Redis, and its CPU, memory and p99 latency must stay flat.

    scripts/bench soak [--minutes 10] [--sessions-per-second 4] [--joins-per-second N]
                       [--headroom 0.5] [--calibrate-seconds 20] [--session-seconds 10]
                       [--warmup-seconds 30] [--no-docs] [--keep DIR]

`--minutes 1` is a quick try (the default, 10 minutes, is what the issue asks for).

What runs (every server on 127.0.0.1, each stopped at the end):

1. A throwaway PostgreSQL cluster and Redis server (tests/plugins/servers.py's classes), a
   temporary key directory and a copy of policies/demo.toml without session passwords
   (scripts/bench_join.py's `write_policy`).
2. Setup through the services (`build_runtime`): an organisation and its API key, a vetted
   tutor, a vetted observer and a DSL (who approves sessions out of hours, so the soak runs at
   any time of day).
3. The gateway: `python -m gateway.cli serve --port P`, one process, live state in Redis.
4. The load, from this process (asyncio + aiohttp, one connection pool, no cookie jar: each
   invite's device cookie is sent by hand, as a browser would for that invite only):
   - every 1/`--sessions-per-second` s a session's life starts: create it, read its roster,
     enrol the observer, issue both invites, bind each invite to its device (first join);
     after `--session-seconds` the observer leaves and the session ends, alternately by the
     admin API (`POST /v1/sessions/{id}/end`) and by its host (`POST /v1/live/end`);
   - joins (open loop, 100 ticks a second) spread at random over the invites of the sessions
     alive at that moment, each with its bound device cookie, at a fixed offered rate:
     `--joins-per-second`, or by default `--headroom` (0.5) of the capacity measured first,
     in the same run: `--calibrate-seconds` with the sessions at their rate and 32 joins
     always in flight (closed loop). A soak at saturation measures queueing, not growth.
5. Every minute (after a warm-up that is not counted): the gateway process's CPU time and RSS
   (/proc), the machine's CPU use and load average, the latency of every answer (per kind),
   the answers that were not 2xx, and the most requests waiting for their answer at once
   (when the gateway falls behind, that queue is what its memory grows to hold: RSS then
   keeps the high-water mark of the heap, which a minute with more sessions does not explain).

The verdict compares the last minute with the first: CPU per request, join p99 and RSS must not
grow by more than FLAT (CPU x1.20, p99 x1.50, RSS x1.10), with fewer than 1% failed answers.
The growth per 1,000 sessions created is printed too (the issue's measure: points of a core,
ms of p99, MiB). The table goes to stdout and, unless --no-docs, to docs/benchmarks.md (its
"Soak" section; other sections are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_join  # noqa: E402  (the servers, policy and docs helpers are shared)

#: Largest last/first-minute ratio still called flat.
FLAT = {"cpu_per_request": 1.20, "join_p99": 1.50, "rss": 1.10}
MAX_FAILED = 0.01
#: Open-loop load: requests beyond this many in flight are counted as not sent.
MAX_IN_FLIGHT = 512
#: Closed-loop joins in flight while the capacity is measured.
CALIBRATION_WORKERS = 32
TICKS_PER_SECOND = 100
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# setup -----------------------------------------------------------------------------------------


@dataclass
class Organisation:
    key: str
    tutor_id: str
    observer_id: str
    dsl_id: str


async def setup(settings: Any, policy: Path) -> Organisation:
    from gateway.app import build_runtime
    from gateway.domain.models import StaffRole, Vetting

    runtime = await build_runtime(settings)
    try:
        services = runtime.services
        org, key = await services.organisations.create("Soak Club", str(policy))
        today = services.clock.now().date()
        vetting = Vetting("dbs_enhanced", today - timedelta(days=200), today + timedelta(days=900))
        staff = {}
        for name, email, role in (
            ("Priya Shah", "priya.shah@example.org", StaffRole.TUTOR),
            ("Omar Reid", "omar.reid@example.org", StaffRole.OBSERVER),
            ("Dana Lee", "dana.lee@example.org", StaffRole.DSL),
        ):
            person = await services.registry.add_staff(org, "bench", name, email, [role], vetting)
            staff[role] = person.id
        return Organisation(
            key, staff[StaffRole.TUTOR], staff[StaffRole.OBSERVER], staff[StaffRole.DSL]
        )
    finally:
        await runtime.close()


# measuring -------------------------------------------------------------------------------------


@dataclass
class Window:
    """What happened in one minute."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    not_sent: int = 0
    created: int = 0
    ended: int = 0
    peak_waiting: int = 0  # most requests (all kinds) sent and not yet answered at once

    def add(self, kind: str, ms: float, status: int, code: str | None) -> None:
        self.latencies.setdefault(kind, []).append(ms)
        if not 200 <= status < 300:
            self.failures[f"{kind} {status} {code or ''}".strip()] += 1

    def requests(self) -> int:
        return sum(len(values) for values in self.latencies.values())


@dataclass
class Sample:
    """The gateway process and the machine, read at a minute boundary."""

    at: float
    cpu_seconds: float
    rss_mib: float
    machine_busy: float
    machine_total: float
    load: float
    created_total: int
    generator_cpu_seconds: float  # this process: the load generator


def process_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds, user + system, all threads; RSS in MiB) of a process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return cpu, rss_kib / 1024


def machine_sample() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# the load --------------------------------------------------------------------------------------


@dataclass
class Seat:
    token: str
    cookie: str


class Soak:
    def __init__(self, base: str, org: Organisation, args: argparse.Namespace) -> None:
        self.base = base
        self.org = org
        self.args = args
        self.live: dict[str, list[Seat]] = {}
        self.windows: list[Window] = [Window() for _ in range(args.minutes)]
        self.warmup = Window()
        self.measure_from = 0.0
        self.stop_at = 0.0
        self.in_flight = 0
        self.waiting = 0  # requests of every kind sent and not yet answered
        self.created_total = 0
        self.ended_by_host = False
        self.http: Any = None
        self.capacity: float | None = None  # joins/s measured at the start (closed loop)
        self.rate = 0.0  # joins/s offered (open loop)
        self.started = asyncio.Event()  # set once measure_from is known

    def window(self) -> Window | None:
        now = time.monotonic()
        if now < self.measure_from:
            return self.warmup
        index = int((now - self.measure_from) // 60)
        return self.windows[index] if index < len(self.windows) else None

    async def call(
        self,
        kind: str,
        path: str,
        body: dict[str, Any],
        *,
        admin: bool = False,
        cookie: str | None = None,
    ) -> tuple[int, Any, Any]:
        import aiohttp

        headers = {"Content-Type": "application/json"}
        if admin:
            headers["Authorization"] = f"Bearer {self.org.key}"
        if cookie:
            headers["Cookie"] = cookie
        method = "GET" if kind == "roster" else "POST"
        started = time.perf_counter()
        status, data, answer_headers = 0, None, None
        self.waiting += 1
        if (current := self.window()) is not None:
            current.peak_waiting = max(current.peak_waiting, self.waiting)
        try:
            async with self.http.request(
                method,
                self.base + path,
                json=None if method == "GET" else body,
                headers=headers,
            ) as answer:
                status, answer_headers = answer.status, answer.headers
                with contextlib.suppress(aiohttp.ContentTypeError, ValueError):
                    data = await answer.json()
        except (TimeoutError, aiohttp.ClientError) as exc:
            data = {"error": {"code": type(exc).__name__}}
        finally:
            self.waiting -= 1
        elapsed = (time.perf_counter() - started) * 1000
        window = self.window()
        if window is not None:
            code = data.get("error", {}).get("code") if isinstance(data, dict) else None
            window.add(kind, elapsed, status, code)
        return status, data, answer_headers

    async def bind(self, token: str) -> Seat | None:
        """The first join of an invite: it binds the invite to this "device"."""
        status, _data, headers = await self.call("join", "/v1/join", {"token": token})
        if status != 200 or headers is None:
            return None
        cookies = [value.split(";", 1)[0] for value in headers.getall("Set-Cookie", [])]
        return Seat(token, "; ".join(cookies))

    async def session_life(self) -> None:
        org = self.org
        now = datetime.now(UTC)
        status, created, _ = await self.call(
            "create",
            "/v1/sessions",
            {
                "kind": "group",
                "title": "Soak session",
                "host_staff_id": org.tutor_id,
                "starts_at": (now - timedelta(minutes=5)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
                "out_of_hours_approved_by": org.dsl_id,
            },
            admin=True,
        )
        if status != 201:
            return
        session_id = created["id"]
        self.created_total += 1
        if (window := self.window()) is not None:
            window.created += 1
        try:
            status, roster, _ = await self.call(
                "roster", f"/v1/sessions/{session_id}/participants", {}, admin=True
            )
            if status != 200:
                return
            host_id = roster["items"][0]["id"]
            status, enrolled, _ = await self.call(
                "enrol",
                f"/v1/sessions/{session_id}/participants",
                {"person_kind": "staff", "person_id": org.observer_id, "role": "observer"},
                admin=True,
            )
            if status != 201:
                return
            seats: list[Seat] = []
            for participant in (host_id, enrolled["id"]):
                status, invite, _ = await self.call(
                    "invite",
                    f"/v1/sessions/{session_id}/participants/{participant}/invite",
                    {},
                    admin=True,
                )
                if status != 201:
                    return
                seat = await self.bind(invite["token"])
                if seat is None:
                    return
                seats.append(seat)
            self.live[session_id] = seats
            await asyncio.sleep(self.args.session_seconds)
        finally:
            seats = self.live.pop(session_id, [])
            await self.end(session_id, seats)

    async def end(self, session_id: str, seats: list[Seat]) -> None:
        if len(seats) > 1:
            observer = seats[1]
            await self.call("leave", "/v1/leave", {"token": observer.token}, cookie=observer.cookie)
        self.ended_by_host = not self.ended_by_host
        if self.ended_by_host and seats:
            host = seats[0]
            status, _, _ = await self.call(
                "end (host)", "/v1/live/end", {"token": host.token}, cookie=host.cookie
            )
        else:
            status, _, _ = await self.call(
                "end (admin)", f"/v1/sessions/{session_id}/end", {}, admin=True
            )
        if 200 <= status < 300 and (window := self.window()) is not None:
            window.ended += 1

    async def one_join(self, seat: Seat) -> int:
        self.in_flight += 1
        try:
            status, _, _ = await self.call(
                "join", "/v1/join", {"token": seat.token}, cookie=seat.cookie
            )
            return status
        finally:
            self.in_flight -= 1

    async def calibrate(self, spawn: Any) -> None:
        """Measure the gateway's join capacity under the session load of this run, then set
        the offered join rate to `--headroom` of it.

        A soak at saturation measures queueing, not growth: a p99 that grows by half when the
        gateway is at 97% of a core says nothing about the gateway. So for `calibrate_seconds`
        the sessions start at their usual rate and CALIBRATION_WORKERS joins are always in
        flight (closed loop); the joins answered in the second half of that time are the
        capacity."""
        tick = 1.0 / TICKS_PER_SECOND
        start = time.monotonic()
        # The joins start once sessions are live (half of the steady number, or after 60 s),
        # and are counted in the second half of calibrate_seconds from then.
        steady = self.args.sessions_per_second * self.args.session_seconds
        end = counting_from = float("inf")
        answered = 0

        async def worker() -> None:
            nonlocal answered
            while time.monotonic() < end:
                seats = [seat for group in self.live.values() for seat in group]
                if not seats:
                    await asyncio.sleep(tick)
                    continue
                status = await self.one_join(random.choice(seats))
                if time.monotonic() >= counting_from and status == 200:
                    answered += 1

        workers: list[asyncio.Future[None]] = []
        sessions_owed = 0.0
        next_tick = start
        while time.monotonic() < end:
            now = time.monotonic()
            if not workers and (len(self.live) >= steady / 2 or now > start + 60):
                end = now + self.args.calibrate_seconds
                counting_from = now + self.args.calibrate_seconds / 2
                workers = [asyncio.ensure_future(worker()) for _ in range(CALIBRATION_WORKERS)]
            sessions_owed += self.args.sessions_per_second * tick
            while sessions_owed >= 1:
                sessions_owed -= 1
                spawn(self.session_life())
            next_tick += tick
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        await asyncio.gather(*workers)
        self.capacity = answered / (end - counting_from)
        self.rate = max(1.0, self.args.headroom * self.capacity)
        print(
            f"soak: capacity {self.capacity:.0f} joins/s beside {self.args.sessions_per_second:g} "
            f"sessions/s; offering {self.rate:.0f} joins/s ({self.args.headroom:.0%})",
            flush=True,
        )

    async def run(self) -> None:
        import aiohttp

        tasks: set[asyncio.Task[None]] = set()

        def spawn(coroutine: Any) -> None:
            task = asyncio.ensure_future(coroutine)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
        ) as http:
            self.http = http
            if self.args.joins_per_second is None:
                await self.calibrate(spawn)
            else:
                self.rate = self.args.joins_per_second
            start = time.monotonic()
            self.measure_from = start + self.args.warmup_seconds
            self.stop_at = self.measure_from + 60 * self.args.minutes
            self.started.set()
            tick = 1.0 / TICKS_PER_SECOND
            joins_owed = sessions_owed = 0.0
            next_tick = start
            while time.monotonic() < self.stop_at:
                sessions_owed += self.args.sessions_per_second * tick
                while sessions_owed >= 1:
                    sessions_owed -= 1
                    spawn(self.session_life())
                joins_owed += self.rate * tick
                seats = [seat for group in self.live.values() for seat in group]
                while joins_owed >= 1:
                    joins_owed -= 1
                    if not seats:
                        continue
                    if self.in_flight >= MAX_IN_FLIGHT:
                        if (window := self.window()) is not None:
                            window.not_sent += 1
                        continue
                    spawn(self.one_join(random.choice(seats)))
                next_tick += tick
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            # Let the sessions alive now end as usual (not counted: past the last minute).
            if tasks:
                await asyncio.wait(tasks, timeout=self.args.session_seconds + 30)


async def sample_every_minute(soak: Soak, pid: int, samples: list[Sample]) -> None:
    """One sample when measuring starts, then one at each minute boundary."""
    await soak.started.wait()
    for minute in range(soak.args.minutes + 1):
        target = soak.measure_from + 60 * minute
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        try:
            cpu, rss = process_sample(pid)
        except (FileNotFoundError, ProcessLookupError):
            soak.stop_at = 0.0  # the load stops at its next tick
            raise RuntimeError("the gateway process exited during the soak (see its log)") from None
        busy, total = machine_sample()
        samples.append(
            Sample(
                time.monotonic(),
                cpu,
                rss,
                busy,
                total,
                os.getloadavg()[0],
                soak.created_total,
                time.process_time(),
            )
        )


# report ----------------------------------------------------------------------------------------


@dataclass
class Minute:
    requests: int
    joins: int
    failed: int
    not_sent: int
    created: int
    ended: int
    created_total: int
    peak_waiting: int
    join_p50: float
    join_p99: float
    all_p99: float
    cpu_share: float  # of one core
    cpu_ms_per_request: float
    rss_mib: float
    machine_busy: float  # of all cores
    generator_share: float  # of one core
    load: float


def minutes(soak: Soak, samples: list[Sample]) -> list[Minute]:
    rows = []
    for index, window in enumerate(soak.windows):
        before, after = samples[index], samples[index + 1]
        seconds = after.at - before.at
        cpu = after.cpu_seconds - before.cpu_seconds
        requests = window.requests()
        all_latencies = [ms for values in window.latencies.values() for ms in values]
        joins = window.latencies.get("join", [])
        total = after.machine_total - before.machine_total
        rows.append(
            Minute(
                requests=requests,
                joins=len(joins),
                failed=sum(window.failures.values()),
                not_sent=window.not_sent,
                created=window.created,
                ended=window.ended,
                created_total=after.created_total,
                peak_waiting=window.peak_waiting,
                join_p50=percentile(joins, 0.50),
                join_p99=percentile(joins, 0.99),
                all_p99=percentile(all_latencies, 0.99),
                cpu_share=cpu / seconds if seconds else 0.0,
                cpu_ms_per_request=1000 * cpu / requests if requests else 0.0,
                rss_mib=after.rss_mib,
                machine_busy=(after.machine_busy - before.machine_busy) / total if total else 0.0,
                generator_share=(after.generator_cpu_seconds - before.generator_cpu_seconds)
                / seconds
                if seconds
                else 0.0,
                load=after.load,
            )
        )
    return rows


def report(soak: Soak, rows: list[Minute], load_before: float, store: str) -> tuple[str, bool]:
    args = soak.args
    header = (
        "| minute | sessions created (all so far) | ended | joins/s | requests | failed "
        "| join p50 ms | join p99 ms | all p99 ms | gateway CPU (% of a core) "
        "| CPU ms per request | gateway RSS MiB | most requests waiting at once "
        "| load generator CPU (% of a core) "
        "| machine busy (% of all cores) | load |"
    )
    lines = [header, "|" + "---:|" * 16]
    for number, row in enumerate(rows, 1):
        lines.append(
            f"| {number} | {row.created} ({row.created_total:,}) | {row.ended} "
            f"| {row.joins / 60:.0f} | {row.requests:,} | {row.failed} | {row.join_p50:.1f} "
            f"| {row.join_p99:.1f} | {row.all_p99:.1f} | {100 * row.cpu_share:.0f} "
            f"| {row.cpu_ms_per_request:.2f} | {row.rss_mib:.1f} | {row.peak_waiting:,} "
            f"| {100 * row.generator_share:.0f} "
            f"| {100 * row.machine_busy:.0f} "
            f"| {row.load:.1f} |"
        )
    table = "\n".join(lines)
    first, last = rows[0], rows[-1]

    def ratio(a: float, b: float) -> float:
        return b / a if a else float("inf")

    ratios = {
        "cpu_per_request": ratio(first.cpu_ms_per_request, last.cpu_ms_per_request),
        "join_p99": ratio(first.join_p99, last.join_p99),
        "rss": ratio(first.rss_mib, last.rss_mib),
    }
    requests = sum(row.requests for row in rows)
    failed = sum(row.failed for row in rows)
    failed_share = failed / requests if requests else 1.0
    flat = all(ratios[name] <= FLAT[name] for name in FLAT) and failed_share < MAX_FAILED
    if len(rows) < 2:
        notes_first = ["one minute only: its last minute is its first, nothing to compare"]
    else:
        notes_first = []
    sessions_between = last.created_total - first.created_total
    per_thousand = ""
    if sessions_between > 0 and len(rows) > 1:
        scale = 1000 / sessions_between
        per_thousand = (
            f" Per 1,000 sessions created between the first and last minute: "
            f"{100 * (last.cpu_share - first.cpu_share) * scale:+.1f} points of a core, "
            f"{(last.join_p99 - first.join_p99) * scale:+.1f} ms of join p99, "
            f"{(last.rss_mib - first.rss_mib) * scale:+.1f} MiB of RSS."
        )
    failures: Counter[str] = Counter()
    for window in soak.windows:
        failures.update(window.failures)
    not_sent = sum(row.not_sent for row in rows)
    target_joins = round(soak.rate * 60 * len(rows))
    joins = sum(row.joins for row in rows)
    notes = notes_first
    if joins < 0.95 * target_joins:
        notes.append(
            f"only {joins:,} of the {target_joins:,} joins asked for were answered "
            f"({not_sent:,} not sent: {MAX_IN_FLIGHT} already in flight)"
        )
    busy_cores = (os.cpu_count() or 1) * 0.5
    if load_before > busy_cores:
        notes.append(
            f"the machine was loaded before the run (load average {load_before:.1f} on "
            f"{os.cpu_count()} CPUs): the load generator, PostgreSQL, Redis and other work "
            "share the cores with the gateway"
        )
    verdict = "FLAT" if flat else "NOT FLAT"
    if soak.capacity is None:
        offered = f"{soak.rate:g} joins a second"
    else:
        offered = (
            f"{soak.rate:.0f} joins a second ({args.headroom:.0%} of the {soak.capacity:.0f} "
            f"joins/s the gateway answered at the start of this run, {CALIBRATION_WORKERS} "
            f"joins in flight, beside the same session load: an offered rate with headroom, "
            "so p99 measures the gateway and not a queue)"
        )
    summary = (
        f"last/first minute: CPU per request x{ratios['cpu_per_request']:.2f} (flat <= "
        f"{FLAT['cpu_per_request']:.2f}), join p99 x{ratios['join_p99']:.2f} (<= "
        f"{FLAT['join_p99']:.2f}), RSS x{ratios['rss']:.2f} (<= {FLAT['rss']:.2f}); failed "
        f"answers {failed:,} of {requests:,} ({100 * failed_share:.2f}%, < "
        f"{100 * MAX_FAILED:.0f}%); result: **{verdict}**.{per_thousand}"
    )
    if failures:
        summary += " Failed answers: " + ", ".join(
            f"{what}: {count:,}" for what, count in failures.most_common(8)
        )
    if notes:
        summary += "\n\nNote: " + "; ".join(notes) + "."
    section = (
        f"`scripts/bench_soak.py --minutes {args.minutes}` ({datetime.now(UTC):%Y-%m-%d}): one "
        f"gateway process on {store}; {args.sessions_per_second:g} sessions a second created "
        f"(each with a host and an observer, both joining), each ended after "
        f"{args.session_seconds:g} s (half by the admin API, half by its host) after its "
        f"observer leaves; {offered} over the live sessions' invites (open loop); "
        f"{args.warmup_seconds:g} s of warm-up not counted. The load "
        f"generator runs on the same {os.cpu_count()} CPUs. Load average before the run: "
        f"{load_before:.1f}.\n\n{table}\n\n{summary}\n"
    )
    return section, flat


# main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=int, default=int(os.environ.get("BENCH_SOAK_MINUTES", 10))
    )
    parser.add_argument("--sessions-per-second", type=float, default=4.0)
    parser.add_argument(
        "--joins-per-second",
        type=float,
        default=None,
        help="offered join rate (default: --headroom of the capacity measured at the start)",
    )
    parser.add_argument(
        "--headroom",
        type=float,
        default=0.5,
        help="share of the measured join capacity offered (default 0.5)",
    )
    parser.add_argument("--calibrate-seconds", type=float, default=20.0)
    parser.add_argument("--session-seconds", type=float, default=10.0)
    parser.add_argument("--warmup-seconds", type=float, default=30.0)
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument(
        "--keep", type=Path, help="keep the policy, keys and logs in this directory"
    )
    args = parser.parse_args()
    if args.minutes < 1:
        parser.error("--minutes must be at least 1")

    from gateway.app import configure_logging
    from gateway.settings import Settings

    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp_name:
        tmp = args.keep or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        policy = tmp / "policy.toml"
        bench_join.write_policy(policy)
        base_env = {
            **os.environ,
            "GATEWAY_KEYS_DIR": str(tmp / "keys"),
            "GATEWAY_POLICY": str(policy),
            "GATEWAY_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            # Every simulated person connects from 127.0.0.1: allow the load generator's pool
            # (the per-source cap is for one address's abuse, not for a proxy of many people).
            "GATEWAY_CONNECTIONS_PER_SOURCE": str(MAX_IN_FLIGHT + 64),
        }
        with bench_join.postgres_redis_store(tmp, base_env) as store:
            configure_logging("WARNING")
            org = asyncio.run(setup(Settings.from_env(store.env), policy))
            port = bench_join.free_port()
            argv = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)]
            with bench_join.server(argv, store.env, port, tmp / "gateway.log") as process:
                soak = Soak(f"http://{bench_join.HOST}:{port}", org, args)
                samples: list[Sample] = []

                async def go() -> None:
                    sampler = asyncio.ensure_future(sample_every_minute(soak, process.pid, samples))
                    await soak.run()
                    await sampler

                print(
                    f"soak: {args.minutes} min (+{args.warmup_seconds:g} s warm-up) on "
                    f"{store.name}, gateway pid {process.pid}; load average {load_before:.1f}",
                    flush=True,
                )
                asyncio.run(go())
            store_words = store.describe

    rows = minutes(soak, samples)
    section, flat = report(soak, rows, load_before, store_words)
    print()
    print(section)
    print(
        f"(run took {time.monotonic() - started:.0f} s; load average after "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    if not args.no_docs:
        bench_join.update_docs({"soak": section, "machine": bench_join.machine()})
        print(f"wrote {bench_join.DOCS.relative_to(ROOT)}")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
