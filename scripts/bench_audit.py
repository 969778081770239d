"""Benchmark: verify_chain over a large SQLite audit log must check >= 1,000,000 entries/s;
and audited commits on PostgreSQL must scale with gateway processes.

1. Verify. The database is filled directly (stdlib sqlite3, rows with correctly computed entry
   MACs and segment seals from gateway.domain.audit), so generation is fast and not counted;
   only the verify_chain call is timed.
2. Commits (`--commits`, or BENCH_AUDIT_COMMITS=1). A throwaway PostgreSQL cluster
   (tests/plugins/servers.py); 1, 2 and 3 writer processes, each an `AuditedWriter` (the
   gateway's, group commit included) with WRITERS_PER_PROCESS callers recording one audit
   event at a time, for `--seconds` each; the entries committed per second, all processes
   together, and the ratio to one process. Then `verify_chain` must find every chain intact.
   `--code DIR` runs the writer processes from another checkout of the gateway (e.g. the tree
   before chains, `git archive`d), to compare.

    /tmp/venv/bin/python scripts/bench_audit.py [--entries N] [--keep PATH]
    /tmp/venv/bin/python scripts/bench_audit.py --commits [--seconds 8] [--code DIR]

`scripts/bench` passes no flags: BENCH_AUDIT_ENTRIES sets the size there (default 1,000,000).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

# BENCH_AUDIT_CODE: the writer processes of `--commits --code DIR` import that tree's gateway.
sys.path.insert(
    0, os.environ.get("BENCH_AUDIT_CODE") or str(Path(__file__).resolve().parent.parent)
)

from sqlalchemy.ext.asyncio import create_async_engine

from gateway.adapters.sql.audit_reader import verify_chain
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.migrate import migrate
from gateway.domain.audit import (
    GENESIS,
    SEGMENT,
    AuditEvent,
    encode_entry,
    entry_mac,
    seal_mac,
)

TARGET = 1_000_000  # entries per second
INSERT_ROWS = (
    "INSERT INTO audit_log (seq, at, org_id, kind, session_id, person_id, entry, mac, chain, link)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
WRITERS_PER_PROCESS = 16  # callers per process, each recording one entry at a time
PROCESSES = (1, 2, 3)
KEY = b"bench-audit-key-0123456789abcdef"
KINDS = (
    "admission.decided",
    "recording.blocked",
    "supervision.joined",
    "consent.recorded",
    "session.created",
)


def _events(n: int) -> list[AuditEvent]:
    """A small pool of realistic events (~200 bytes encoded), reused round-robin."""
    orgs = [uuid.uuid4().hex for _ in range(4)]
    pool = []
    for i in range(n):
        pool.append(
            AuditEvent(
                kind=KINDS[i % len(KINDS)],
                actor=f"staff:{uuid.uuid4().hex}",
                org_id=orgs[i % len(orgs)],
                session_id=uuid.uuid4().hex,
                person_id=uuid.uuid4().hex,
                data={"decision": "admit", "reasons": ["consent_ok", "hours_ok"], "n": i},
            )
        )
    return pool


def fill(path: Path, entries: int) -> None:
    """Create the schema (migrations) and append `entries` chained, sealed entries."""

    async def schema() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        await migrate(engine)
        await engine.dispose()

    asyncio.run(schema())
    pool = _events(997)
    at = 1_700_000_000_000_000
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    previous = GENESIS
    seal = GENESIS
    batch: list[
        tuple[int, int, str | None, str, str | None, str | None, bytes, bytes, int, int]
    ] = []
    segment_entries: list[bytes] = []
    for seq in range(1, entries + 1):
        event = pool[seq % len(pool)]
        entry = encode_entry(seq, at + seq, event)
        previous = entry_mac(KEY, previous, entry)
        batch.append(
            (
                seq,
                at + seq,
                event.org_id,
                event.kind,
                event.session_id,
                event.person_id,
                entry,
                previous,
                1,
                seq,
            )
        )  # fmt: skip  (chain 1, link = seq: one writer)
        segment_entries.append(entry)
        if len(segment_entries) == SEGMENT:
            seal = seal_mac(KEY, seal, segment_entries)
            db.execute(
                "INSERT INTO audit_seals (segment, mac) VALUES (?, ?)", (seq // SEGMENT, seal)
            )
            segment_entries = []
        if len(batch) >= 50_000:
            db.executemany(INSERT_ROWS, batch)
            batch = []
    db.executemany(INSERT_ROWS, batch)
    db.execute("UPDATE audit_head SET seq = ?, mac = ? WHERE id = 1", (entries, previous))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


async def measure(path: Path) -> tuple[int, float, float, bool]:
    """(entries checked, wall seconds, CPU seconds of all threads, intact)."""
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        started, cpu = time.perf_counter(), time.process_time()
        report = await verify_chain(database, KEY)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await database.dispose()
    return report.checked, elapsed, cpu, report.intact


# commits on PostgreSQL -------------------------------------------------------------------------


def commit_worker(url: str, seconds: float, start_at: float) -> None:
    """One writer process: WRITERS_PER_PROCESS callers record entries until `seconds` after
    `start_at` (wall clock, shared by the processes); prints the entries committed."""
    from gateway.adapters.sql.writer import AuditedWriter
    from gateway.clock import SystemClock

    async def run() -> int:
        database = Database(url, timeout_seconds=10.0)
        writer = AuditedWriter(database, KEY, SystemClock())
        await writer.start()
        events = _events(64)
        committed = 0
        await asyncio.sleep(max(0.0, start_at - time.time()))
        stop = start_at + seconds

        async def caller(number: int) -> None:
            nonlocal committed
            i = number
            while time.time() < stop:
                await writer.record(events[i % len(events)])
                committed += 1
                i += WRITERS_PER_PROCESS

        try:
            await asyncio.gather(*(caller(n) for n in range(WRITERS_PER_PROCESS)))
        finally:
            await writer.stop()
            await database.dispose()
        return committed

    print(asyncio.run(run()), flush=True)


def commits(seconds: float, code: Path | None) -> int:
    """Entries committed per second by 1, 2 and 3 writer processes on one PostgreSQL."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from tests.plugins.servers import PostgresServer

    postgres = PostgresServer()
    rows = []
    intact_all = True
    load = os.getloadavg()[0]
    try:
        postgres.start()
        for count in PROCESSES:
            dbname = postgres.new_database_name(f"audit{count}")
            postgres.create_database(dbname)
            url = postgres.url(dbname)
            workers_root = code or root
            env = {
                **os.environ,
                "PYTHONPATH": str(workers_root),
                "BENCH_AUDIT_CODE": str(workers_root),
            }
            subprocess.run(
                [sys.executable, "-m", "gateway.cli", "migrate"],
                cwd=workers_root,
                env={**env, "GATEWAY_DATABASE_URL": url},
                check=True,
                capture_output=True,
            )
            start_at = time.time() + 5.0 + 5.0 * count  # every process started by then
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--commit-worker",
                        url,
                        str(seconds),
                        str(start_at),
                    ],
                    cwd=workers_root,
                    env=env,
                    stdout=subprocess.PIPE,
                )
                for _ in range(count)
            ]
            done = [int(proc.communicate(timeout=seconds + 120)[0].strip() or 0) for proc in procs]
            chains = postgres.psql("SELECT count(*) FROM audit_head", dbname).strip()

            async def check(url: str = url) -> bool:
                database = Database(url)
                try:
                    return (await verify_chain(database, KEY)).intact
                finally:
                    await database.dispose()

            intact = asyncio.run(check()) if code is None else None  # another schema
            intact_all = intact_all and intact is not False
            rows.append((count, sum(done) / seconds, chains, intact))
    finally:
        postgres.stop()
    base = rows[0][1] or 1.0
    print()
    print(
        f"| writer processes | entries committed/s (all) | vs one process | chains "
        f"| verify |  ({WRITERS_PER_PROCESS} callers per process, {seconds:g} s each)"
    )
    print("|---:|---:|---:|---:|:---|")
    for count, rate, chains, intact in rows:
        print(
            f"| {count} | {rate:,.0f} | {rate / base:.2f} | {chains} "
            f"| {'-' if intact is None else 'intact' if intact else 'NOT INTACT'} |"
        )
    print(
        f"\n(code: {code or 'this tree'}; load average before the run: {load:.1f}, after: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    return 0 if intact_all else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--entries", type=int, default=int(os.environ.get("BENCH_AUDIT_ENTRIES", 1_000_000))
    )
    parser.add_argument("--keep", type=Path, help="database file to (re)use instead of a temp one")
    parser.add_argument(
        "--commits",
        action="store_true",
        default=os.environ.get("BENCH_AUDIT_COMMITS") == "1",
        help="measure audited commits with 1, 2 and 3 processes on PostgreSQL instead",
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--code", type=Path, help="run the writer processes from this checkout")
    parser.add_argument("--commit-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.commit_worker:
        url, seconds, start_at = args.commit_worker
        commit_worker(url, float(seconds), float(start_at))
        return 0
    if args.commits:
        return commits(args.seconds, args.code)
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        path = args.keep or Path(tmp) / "audit.db"
        if not path.exists():
            started = time.perf_counter()
            fill(path, args.entries)
            print(f"generated {args.entries:,} entries in {time.perf_counter() - started:.1f} s")
        load = os.getloadavg()[0]
        checked, elapsed, cpu, intact = asyncio.run(measure(path))
        size = path.stat().st_size
    rate = checked / elapsed if elapsed else float("inf")
    ok = intact and checked == args.entries and rate >= TARGET
    print()
    print("| entries | database | verify time | CPU time | entries/s | target | result |")
    print("|---:|---:|---:|---:|---:|---:|:---|")
    print(
        f"| {checked:,} | {size / 1e6:.0f} MB | {elapsed:.3f} s | {cpu:.3f} s | {rate:,.0f} "
        f"| {TARGET:,} "
        f"| {'PASS' if ok else 'FAIL'}{'' if intact else ' (chain not intact!)'} |"
    )
    print(
        f"\n(load average before the run: {load:.2f} on {os.cpu_count()} cores;"
        " CPU time is summed over threads)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
