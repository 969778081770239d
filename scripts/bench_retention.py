"""Benchmark: retention over a large catalogue (issue 9), with a same-run baseline.

A catalogue of BENCH_RETENTION_RECORDINGS recordings (default 1,000,000; each with a participant
row and a wrapped key) of which BENCH_RETENTION_DUE (default 100,000) are past their retention
date, each due one with a small real vault file (a header and one sealed chunk). Then, on two
identical copies of that catalogue:

  baseline  plain deletes of the same rows and files, in batches of the job's size: select the
            due ids through the same index, delete their key rows, unlink their files, mark the
            rows destroyed. No audit entries, no proof.
  job       `RetentionService.run_once()`, the gateway's own job: key destroyed (overwritten then
            deleted) and "recording.key_destroyed" audited, file deleted, destruction record and
            "recording.destroyed" audited, all through the audited writer (hash-chained log).

Reported: each one's time and rate (recordings/s), and job/baseline. On SQLite, and on a
throwaway PostgreSQL cluster (fsync off, loopback; `--on postgres`, or both with
`--on sqlite,postgres`).

    scripts/bench retention                     # SQLite, writes docs/benchmarks.md
    scripts/bench retention --on sqlite,postgres
    BENCH_RETENTION_RECORDINGS=100000 BENCH_RETENTION_DUE=10000 scripts/bench retention --no-docs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, insert, select, text, update  # noqa: E402

from gateway.adapters.recording_vault import (  # noqa: E402
    LocalRecordingStorage,
    RecordingVault,
    RecordingWriter,
)
from gateway.adapters.sql.engine import Database  # noqa: E402
from gateway.adapters.sql.migrate import migrate  # noqa: E402
from gateway.adapters.sql.recordings import SqlRecordingCatalogue  # noqa: E402
from gateway.adapters.sql.schema import (  # noqa: E402
    audit_log,
    organisations,
    recording_destructions,
    recording_keys,
    recording_participants,
    recordings,
)
from gateway.adapters.sql.store import SqlStore  # noqa: E402
from gateway.clock import FrozenClock, to_us  # noqa: E402
from gateway.domain.recording_crypto import new_data_key, wrap_data_key  # noqa: E402
from gateway.services.retention import RetentionService  # noqa: E402

TOTAL = int(os.environ.get("BENCH_RETENTION_RECORDINGS", "1000000"))
DUE = int(os.environ.get("BENCH_RETENTION_DUE", "100000"))
BATCH = int(os.environ.get("BENCH_RETENTION_BATCH", "500"))
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ORG = "0" * 32
SEED_ROWS = 10_000
DOCS = ROOT / "docs" / "benchmarks.md"


@dataclass
class Result:
    store: str
    seeded: float
    baseline: float
    job: float
    destroyed: int
    audit_entries: int


def recording_id(n: int) -> str:
    return f"{n:032x}"


def seed_rows(conn: Any, wrapped: bytes) -> None:
    """The catalogue: the due ones first (ids 0..DUE-1), retention passed 10 days ago."""
    conn.execute(insert(organisations).values(id=ORG, name="Bench", created_at=0))
    for start in range(0, TOTAL, SEED_ROWS):
        rows, people, keys = [], [], []
        for n in range(start, min(TOTAL, start + SEED_ROWS)):
            rid = recording_id(n)
            begun = NOW - timedelta(days=40 if n < DUE else 1, seconds=n % 86_400)
            rows.append(
                {
                    "id": rid,
                    "org_id": ORG,
                    "session_id": f"{n // 4:032x}",
                    "purpose": "lesson_review",
                    "consent_hash": "0" * 64,
                    "consent_record_ids": "[]",
                    "state": "complete",
                    "started_at": to_us(begun),
                    "ended_at": to_us(begun + timedelta(minutes=45)),
                    "size_bytes": 2048,
                    "chunks": 1,
                    "retain_until": to_us(begun + timedelta(days=30)),
                    "held": 0,
                    "destruction_started": 0,
                }
            )
            people.append(
                {
                    "recording_id": rid,
                    "person_id": f"{n % 50_000:032x}",
                    "org_id": ORG,
                    "person_kind": "child",
                }
            )
            # The same wrapped bytes everywhere: the job never unwraps, and wrapping a million
            # keys would only time the seeding.
            keys.append({"recording_id": rid, "wrapped_key": wrapped})
        conn.execute(insert(recordings), rows)
        conn.execute(insert(recording_participants), people)
        conn.execute(insert(recording_keys), keys)


def seed_files(directory: Path) -> LocalRecordingStorage:
    """A small real vault file for each due recording (header, one sealed 2 KiB chunk)."""
    storage = LocalRecordingStorage(directory)
    body = os.urandom(2048)
    first = RecordingWriter(storage, recording_id(0), new_data_key())
    first.append(body)
    first.seal()
    template = storage.path(recording_id(0)).read_bytes()
    for n in range(1, DUE):
        # The bytes of one sealed file under each id: deletion does not read them, and sealing
        # 100,000 files would time the seeding, not the retention.
        sink = storage.create(recording_id(n))
        sink.write(template)
        sink.close()
    return storage


def delete_files(storage: LocalRecordingStorage, ids: list[str]) -> None:
    for rid in ids:
        storage.delete(rid)


async def baseline(database: Database, storage: LocalRecordingStorage) -> int:
    """Plain deletes of the same rows and files, batch by batch, along the same index as the
    job's retention query (ix_recordings_due)."""
    done = 0
    now_us = to_us(NOW)
    while True:

        def one(conn: Any) -> list[str]:
            ids = list(
                conn.execute(
                    select(recordings.c.id)
                    .where(
                        recordings.c.state == "complete",
                        recordings.c.retain_until <= now_us,
                        recordings.c.held == 0,
                    )
                    .order_by(recordings.c.retain_until)
                    .limit(BATCH)
                ).scalars()
            )
            if ids:
                conn.execute(delete(recording_keys).where(recording_keys.c.recording_id.in_(ids)))
                conn.execute(
                    update(recordings).where(recordings.c.id.in_(ids)).values(state="destroyed")
                )
            return ids

        ids = await database.write(one)
        if not ids:
            return done
        await asyncio.to_thread(delete_files, storage, ids)
        done += len(ids)


