"""Destroying recordings (R9, R11): on their retention date, when a consent is withdrawn, on
request. Key first, then file, then the destruction record; each step idempotent, so a run
killed between steps is finished by the next (domain/retention.py decides what is due).

`run_once` is the periodic job (under the leader lease, `gateway/app.py`) and
`gateway retention run`'s body (with a progress callback). `consent_withdrawn` is the consent
service's hook: recordings containing the person are marked for destruction (the next run, a
minute away at most, destroys them) unless held, in which case the DSL is told (outbox) and
decides by lifting or keeping the hold; audited either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from gateway.clock import Clock, to_us
from gateway.domain.audit import AuditEvent
from gateway.domain.outbox import (
    OutboxMessage,
    destruction_waiting_for_dsl,
    recording_destroyed,
)
from gateway.domain.retention import (
    CatalogueEntry,
    DestructionReason,
    DestructionRecord,
    destruction_due,
)
from gateway.services.organisations import new_id
from gateway.services.recording_ports import RecordingCatalogue, RecordingFiles

__all__ = ["JOB_ACTOR", "RUN_LEASE", "RUN_LEASE_SECONDS", "RetentionService"]

JOB_ACTOR = "job:retention"
# One run at a time across processes (the periodic round, `gateway retention run` by hand):
# a lease held only while a run is in progress (`adapters/leader.py` `exclusively`), renewed
# every third of its term. Overlapping runs would still destroy each recording once (each
# step is conditional in SQL); the lease keeps them from doing the work twice.
RUN_LEASE = "recordings.retention.run"
RUN_LEASE_SECONDS = 30.0
Progress = Callable[[int, int], None]


class RetentionService:
    def __init__(
        self,
        catalogue: RecordingCatalogue,
        files: RecordingFiles,
        clock: Clock,
        *,
        batch: int = 200,
        link_base: str = "",
    ) -> None:
        self._catalogue = catalogue
        self._files = files
        self._clock = clock
        self._batch = batch
        self._link_base = link_base.rstrip("/")

    async def run_once(self, progress: Progress | None = None, actor: str = JOB_ACTOR) -> int:
        """Destroy everything due now; the number destroyed."""
        now = self._clock.now()
        total = await self._catalogue.count_candidates(to_us(now))
        done = 0
        if progress:
            progress(done, total)
        while True:
            batch = await self._catalogue.candidates(to_us(now), self._batch)
            due = [(e, r) for e in batch if (r := destruction_due(e.facts(), now)) is not None]
            if not due:
                return done
            done += await self.destroy(due, actor)
            if progress:
                progress(done, max(total, done))

    async def destroy(
        self, due: Sequence[tuple[CatalogueEntry, DestructionReason]], actor: str
    ) -> int:
        """Destroy each recording: every key first (one transaction), then every file, then
        every destruction record (one transaction). A run killed between steps leaves the
        recordings marked as started; the next run finishes them."""
        # 1. The keys: from here on these recordings cannot be read, whatever else happens.
        await self._catalogue.destroy_keys(
            [(e.id, r, e.destruction_requested_by or actor) for e, r in due],
            [
                AuditEvent(
                    "recording.key_destroyed",
                    actor,
                    e.org_id,
                    session_id=e.session_id,
                    data={"recording": e.id, "reason": r.value},
                )
                for e, r in due
            ],
        )
        # 2. The ciphertext (deleting a file that is gone already is not an error).
        await asyncio.to_thread(self._delete_files, [e.id for e, _ in due])
        # 3. The proof; a guardian who withdrew consent is told it is done.
        at = self._clock.now()
        messages: dict[str, list[OutboxMessage]] = {}  # by recording: sent once, by one run
        for e, _ in due:
            by = e.destruction_requested_by
            if by and by.startswith("guardian:"):
                messages[e.id] = recording_destroyed(
                    org_id=e.org_id,
                    guardian_id=by.removeprefix("guardian:"),
                    recording_id=e.id,
                    at=at,
                    ids=(new_id(), new_id()),
                )
        return await self._catalogue.record_destructions(
            [
                DestructionRecord(
                    recording_id=e.id,
                    org_id=e.org_id,
                    destroyed_at=at,
                    reason=r,
                    destroyed_by=actor,
                    key_destroyed=True,
                    file_destroyed=True,
                )
                for e, r in due
            ],
            [
                AuditEvent(
                    "recording.destroyed",
                    actor,
                    e.org_id,
                    session_id=e.session_id,
                    data={"recording": e.id, "reason": r.value},
                )
                for e, r in due
            ],
            messages,
        )

    def _delete_files(self, recording_ids: Sequence[str]) -> None:
        for recording_id in recording_ids:
            self._files.delete(recording_id)

    async def consent_withdrawn(
        self, org_id: str, person_id: str, purpose: str | None, withdrawn_by: str
    ) -> tuple[list[str], list[str]]:
        """Mark for destruction every recording (of `purpose`, or all) containing the person;
        (marked, held) recording ids. Held ones wait for the DSL, who is told."""
        entries = await self._catalogue.containing(org_id, person_id, purpose)
        # Held ones are marked too: when the DSL lifts the hold, the withdrawal takes effect.
        held = [e for e in entries if e.held and not e.destruction_started]
        marked = [e.id for e in entries if e not in held]
        events = [
            AuditEvent(
                "recording.destruction_requested",
                withdrawn_by,
                org_id,
                person_id=person_id,
                data={
                    "recordings": marked,
                    "held": [e.id for e in held],
                    "reason": DestructionReason.CONSENT_WITHDRAWN.value,
                },
            )
        ]
        messages = []
        if held:
            messages = destruction_waiting_for_dsl(
                org_id=org_id,
                recording_ids=tuple(e.id for e in held),
                at=self._clock.now(),
                link=f"{self._link_base}/staff",
                ids=(new_id(), new_id()),
            )
        if entries:
            await self._catalogue.request_destruction(
                [e.id for e in entries],
                DestructionReason.CONSENT_WITHDRAWN,
                withdrawn_by,
                events,
                messages,
            )
        return marked, [e.id for e in held]
