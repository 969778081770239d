"""What the recording services need from the outside (implemented in gateway/adapters):

RecordingFiles      the encrypted files (adapters/recording_vault.py `RecordingVault`,
                    over a local directory by default, S3-compatible storage later)
RecordingWriting    one recording being written: append encoded media, seal
RecordingCatalogue  the catalogue in SQL (adapters/sql/recordings.py)
ParticipantRecorder the media side: one participant's own published tracks, encoded frames
                    written into a container without re-encoding (gateway/media/recorder.py
                    over the embedded relay; LiveKit egress later)

One catalogue recording holds one participant's own tracks for one stretch of a session
recording: consent is per person, so a withdrawal destroys exactly that person's recordings,
and nobody else's tracks are ever in a file that belongs to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
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
from gateway.domain.review import RecordingFilters

__all__ = ["ParticipantRecorder", "RecordingCatalogue", "RecordingFiles", "RecordingWriting"]


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
    async def orphaned(self, me: str | None, grace_seconds: float = 0.0) -> list[CatalogueEntry]:
        """Being written by a process (not `me`) whose registration lapsed more than
        `grace_seconds` ago, or that left none."""
        ...

    async def candidates(self, now_us: int, limit: int) -> list[CatalogueEntry]: ...
    async def count_candidates(self, now_us: int) -> int: ...
    async def destroy_keys(
        self, items: Sequence[tuple[str, DestructionReason, str]], events: Sequence[AuditEvent]
    ) -> None: ...
    async def record_destructions(
        self,
        records: Sequence[DestructionRecord],
        events: Sequence[AuditEvent],
        messages: Mapping[str, Sequence[OutboxMessage]] | None = None,
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
    async def listing(
        self, org_id: str, filters: RecordingFilters, limit: int
    ) -> list[CatalogueEntry]: ...


class ParticipantRecorder(Protocol):
    """Records one participant's own published audio and video into a `RecordingWriting`.

    `identity` is the participant's opaque per-session media identity. `start` returns at once;
    frames of tracks the participant publishes later are recorded too, from their next key
    frame (the recorder asks for one). `stop` ends the container (its trailer goes into the
    writer) and detaches; the caller seals the writer, as incomplete if `stop` raised (the
    recording could not be ended whole: on LiveKit, the egress's file did not arrive).
    `on_failure` is called once, from the event loop, if writing fails (disk full, storage
    gone): the recorder has then detached and the caller catalogues the recording as
    incomplete; the session itself goes on.
    """

    async def start(
        self,
        room: str,
        identity: str,
        writer: RecordingWriting,
        *,
        audio_only: bool,
        on_failure: Callable[[BaseException], None],
    ) -> None: ...

    async def stop(self, room: str, identity: str) -> None: ...

    def recording(self, room: str) -> frozenset[str]:
        """The identities whose tracks are being written now."""
        ...
