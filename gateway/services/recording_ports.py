"""What the recording services need from the outside (implemented in gateway/adapters):

RecordingFiles      the encrypted files (adapters/recording_vault.py `RecordingVault`,
                    over a local directory by default, S3-compatible storage later)
RecordingWriting    one recording being written: append encoded media, seal
RecordingCatalogue  the catalogue in SQL (adapters/sql/recordings.py)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from gateway.domain.audit import AuditEvent
from gateway.domain.outbox import OutboxMessage
from gateway.domain.recording_crypto import RecoveredFile
from gateway.domain.retention import (
    CatalogueEntry,
    DestructionReason,
    DestructionRecord,
    RecordingState,
)

__all__ = ["RecordingCatalogue", "RecordingFiles", "RecordingWriting"]


class RecordingWriting(Protocol):
    """Encrypts as it writes; synchronous (call it from a thread or `asyncio.to_thread`)."""

    def append(self, data: bytes) -> None: ...
    def seal(self) -> tuple[int, int]: ...
    def abort(self) -> None: ...


class RecordingFiles(Protocol):
    def open_writer(self, recording_id: str, data_key: bytes) -> RecordingWriting: ...
    def chunks(self, recording_id: str, data_key: bytes) -> Iterator[bytes]:
        """Plaintext chunk by chunk, each authenticated first; `RecordingCorrupt` at damage,
        reordering, a foreign chunk or truncation."""
        ...

    def recover(self, recording_id: str, data_key: bytes) -> RecoveredFile:
        """Seal a file whose writer died (a missing file becomes an empty sealed one)."""
        ...

    def delete(self, recording_id: str) -> bool: ...


class RecordingCatalogue(Protocol):
    async def create(
        self,
        entry: CatalogueEntry,
        wrapped_key: bytes,
        events: Sequence[AuditEvent],
        writer_process: str | None = None,
    ) -> None: ...
    async def get(self, org_id: str, recording_id: str) -> CatalogueEntry | None: ...
    async def by_id(self, recording_id: str) -> CatalogueEntry | None: ...
    async def wrapped_key(self, recording_id: str) -> bytes | None: ...
    async def seal(
        self,
        recording_id: str,
        state: RecordingState,
        size_bytes: int,
        chunks: int,
        events: Sequence[AuditEvent],
        ended_at_us: int | None = None,
    ) -> bool: ...
    async def orphaned(self, me: str | None) -> list[CatalogueEntry]: ...
    async def candidates(self, now_us: int, limit: int) -> list[CatalogueEntry]: ...
    async def count_candidates(self, now_us: int) -> int: ...
    async def destroy_keys(
        self, items: Sequence[tuple[str, DestructionReason, str]], events: Sequence[AuditEvent]
    ) -> None: ...
    async def record_destructions(
        self,
        records: Sequence[DestructionRecord],
        events: Sequence[AuditEvent],
        messages: Sequence[OutboxMessage] = (),
    ) -> int: ...
    async def destruction(self, org_id: str, recording_id: str) -> DestructionRecord | None: ...
    async def containing(
        self, org_id: str, person_id: str, purpose: str | None
    ) -> list[CatalogueEntry]: ...
    async def request_destruction(
        self,
        recording_ids: Sequence[str],
        reason: DestructionReason,
        by: str,
        events: Sequence[AuditEvent],
        messages: Sequence[OutboxMessage] = (),
    ) -> None: ...
    async def set_hold(
        self,
        org_id: str,
        recording_ids: Sequence[str],
        held: bool,
        reason: str,
        by: str,
        events: Sequence[AuditEvent],
    ) -> int: ...
    async def in_session(self, org_id: str, session_id: str) -> list[CatalogueEntry]: ...
