"""Recordings at rest: start (a catalogue entry and a fresh data key), write, seal, recover,
read back, and the safeguarding hold (R7, R10, R14).

The recorder (a later piece) calls `start(...)` and gets a handle whose writer takes encoded
media (`handle.writer.append`, in a thread), then `finish(handle)`; nothing here captures
media. A recording is catalogued before its first byte is written, with the consent state
it is made under (the consent records' ids and a hash of the snapshot), so a crash at any point
leaves an entry that recovery finds.

Without a master key (`GATEWAY_RECORDING_MASTER_KEY_FILE`) the service still runs (reading the
catalogue, holds, retention) but refuses to start a recording, with one clear error.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.masking import display_name, display_style, role_label
from gateway.domain.models import Person, PersonKind, SessionRole, Staff
from gateway.domain.recording_crypto import (
    RecordingCorrupt,
    RecordingKeyError,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from gateway.domain.retention import (
    HOLD_REASON_MAX,
    CatalogueEntry,
    DestructionReason,
    DestructionRecord,
    RecordingState,
    check_may_hold,
    retain_until,
)
from gateway.domain.review import RecordingFilters
from gateway.services.organisations import new_id
from gateway.services.policies import PolicyBook
from gateway.services.ports import Organisation
from gateway.services.recording_ports import RecordingCatalogue, RecordingFiles, RecordingWriting

__all__ = [
    "RecordingHandle",
    "RecordingsService",
    "RegistrationLapsed",
    "consent_snapshot_hash",
]

log = logging.getLogger(__name__)


def consent_snapshot_hash(
    purpose: str, participants: Sequence[tuple[str, str]], consent_record_ids: Sequence[str]
) -> str:
    """A stable hash of the consent state a recording is made under."""
    snapshot = {
        "purpose": purpose,
        "participants": sorted([list(p) for p in participants]),
        "consent_records": sorted(consent_record_ids),
    }
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()


class RegistrationLapsed(OSError):
    """This process's registration may have lapsed: another process may be recovering its
    recordings, so nothing more is written to them (see domain/registration_lease.py)."""


class _FencedWriter:
    """The vault's writer, asked before every batch whether this process may still write: an
    append or the final seal after the registration could have lapsed raises
    `RegistrationLapsed` (an OSError: the recorder ends that recording as it would at a full
    disk) and nothing reaches the file."""

    def __init__(self, writer: RecordingWriting, may_write: Callable[[], bool]) -> None:
        self._writer = writer
        self._may_write = may_write
        self.fenced = False

    def _check(self) -> None:
        if self.fenced or not self._may_write():
            self.fenced = True
            raise RegistrationLapsed("this process's registration may have lapsed")

    def append(self, data: bytes) -> None:
        self._check()
        self._writer.append(data)

    def seal(self) -> tuple[int, int]:
        self._check()
        return self._writer.seal()

    def abort(self) -> None:
        self._writer.abort()


@dataclass
class RecordingHandle:
    entry: CatalogueEntry
    writer: RecordingWriting


class PersonLookup(Protocol):
    async def person(self, org_id: str, kind: PersonKind, person_id: str) -> Person | None: ...


class OrganisationLookup(Protocol):
    async def organisation(self, org_id: str) -> Organisation | None: ...


@dataclass(frozen=True, slots=True)
class RecordingView:
    """A recording as staff pages show it: people by masked display name only."""

    entry: CatalogueEntry
    people: tuple[str, ...]
    destruction: DestructionRecord | None
    names: Mapping[str, str] = field(default_factory=dict)  # person id -> masked name


class RecordingsService:
    def __init__(
        self,
        catalogue: RecordingCatalogue,
        files: RecordingFiles,
        policies: PolicyBook,
        clock: Clock,
        *,
        master_key: bytes | None,
        master_key_problem: str | None = None,
        process_id: str | None = None,
        people: PersonLookup | None = None,
        organisations: OrganisationLookup | None = None,
        may_write: Callable[[], bool] | None = None,
        writer_grace_seconds: float = 0.0,
    ) -> None:
        # Whether this process's registration still holds (domain/registration_lease.py):
        # asked before every batch a writer appends. None: always (no registration in use).
        self._may_write = may_write or (lambda: True)
        # How long past the lapse of a writer's registration its recordings are left alone
        # (a writer that stalled mid-batch finishes it; the registry keeps a lapsed entry at
        # least this long: adapters/sql/processes.py).
        self._writer_grace = writer_grace_seconds
        # Recordings this process stopped writing but could not seal (its registration lapsed,
        # or SQL was down): sealed by `retry_abandoned` once it may write again, or by another
        # process's recovery if this one never comes back.
        self._abandoned: dict[str, CatalogueEntry] = {}
        self._people = people
        # Whose policy says what becomes of a recording cut short (`recording.after_crash`).
        self._organisations = organisations
        self._process_id = process_id
        self._catalogue = catalogue
        self._files = files
        self._policies = policies
        self._clock = clock
        self._master_key = master_key
        self._problem = master_key_problem or "recording is off: no master key"

    @property
    def can_record(self) -> bool:
        return self._master_key is not None

    def check_can_record(self) -> None:
        """Refuse (RECORDING_UNAVAILABLE) before anything is recorded when there is no key, or
        while this process's registration may have lapsed."""
        self._master()
        if not self._may_write():
            raise Unavailable(
                ErrorCode.RECORDING_UNAVAILABLE,
                "Recording is paused on this gateway: it cannot reach its database.",
                retry_after=5.0,
            )

    def may_write(self) -> bool:
        return self._may_write()

    def _master(self) -> bytes:
        if self._master_key is None:
            raise Unavailable(ErrorCode.RECORDING_UNAVAILABLE, self._problem, retry_after=3600.0)
        return self._master_key

    async def start(
        self,
        org: Organisation,
        actor: str,
        session_id: str,
        purpose: str,
        participants: Sequence[tuple[str, str]],
        consent_record_ids: Sequence[str],
    ) -> RecordingHandle:
        """Catalogue a new recording and open its encrypted file. The caller (the recorder) has
        checked consent (R7); this records what it was checked against."""
        master = self._master()
        self.check_can_record()
        policy = self._policies.for_path(org.policy_path)
        spec = policy.recording.purposes.get(purpose)
        if spec is None:
            raise Refusal(ErrorCode.PURPOSE_UNKNOWN, "this recording purpose is not in the policy")
        now = self._clock.now()
        recording_id = new_id()
        entry = CatalogueEntry(
            id=recording_id,
            org_id=org.id,
            session_id=session_id,
            purpose=purpose,
            participants=tuple(sorted(participants)),
            consent_hash=consent_snapshot_hash(purpose, participants, consent_record_ids),
            consent_record_ids=tuple(consent_record_ids),
            state=RecordingState.RECORDING,
            started_at=now,
            ended_at=None,
            size_bytes=0,
            chunks=0,
            retain_until=retain_until(now, spec.retention_days),
            held=False,
        )
        data_key = new_data_key()
        await self._catalogue.create(
            entry,
            wrap_data_key(master, recording_id, data_key),
            [
                AuditEvent(
                    "recording.started",
                    actor,
                    org.id,
                    session_id=session_id,
                    data={
                        "recording": recording_id,
                        "purpose": purpose,
                        "participants": [p for _, p in entry.participants],
                        "consent_hash": entry.consent_hash,
                    },
                )
            ],
            writer_process=self._process_id,
        )
        writer = await asyncio.to_thread(self._files.open_writer, recording_id, data_key)
        return RecordingHandle(entry, _FencedWriter(writer, self._may_write))

    async def finish(self, handle: RecordingHandle, actor: str) -> CatalogueEntry:
        size, chunks = await asyncio.to_thread(handle.writer.seal)
        entry = handle.entry
        await self._catalogue.seal(
            entry.id,
            RecordingState.COMPLETE,
            size,
            chunks,
            [
                AuditEvent(
                    "recording.sealed",
                    actor,
                    entry.org_id,
                    session_id=entry.session_id,
                    data={"recording": entry.id, "size": size, "chunks": chunks},
                )
            ],
        )
        found = await self._catalogue.by_id(entry.id)
        assert found is not None
        return found

    async def finish_failed(self, handle: RecordingHandle, actor: str) -> CatalogueEntry | None:
        """Writing failed (disk full, storage gone): stop the writer and seal what was
        authenticated as incomplete, now (the session goes on). Audited as recording.failed."""
        await asyncio.to_thread(handle.writer.abort)
        entry = handle.entry
        if not self._may_write():
            # Not even the crash marker is written now: sealed once this process may write
            # again, or by another's recovery (one seal between them: the catalogue's is
            # conditional, and the file's is the same bytes whoever writes it).
            self._abandoned[entry.id] = entry
            log.error("recording %s stopped: this process's registration lapsed", entry.id)
            return None
        try:
            return await self._seal_failed(entry, actor)
        except Unavailable:
            self._abandoned[entry.id] = entry
            log.error("recording %s stopped; its seal waits for the database", entry.id)
            return None

    async def _seal_failed(self, entry: CatalogueEntry, actor: str) -> CatalogueEntry | None:
        current = await self._catalogue.by_id(entry.id)
        if current is None or current.state is not RecordingState.RECORDING:
            return current  # sealed meanwhile by another process's recovery: its file too
        size = chunks = 0
        wrapped = await self._catalogue.wrapped_key(entry.id)
        if self._master_key is not None and wrapped is not None:
            try:  # what was written and authenticated stays readable, sealed as incomplete
                key = unwrap_data_key(self._master_key, entry.id, wrapped)
                result = await asyncio.to_thread(self._files.recover, entry.id, key)
                size, chunks = result.size, result.chunks
            except (RecordingKeyError, RecordingCorrupt, OSError) as exc:
                log.error("recording %s could not be sealed: %s", entry.id, type(exc).__name__)
        sealed = await self._catalogue.seal(
            entry.id,
            RecordingState.INCOMPLETE,
            size,
            chunks,
            [
                AuditEvent(
                    "recording.failed",
                    actor,
                    entry.org_id,
                    session_id=entry.session_id,
                    data={"recording": entry.id, "size": size, "chunks": chunks},
                )
            ],
        )
        if sealed:
            await self._after_cut_short(entry, actor)
        return await self._catalogue.by_id(entry.id)

    async def retry_abandoned(self) -> int:
        """Seal the recordings this process stopped writing but could not seal, once it may
        write again (each reconciliation round); how many are now sealed (here, or found
        sealed by another process's recovery)."""
        if not self._abandoned or not self._may_write():
            return 0
        sealed = 0
        for recording_id, entry in list(self._abandoned.items()):
            try:
                await self._seal_failed(entry, "gateway")
            except Unavailable:
                return sealed  # the database is still away: next round
            self._abandoned.pop(recording_id, None)
            sealed += 1
        return sealed

    @property
    def abandoned(self) -> frozenset[str]:
        return frozenset(self._abandoned)

    async def discard(self, handle: RecordingHandle, actor: str, reason: str) -> None:
        """Nothing may be kept (consent withdrawn between cataloguing and the first frame):
        sealed empty and marked for destruction (the next retention round destroys it)."""
        await asyncio.to_thread(handle.writer.abort)
        entry = handle.entry
        await self._catalogue.seal(
            entry.id,
            RecordingState.INCOMPLETE,
            0,
            0,
            [
                AuditEvent(
                    "recording.discarded",
                    actor,
                    entry.org_id,
                    session_id=entry.session_id,
                    data={"recording": entry.id, "reason": reason},
                )
            ],
        )
        await self._catalogue.request_destruction(
            [entry.id], DestructionReason.CONSENT_WITHDRAWN, actor, []
        )

    async def recover(self) -> list[CatalogueEntry]:
        """At start and periodically: every recording whose writer process died is sealed
        (complete if its final chunk was written, else incomplete with what was
        authenticated), then kept or marked for destruction as the organisation's policy says
        (`recording.after_crash`). Needs the master key; without it the entries stay as they
        are (a later start with the key recovers them). One process at a time (the leader lease)."""
        if self._master_key is None:
            return []
        recovered = []
        for entry in await self._catalogue.orphaned(self._process_id, self._writer_grace):
            try:
                found = await self._recover_one(entry, self._master_key)
            except (RecordingKeyError, RecordingCorrupt, OSError) as exc:
                # One recording that cannot be sealed (another master key, a damaged header)
                # must not stop the others, nor the destruction that follows in the same round.
                log.error("recording %s could not be recovered: %s", entry.id, type(exc).__name__)
                continue
            if found is not None:
                recovered.append(found)
        return recovered

    async def _recover_one(self, entry: CatalogueEntry, master: bytes) -> CatalogueEntry | None:
        wrapped = await self._catalogue.wrapped_key(entry.id)
        if wrapped is None:
            return None
        key = unwrap_data_key(master, entry.id, wrapped)
        result = await asyncio.to_thread(self._files.recover, entry.id, key)
        state = RecordingState.COMPLETE if result.complete else RecordingState.INCOMPLETE
        sealed = await self._catalogue.seal(
            entry.id,
            state,
            result.size,
            result.chunks,
            [
                AuditEvent(
                    "recording.recovered",
                    "system:recovery",
                    entry.org_id,
                    session_id=entry.session_id,
                    data={"recording": entry.id, "state": state.value},
                )
            ],
        )
        if not sealed:  # another process's recovery sealed it first: recovered once, there
            return None
        if state is RecordingState.INCOMPLETE:
            await self._after_cut_short(entry, "system:recovery")
        return await self._catalogue.by_id(entry.id)

    async def _after_cut_short(self, entry: CatalogueEntry, actor: str) -> None:
        """A recording sealed as incomplete (its writer crashed or failed) is kept, or marked
        for destruction (the next retention round destroys it, with its record), as its
        organisation's policy says (`recording.after_crash`)."""
        org = await self._organisations.organisation(entry.org_id) if self._organisations else None
        if org is None:
            return
        if self._policies.for_path(org.policy_path).recording.after_crash == "destroy":
            await self._catalogue.request_destruction(
                [entry.id], DestructionReason.INCOMPLETE, actor, []
            )

    async def get(self, org: Organisation, recording_id: str) -> CatalogueEntry:
        entry = await self._catalogue.get(org.id, recording_id)
        if entry is None:
            raise Refusal(ErrorCode.NOT_FOUND, "no such recording")
        return entry

    async def read(self, org: Organisation, recording_id: str) -> Iterator[bytes]:
        """The recording's plaintext, chunk by chunk, each authenticated before it is given
        out (the reader raises `RecordingCorrupt` at damage or truncation)."""
        entry = await self.get(org, recording_id)
        wrapped = await self._catalogue.wrapped_key(entry.id)
        if entry.state is RecordingState.DESTROYED or wrapped is None:
            raise Refusal(ErrorCode.NOT_FOUND, "this recording has been destroyed")
        key = unwrap_data_key(self._master(), entry.id, wrapped)
        return self._files.chunks(entry.id, key)

    async def view(self, org: Organisation, recording_id: str) -> RecordingView:
        """The catalogue entry with its people masked as the policy shows them in sessions."""
        entry = await self.get(org, recording_id)
        policy = self._policies.for_path(org.policy_path)
        shown = []
        names: dict[str, str] = {}
        counts: dict[SessionRole, int] = {}
        for kind_text, person_id in entry.participants:
            kind = PersonKind(kind_text)
            role = SessionRole.CHILD if kind is PersonKind.CHILD else SessionRole.HOST
            if kind is PersonKind.GUARDIAN:
                role = SessionRole.GUARDIAN
            counts[role] = counts.get(role, 0) + 1
            person = await self._people.person(org.id, kind, person_id) if self._people else None
            if person is None:
                shown.append(role_label(role, counts[role]))
            else:
                style = display_style(policy, role, kind)
                shown.append(display_name(person, role, style, counts[role]))
            names[person_id] = shown[-1]
        return RecordingView(
            entry, tuple(shown), await self._catalogue.destruction(org.id, entry.id), names
        )

    async def masked_name(self, org: Organisation, kind: PersonKind, person_id: str) -> str:
        """One person as the review pages show them (a guardian who gave a consent)."""
        policy = self._policies.for_path(org.policy_path)
        role = {
            PersonKind.CHILD: SessionRole.CHILD,
            PersonKind.GUARDIAN: SessionRole.GUARDIAN,
        }.get(kind, SessionRole.HOST)
        person = await self._people.person(org.id, kind, person_id) if self._people else None
        if person is None:
            return role_label(role, 1)
        return display_name(person, role, display_style(policy, role, kind), 1)

    async def listing(
        self, org: Organisation, filters: RecordingFilters, limit: int
    ) -> list[CatalogueEntry]:
        return await self._catalogue.listing(org.id, filters, limit)

    async def hold_by_staff(
        self, org: Organisation, staff: Staff, recording_id: str, held: bool, reason: str
    ) -> CatalogueEntry:
        """The DSL's decision (R14); anyone else is refused (and the refusal audited by the
        page that asked)."""
        check_may_hold(staff)
        return await self.set_hold(org, f"staff:{staff.id}", recording_id, held, reason)

    # Safeguarding hold (R14) ------------------------------------------------------------------
    async def set_hold(
        self, org: Organisation, actor: str, recording_id: str, held: bool, reason: str
    ) -> CatalogueEntry:
        """Place (held=True) or lift a hold, with a reason. The caller has checked the actor is
        the DSL. A recording whose destruction has begun cannot be held: it is gone."""
        reason = reason.strip()
        if not reason:
            raise Refusal(ErrorCode.BODY_INVALID, "a hold needs a reason")
        entry = await self.get(org, recording_id)
        changed = await self._catalogue.set_hold(
            org.id,
            [entry.id],
            held,
            reason[:HOLD_REASON_MAX],
            actor.removeprefix("staff:"),
            [
                AuditEvent(
                    "recording.hold_placed" if held else "recording.hold_lifted",
                    actor,
                    org.id,
                    session_id=entry.session_id,
                    data={"recording": entry.id, "reason": reason[:HOLD_REASON_MAX]},
                )
            ],
        )
        if not changed:
            raise Refusal(ErrorCode.CONFLICT, "this recording has been destroyed")
        return await self.get(org, recording_id)

    async def hold_session(self, org_id: str, session_id: str, actor: str, reason: str) -> int:
        """A concern reported in a session holds every recording of that session (R14)."""
        entries = await self._catalogue.in_session(org_id, session_id)
        ids = [e.id for e in entries if e.state is not RecordingState.DESTROYED]
        if not ids:
            return 0
        return await self._catalogue.set_hold(
            org_id,
            ids,
            True,
            reason,
            actor.removeprefix("staff:")[:32],
            [
                AuditEvent(
                    "recording.hold_placed",
                    actor,
                    org_id,
                    session_id=session_id,
                    data={"recordings": ids, "reason": reason},
                )
            ],
        )
