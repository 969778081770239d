"""Benchmark: verify_chain over a large SQLite audit log must check >= 1,000,000 entries/s.

The database is filled directly (stdlib sqlite3, rows with correctly computed entry MACs and
segment seals from gateway.domain.audit), so generation is fast and not counted; only the
verify_chain call is timed.

    /tmp/venv/bin/python scripts/bench_audit.py [--entries N] [--keep PATH]

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
    batch: list[tuple[int, int, str | None, str, str | None, str | None, bytes, bytes]] = []
    segment_entries: list[bytes] = []
    for seq in range(1, entries + 1):
        event = pool[seq % len(pool)]
        entry = encode_entry(seq, at + seq, event)
        previous = entry_mac(KEY, previous, entry)
        batch.append(
            (seq, at + seq, event.org_id, event.kind, event.session_id, event.person_id, entry,
             previous)
        )  # fmt: skip
        segment_entries.append(entry)
        if len(segment_entries) == SEGMENT:
            seal = seal_mac(KEY, seal, segment_entries)
            db.execute(
                "INSERT INTO audit_seals (segment, mac) VALUES (?, ?)", (seq // SEGMENT, seal)
            )
            segment_entries = []
        if len(batch) >= 50_000:
            db.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
            batch = []
    db.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--entries", type=int, default=int(os.environ.get("BENCH_AUDIT_ENTRIES", 1_000_000))
    )
    parser.add_argument("--keep", type=Path, help="database file to (re)use instead of a temp one")
    args = parser.parse_args()
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