async def job(database: Database, storage: LocalRecordingStorage) -> tuple[int, int]:
    clock = FrozenClock(NOW)
    store = SqlStore(database, os.urandom(32), clock)
    await store.start()
    try:
        service = RetentionService(
            SqlRecordingCatalogue(store.writer, database),
            RecordingVault(storage),
            clock,
            batch=BATCH,
        )
        destroyed = await service.run_once()

        def counts(conn: Any) -> tuple[int, int]:
            proofs = conn.execute(select(text("count(*)")).select_from(recording_destructions))
            entries = conn.execute(select(text("count(*)")).select_from(audit_log))
            return int(proofs.scalar_one()), int(entries.scalar_one())

        proofs, entries = await database.read(counts)
        assert proofs == destroyed == DUE, (proofs, destroyed)
        return destroyed, entries
    finally:
        await store.stop()


def copy_sqlite(tmp: Path) -> None:
    shutil.copyfile(tmp / "baseline.db", tmp / "job.db")


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Any]:
    from tests.plugins.servers import PostgresServer

    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


async def seed(url: str) -> float:
    started = time.perf_counter()
    database = Database(url)
    try:
        await migrate(database.writer_engine)
        wrapped = wrap_data_key(new_data_key(), recording_id(0), new_data_key())
        await database.write(lambda conn: seed_rows(conn, wrapped))
        if database.dialect == "postgresql":
            await database.write(lambda conn: conn.execute(text("ANALYZE")))
    finally:
        await database.dispose()
    return time.perf_counter() - started


async def measure(name: str, base_url: str, job_url: str, tmp: Path, seeded: float) -> Result:
    files_started = time.perf_counter()
    base_files = seed_files(tmp / "baseline-files")
    job_files = seed_files(tmp / "job-files")
    seeded += (time.perf_counter() - files_started) / 2

    database = Database(base_url)
    started = time.perf_counter()
    plain = await baseline(database, base_files)
    base_time = time.perf_counter() - started
    await database.dispose()
    assert plain == DUE, plain
    assert not any(base_files.ids())

    database = Database(job_url)
    started = time.perf_counter()
    destroyed, entries = await job(database, job_files)
    job_time = time.perf_counter() - started
    await database.dispose()
    assert not any(job_files.ids())
    return Result(name, seeded, base_time, job_time, destroyed, entries)


async def run_sqlite(tmp: Path) -> Result:
    seeded = await seed(f"sqlite+aiosqlite:///{tmp / 'baseline.db'}")
    copy_sqlite(tmp)
    return await measure(
        "SQLite",
        f"sqlite+aiosqlite:///{tmp / 'baseline.db'}",
        f"sqlite+aiosqlite:///{tmp / 'job.db'}",
        tmp,
        seeded,
    )


async def run_postgres(tmp: Path) -> Result:
    with postgres_cluster() as server:
        base_name = server.new_database_name("retention_base")
        server.create_database(base_name)
        seeded = await seed(server.url(base_name))
        job_name = server.new_database_name("retention_job")
        server.psql(f'CREATE DATABASE "{job_name}" TEMPLATE "{base_name}"')
        version = server.bindir.parent.name
        return await measure(
            f"PostgreSQL {version} (fsync off, loopback)",
            server.url(base_name),
            server.url(job_name),
            tmp,
            seeded,
        )


def table(results: list[Result]) -> str:
    lines = [
        "| store | seeded | baseline: plain deletes | job: `RetentionService.run_once` "
        "| job / baseline |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.store} | {r.seeded:.0f} s | {r.baseline:.1f} s, {DUE / r.baseline:,.0f}/s"
            f" | {r.job:.1f} s, {r.destroyed / r.job:,.0f}/s | {r.job / r.baseline:.2f} |"
        )
    return "\n".join(lines)


def update_docs(content: str) -> None:
    name = "retention"
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text_ = DOCS.read_text()
    if start not in text_:
        text_ = text_.rstrip("\n") + f"\n\n## Retention\n\n{start}\n{end}\n"
    first = text_.index(start)
    last = text_.index(end, first) + len(end)
    DOCS.write_text(text_[:first] + f"{start}\n{content.strip()}\n{end}" + text_[last:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--on", default="sqlite", help="sqlite, postgres, or both: sqlite,postgres")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()
    results = []
    for store in args.on.split(","):
        with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
            runner = {"sqlite": run_sqlite, "postgres": run_postgres}[store.strip()]
            result = asyncio.run(runner(Path(tmp)))
            results.append(result)
            print(table([result]), flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    content = (
        f"`scripts/bench_retention.py` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average"
        f" after the run {load}): a catalogue of {TOTAL:,} recordings, {DUE:,} of them past"
        f" their retention date, each due one with a small real vault file; batches of {BATCH}."
        " The baseline deletes the same key rows and files and marks the rows destroyed, nothing"
        " else; the job also overwrites each key before deleting it, writes a destruction record"
        " and two hash-chained audit entries per recording (key destroyed, destroyed).\n\n"
        + table(results)
        + "\n\n"
        + "; ".join(f"{r.store}: {r.audit_entries:,} audit entries written" for r in results)
        + "."
    )
    print(content)
    if not args.no_docs:
        update_docs(content)


if __name__ == "__main__":
    main()
