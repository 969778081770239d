"""Run by test_crash.py in a subprocess: start a recording, write chunks, say so, then wait to
be killed (SIGKILL). Arguments: database URL, recordings dir, master key file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway.adapters.recording_vault import LocalRecordingStorage, RecordingVault, load_master_key
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.recordings import SqlRecordingCatalogue
from gateway.adapters.sql.store import SqlStore
from gateway.clock import SystemClock
from gateway.services.policies import PolicyBook, load_policy_file
from gateway.services.recordings import RecordingsService
from tests.plugins.gateway_server import ROOT
from tests.recordings.conftest import ORG

MARKER = b"PLAINTEXT-MARKER-killed-mid-recording"


async def main(url: str, directory: str, key_file: str, audit_key_hex: str) -> None:
    database = Database(url)
    store = SqlStore(database, bytes.fromhex(audit_key_hex), SystemClock())
    await store.start()
    storage = LocalRecordingStorage(Path(directory))
    service = RecordingsService(
        SqlRecordingCatalogue(store.writer, database),
        RecordingVault(storage),
        PolicyBook(load_policy_file(ROOT / "policies" / "default.toml")),
        SystemClock(),
        master_key=load_master_key(Path(key_file)),
    )
    handle = await service.start(
        ORG, "staff:" + "t" * 32, "s" * 32, "lesson_review", [("child", "c" * 32)], ["r1"]
    )
    handle.writer.append(MARKER * 10_000)  # several chunks on disk, a tail in memory
    print(handle.entry.id, flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
