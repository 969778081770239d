"""A recordings world on a real database (SQLite, then PostgreSQL) and a real directory: the
catalogue, the vault, the retention service, with a frozen clock."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from gateway.adapters.recording_vault import LocalRecordingStorage, RecordingVault
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.migrate import migrate
from gateway.adapters.sql.recordings import SqlRecordingCatalogue
from gateway.adapters.sql.schema import organisations
from gateway.adapters.sql.store import SqlStore
from gateway.adapters.sql.writer import WriteTx
from gateway.clock import FrozenClock
from gateway.services.policies import PolicyBook, load_policy_file
from gateway.services.ports import Organisation
from gateway.services.recordings import RecordingsService
from gateway.services.retention import RetentionService
from tests.plugins.gateway_server import ROOT

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ORG = Organisation("0" * 31 + "1", "Test org", None)


@dataclass
class World:
    database: Database
    store: SqlStore
    catalogue: SqlRecordingCatalogue
    storage: LocalRecordingStorage
    recordings: RecordingsService
    retention: RetentionService
    clock: FrozenClock
    master_key: bytes
    audit_key: bytes


@pytest.fixture
async def world(
    database_url: str, tmp_path: Path, schema_at_head: Callable[[str], None]
) -> AsyncIterator[World]:
    schema_at_head(database_url)  # a copy of a migrated database; migrate() finds it done
    clock = FrozenClock(START)
    database = Database(database_url)
    await migrate(database.writer_engine)
    audit_key = os.urandom(32)
    store = SqlStore(database, audit_key, clock)
    await store.start()

    def org(tx: WriteTx) -> None:
        tx.conn.execute(insert(organisations).values(id=ORG.id, name=ORG.name, created_at=0))

    await store.writer.write(org)
    catalogue = SqlRecordingCatalogue(store.writer, database)
    storage = LocalRecordingStorage(tmp_path / "recordings")
    policies = PolicyBook(load_policy_file(ROOT / "policies" / "default.toml"))
    master = os.urandom(32)
    try:
        yield World(
            database,
            store,
            catalogue,
            storage,
            RecordingsService(
                catalogue, RecordingVault(storage), policies, clock, master_key=master
            ),
            RetentionService(catalogue, RecordingVault(storage), clock),
            clock,
            master,
            audit_key,
        )
    finally:
        await store.stop()
        await database.dispose()
