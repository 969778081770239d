"""Benchmark: recordings at rest, in one run.

1. Encryption throughput: BENCH_VAULT_MIB MiB of media appended to a `RecordingWriter` in
   BENCH_VAULT_APPEND-byte pieces (as a recorder hands over encoded frames), encrypted in
   64 KiB AES-256-GCM chunks and written; against a plain copy of a file of the same size
   (shutil.copyfile) and a plain write of the same pieces. Then the authenticated read back.
2. Retention: a catalogue of BENCH_VAULT_RECORDINGS recordings (SQLite) of which
   BENCH_VAULT_DUE are past their retention date (each with a small ciphertext file); one
   `RetentionService.run_once` destroys the due ones (key, file, record, audited); time and rate.

    .venv/bin/python scripts/bench_vault.py
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from gateway.adapters.recording_vault import (
    LocalRecordingStorage,
    RecordingReader,
    RecordingVault,
    RecordingWriter,
)
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.migrate import migrate
from gateway.adapters.sql.recordings import SqlRecordingCatalogue
from gateway.adapters.sql.schema import (
    organisations,
    recording_keys,
    recording_participants,
    recordings,
)
from gateway.adapters.sql.store import SqlStore
from gateway.clock import FrozenClock, to_us
from gateway.domain.recording_crypto import new_data_key, wrap_data_key
from gateway.services.retention import RetentionService

MIB = int(os.environ.get("BENCH_VAULT_MIB", "256"))
APPEND = int(os.environ.get("BENCH_VAULT_APPEND", "16384"))
TOTAL = int(os.environ.get("BENCH_VAULT_RECORDINGS", "100000"))
DUE = int(os.environ.get("BENCH_VAULT_DUE", "10000"))
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _rate(mib: float, seconds: float) -> str:
    return f"{mib / seconds:8.1f} MiB/s ({seconds:.2f} s)"


def throughput(root: Path) -> None:
    storage = LocalRecordingStorage(root / "recordings")
    piece = os.urandom(APPEND)
    pieces = MIB * 1024 * 1024 // APPEND
    key = new_data_key()
    rid = "e" * 32

    started = time.perf_counter()
    writer = RecordingWriter(storage, rid, key)
    for _ in range(pieces):
        writer.append(piece)
    writer.seal()
    encrypted = time.perf_counter() - started

    plain = root / "plain.bin"
    started = time.perf_counter()
    with plain.open("wb") as out:
        for _ in range(pieces):
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    plain_write = time.perf_counter() - started

    started = time.perf_counter()
    shutil.copyfile(plain, root / "copy.bin")
    with (root / "copy.bin").open("rb+") as synced:
        os.fsync(synced.fileno())
    copied = time.perf_counter() - started

    started = time.perf_counter()
    size = sum(len(c) for c in RecordingReader(storage, rid, key).chunks())
    read = time.perf_counter() - started
    assert size == pieces * APPEND

    print(f"1. encryption throughput, {MIB} MiB in {APPEND}-byte appends")
    print(f"   encrypted write (AES-256-GCM, 64 KiB chunks): {_rate(MIB, encrypted)}")
    print(f"   plain write of the same pieces:               {_rate(MIB, plain_write)}")
    print(f"   plain file copy (shutil.copyfile):            {_rate(MIB, copied)}")
    print(f"   authenticated read back:                      {_rate(MIB, read)}")
    print(f"   encrypted write / plain copy time: {encrypted / copied:.2f}x")


async def retention(root: Path) -> None:
    clock = FrozenClock(NOW)
    database = Database(f"sqlite+aiosqlite:///{root}/bench.db")
    await migrate(database.writer_engine)
    store = SqlStore(database, os.urandom(32), clock)
    await store.start()
    org = "0" * 32
    master = new_data_key()
    storage = LocalRecordingStorage(root / "retention")
    header = os.urandom(2048)  # stands for a small ciphertext
    started = time.perf_counter()

    def seed(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute(insert(organisations).values(id=org, name="Bench", created_at=0))
        for start in range(0, TOTAL, 5000):
            rows, people, keys = [], [], []
            for n in range(start, min(TOTAL, start + 5000)):
                rid = f"{n:032x}"
                due = n < DUE
                begun = NOW - timedelta(days=40 if due else 1)
                rows.append(
                    {
                        "id": rid,
                        "org_id": org,
                        "session_id": "s" * 32,
                        "purpose": "lesson_review",
                        "consent_hash": "0" * 64,
                        "consent_record_ids": json.dumps([]),
                        "state": "complete",
                        "started_at": to_us(begun),
                        "ended_at": to_us(begun),
                        "size_bytes": len(header),
                        "chunks": 1,
                        "retain_until": to_us(begun + timedelta(days=30)),
                        "held": 0,
                        "destruction_started": 0,
                    }
                )
                people.append(
                    {
                        "recording_id": rid,
                        "person_id": f"{n % 5000:032x}",
                        "org_id": org,
                        "person_kind": "child",
                    }
                )
                keys.append(
                    {"recording_id": rid, "wrapped_key": wrap_data_key(master, rid, master)}
                )
            conn.execute(insert(recordings), rows)
            conn.execute(insert(recording_participants), people)
            conn.execute(insert(recording_keys), keys)

    await database.write(seed)
    for n in range(DUE):
        sink = storage.create(f"{n:032x}")
        sink.write(header)
        sink.close()
    seeded = time.perf_counter() - started

    service = RetentionService(
        SqlRecordingCatalogue(store.writer, database), RecordingVault(storage), clock
    )
    started = time.perf_counter()
    destroyed = await service.run_once()
    took = time.perf_counter() - started
    assert destroyed == DUE, destroyed
    assert not any(storage.ids())
    await store.stop()
    await database.dispose()
    print(
        f"2. retention, catalogue of {TOTAL} recordings, {DUE} due"
        f" (SQLite; seeded in {seeded:.1f} s)"
    )
    print(
        f"   destroyed {destroyed} (key, file, record, audited) in {took:.1f} s:"
        f" {destroyed / took:.0f} recordings/s"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-vault-") as tmp:
        throughput(Path(tmp))
    with tempfile.TemporaryDirectory(prefix="bench-vault-") as tmp:
        asyncio.run(retention(Path(tmp)))


if __name__ == "__main__":
    main()
