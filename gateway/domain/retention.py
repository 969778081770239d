"""What is due for destruction, and why (R9, R11, R14). Pure: time is passed in.

A recording is destroyed in three steps, in this order, each idempotent: its data key (after
which the ciphertext is unreadable for good), its file, then the destruction record. Once the
first step has been taken (`destruction_started`) nothing stops the rest, not even a hold placed
since: the recording is already gone, and the record must say so.

Otherwise a recording under a safeguarding hold is never due. A recording still being written
is never due here (its recorder stops it; recovery seals it first). A requested destruction (a
consent withdrawn, a person's request) is due at once; retention is due on its date.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import Staff, StaffRole

__all__ = [
    "HOLD_REASON_MAX",
    "CatalogueEntry",
    "DestructionReason",
    "DestructionRecord",
    "RecordingState",
    "RetentionFacts",
    "check_may_hold",
    "destruction_due",
    "retain_until",
]


class RecordingState(enum.StrEnum):
    RECORDING = "recording"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    DESTROYED = "destroyed"


class DestructionReason(enum.StrEnum):
    RETENTION = "retention"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    REQUEST = "request"
    INCOMPLETE = "incomplete"  # the policy destroys what a crash left behind


@dataclass(frozen=True, slots=True)
class RetentionFacts:
    state: RecordingState
    retain_until: datetime
    held: bool
    destruction_requested: DestructionReason | None = None
    destruction_started: bool = False


def retain_until(started_at: datetime, retention_days: int) -> datetime:
    """A recording's retention date: its purpose's `retention_days` after it started."""
    return started_at + timedelta(days=retention_days)


def destruction_due(facts: RetentionFacts, now: datetime) -> DestructionReason | None:
    """Why `facts` must be destroyed now, or None when it stays."""
    if facts.state is RecordingState.DESTROYED:
        return None
    if facts.destruction_started:
        return facts.destruction_requested or DestructionReason.RETENTION
    if facts.held or facts.state is RecordingState.RECORDING:
        return None
    if facts.destruction_requested is not None:
        return facts.destruction_requested
    if now >= facts.retain_until:
        return DestructionReason.RETENTION
    return None


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One recording as the catalogue holds it (people by id; views mask names)."""

    id: str
    org_id: str
    session_id: str
    purpose: str
    participants: tuple[tuple[str, str], ...]  # (person kind, person id)
    consent_hash: str
    consent_record_ids: tuple[str, ...]
    state: RecordingState
    started_at: datetime
    ended_at: datetime | None
    size_bytes: int
    chunks: int
    retain_until: datetime
    held: bool
    hold_reason: str | None = None
    destruction_requested: DestructionReason | None = None
    destruction_started: bool = False
    destruction_requested_by: str | None = None  # "guardian:<id>" is told when it is done

    def facts(self) -> RetentionFacts:
        return RetentionFacts(
            self.state,
            self.retain_until,
            self.held,
            self.destruction_requested,
            self.destruction_started,
        )


@dataclass(frozen=True, slots=True)
class DestructionRecord:
    recording_id: str
    org_id: str
    destroyed_at: datetime
    reason: DestructionReason
    destroyed_by: str
    key_destroyed: bool
    file_destroyed: bool


HOLD_REASON_MAX = 1000


def check_may_hold(staff: Staff) -> None:
    """Only the designated safeguarding lead places or lifts a safeguarding hold (R14)."""
    if StaffRole.DSL not in staff.roles:
        raise Refusal(
            ErrorCode.FORBIDDEN, "Only the designated safeguarding lead can place or lift a hold."
        )
