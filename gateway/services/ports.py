"""The interfaces services orchestrate through. Adapters implement them; app.py wires them.

Every `Store` method that changes something takes the audit events that describe the change and
commits both together, or raises: no audit, no action.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.domain.audit import AuditEntry, AuditEvent, ChainReport, WitnessedHead
from gateway.domain.audit_cursor import AuditCursor
from gateway.domain.esignature import ESignature
from gateway.domain.invite_token import InviteClaims
from gateway.domain.liveness import Authority, OwnedPresence
from gateway.domain.models import (
    Child,
    ConsentRecord,
    Guardian,
    Invite,
    Participant,
    Person,
    PersonKind,
    Presence,
    Session,
    Staff,
)


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    name: str
    policy_path: str | None


@dataclass(frozen=True, slots=True)
class JoinRecord:
    """Everything durable a join decision needs, loaded together."""

    invite: Invite
    participant: Participant
    session: Session
    session_password_hash: str | None
    person: Person
    consents: Sequence[ConsentRecord]
    session_title: str = ""
    # Durable exits of the participant (SQL is the truth, whatever the live state says):
    removed_at: datetime | None = None  # removed for good by the host
    departures: int = 0  # deliberate departures so far (a process seeing it grow lets go)
    host_display_name: str | None = None  # the first host's (masked) display name, if any


@dataclass(frozen=True, slots=True)
class AuditQuery:
    org_id: str
    session_id: str | None = None
    person_id: str | None = None
    kind: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    after: AuditCursor | None = None  # where the previous page stopped (per chain)
    limit: int = 100


@dataclass(frozen=True, slots=True)
class SessionQuery:
    """A page of an organisation's sessions (GET /v1/sessions), ordered by start then id."""

    org_id: str
    now_us: int
    status: str | None = None  # "upcoming", "live" or "ended" at now_us
    starts_from_us: int | None = None
    starts_to_us: int | None = None
    after: tuple[int, str] | None = None  # (starts_at_us, id) of the last session seen
    limit: int = 50


class Store(Protocol):
    # organisations and their API keys
    async def add_organisation(
        self, org: Organisation, key_id: str, key_hash: str, events: Sequence[AuditEvent]
    ) -> None: ...
    async def organisation_for_key(self, key_hash: str) -> Organisation | None: ...
    async def organisation(self, org_id: str) -> Organisation | None: ...
    async def organisations(self) -> Sequence[Organisation]: ...
    async def add_api_key(
        self, org_id: str, key_id: str, key_hash: str, events: Sequence[AuditEvent]
    ) -> None: ...
    async def revoke_api_keys(
        self, org_id: str, except_key_id: str | None, events: Sequence[AuditEvent]
    ) -> int: ...

    # registry
    async def add_person(self, person: Person, events: Sequence[AuditEvent]) -> None: ...
    async def person(self, org_id: str, kind: PersonKind, person_id: str) -> Person | None: ...
    async def staff_by_email(self, org_id: str, email: str) -> Staff | None: ...
    async def people(self, org_id: str, kind: PersonKind) -> Sequence[Person]: ...
    async def children_of_guardian(self, org_id: str, guardian_id: str) -> Sequence[Child]: ...
    async def update_person(self, person: Person, events: Sequence[AuditEvent]) -> None: ...
    async def sessions_page(self, query: SessionQuery) -> Sequence[tuple[Session, str]]: ...
    async def link_guardian(
        self, child: Child, guardian: Guardian, events: Sequence[AuditEvent]
    ) -> None: ...

    # consent (append-only)
    async def add_consent(
        self,
        record: ConsentRecord,
        events: Sequence[AuditEvent],
        signature: ESignature | None = None,
    ) -> None: ...
    async def consents(self, org_id: str, subject_id: str) -> Sequence[ConsentRecord]: ...

    # sessions, rosters, invites
    async def add_session(
        self, session: Session, title: str, password_hash: str | None, events: Sequence[AuditEvent]
    ) -> None: ...
    async def session(self, org_id: str, session_id: str) -> Session | None: ...
    async def session_title(self, org_id: str, session_id: str) -> str | None: ...
    async def end_session(
        self, org_id: str, session_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> None: ...
    async def add_participant(
        self, org_id: str, participant: Participant, events: Sequence[AuditEvent]
    ) -> None: ...
    async def participants(self, org_id: str, session_id: str) -> Sequence[Participant]: ...
    async def participant(self, org_id: str, participant_id: str) -> Participant | None: ...
    async def add_invite(self, invite: Invite, events: Sequence[AuditEvent]) -> None: ...
    async def invite(self, org_id: str, invite_id: str) -> Invite | None: ...
    async def revoke_invite(
        self, org_id: str, invite_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> bool: ...
    async def revoke_participant_invites(
        self, org_id: str, participant_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> int: ...
    async def join_record(self, invite_id: str) -> JoinRecord | None: ...
    async def join_records(self, invite_ids: Collection[str]) -> Mapping[str, JoinRecord]:
        """The current durable facts of many invites in one read (reconciliation's batch);
        invites that no longer resolve are absent."""
        ...

    async def joined_invites(self, session_id: str) -> Mapping[str, str]:
        """Per participant of the session, the invite they last joined with (bound to a
        device), revoked or not."""
        ...

    async def remove_participant(
        self, org_id: str, participant_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> None:
        """Removed for good: marks the participant removed and revokes their invites, with
        the events, in one transaction."""
        ...

    async def let_back_in(
        self, org_id: str, participant_id: str, events: Sequence[AuditEvent]
    ) -> bool:
        """Clear a removal, with the events, in one transaction; False (and nothing written)
        when the participant is not removed. Their old invites stay revoked."""
        ...

    async def record_departure(
        self, org_id: str, participant_id: str, events: Sequence[AuditEvent]
    ) -> None:
        """A deliberate departure: counted durably with its events, so the process holding
        the participant's media lets go even if the request reached another one."""
        ...

    async def bind_device(
        self, invite_id: str, device_hash: str, at: datetime, events: Sequence[AuditEvent]
    ) -> str: ...

    # audit
    async def record(self, events: Sequence[AuditEvent]) -> None: ...
    async def audit_entries(self, query: AuditQuery) -> Sequence[AuditEntry]: ...
    async def verify_audit(
        self,
        witnessed: Sequence[WitnessedHead] = (),
        progress: Callable[[int, int], None] | None = None,
    ) -> ChainReport: ...


class LiveState(Protocol):
    """Who is in which session right now. Rebuildable; never the durable truth.

    Any method may raise `LiveStateUnavailable` (the store cannot be reached): fail closed, i.e.
    hold children and refuse admissions, but still let people leave. The full contract is in
    `gateway/adapters/live_memory.py`.
    """

    async def present(self, session_id: str) -> Sequence[Presence]: ...
    async def enter(self, session_id: str, presence: Presence) -> Sequence[Presence]:
        """Add or replace a presence; raises `ParticipantRemoved` for someone removed. Returns
        who is present once it is in, read in the same atomic step (the newcomer included)."""
        ...

    async def leave(self, session_id: str, participant_id: str) -> None: ...
    async def set_held(
        self, session_id: str, participant_id: str, held: bool, fence: int | None = None
    ) -> bool:
        """Change the held flag of someone present (never makes anyone present). With a
        `fence`, only while that fence is the session's current authority: False (nothing
        written) for a stale one."""
        ...

    # One authority per live session: a lease with a fencing counter (DESIGN.md §3).
    async def claim_authority(self, session_id: str, url: str, ttl_seconds: float) -> Authority:
        """Take the session's lease if nobody holds it, renew it if this process does; the
        holder either way. Taking it over from a former owner drops that owner's presences of
        the session in the same atomic step: their media died with it, so the adults must
        connect again before they count (children held meanwhile)."""
        ...

    async def release_authority(self, session_id: str, fence: int) -> None:
        """Give the lease up if this process still holds it under `fence`."""
        ...

    async def authority_holders(self, session_ids: Collection[str]) -> Mapping[str, str | None]:
        """Which process holds each session's lease now (None: nobody), in one round trip:
        reconciliation's look at rooms whose owner may have died."""
        ...

    async def claim_credential(self, jti: str, ttl_seconds: int) -> bool:
        """True the first time a media credential is used within `ttl_seconds`, then False."""
        ...

    async def mark_removed(self, session_id: str, participant_id: str) -> None:
        """Take them out of the session and keep them out (24 h): a removal leaves every
        process's count at once, and no stale `enter` (e.g. a rebuild racing the removal)
        brings them back. The durable truth of a removal is SQL; this is its live echo."""
        ...

    async def unmark_removed(self, session_id: str, participant_id: str) -> None:
        """The host let them back in: `enter` accepts them again (the durable truth of it is
        SQL; this is its live echo)."""
        ...

    async def ping(self) -> None:
        """Return if the store can be read, else raise `LiveStateUnavailable`."""
        ...

    # Presences outliving their process (see `domain/liveness.py`). `enter` records
    # `process_id` as the presence's owner; `set_held` keeps the owner as it is.
    @property
    def process_id(self) -> str:
        """This process's id, recorded as the owner of every presence it enters."""
        ...

    async def heartbeat(self, ttl_seconds: float) -> None:
        """Say that this process is alive for the next `ttl_seconds` (renew it sooner)."""
        ...

    async def alive(self, process_ids: Collection[str]) -> frozenset[str]:
        """Those of `process_ids` whose heartbeat has not run out."""
        ...

    async def owned_presences(self) -> Sequence[OwnedPresence]:
        """Every presence in every session, with the process that entered it."""
        ...

    async def remove_orphan(self, orphan: OwnedPresence) -> bool:
        """Take the presence out if `orphan.owner` still owns it and still has no heartbeat,
        checked and done in one atomic step; True when it was taken out."""
        ...


# Tells every gateway process that durable facts behind live sessions changed (a removal, a
# revocation, an end, a departure, a withdrawn consent), so each owner re-reads them at once
# instead of at its next reconciliation. Best effort: a lost nudge is caught by that round.
DurableFactsChanged = Callable[[], Awaitable[None]]


class AttemptLimiter(Protocol):
    """Counts failures (e.g. wrong passwords) per key within a window."""

    async def check(self, key: str, limit: int, window_seconds: int, now: datetime) -> float | None:
        """None when allowed, else the seconds to wait (Retry-After)."""
        ...

    async def fail(self, key: str, window_seconds: int, now: datetime) -> None: ...
    async def reset(self, key: str) -> None: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, stored_hash: str, password: str) -> bool: ...


class InviteTokenCodec(Protocol):
    """Signs and checks invite tokens; keys stay in the adapter."""

    def mint(
        self, invite_id: str, session_id: str, org_id: str, expires_at: datetime, now: datetime
    ) -> str: ...
    def verify(self, token: str, now: datetime) -> InviteClaims: ...


class Alerts(Protocol):
    """Tells the people looking after a session (host, DSL) that something needs them."""

    async def publish(self, org_id: str, session_id: str, alert: Mapping[str, object]) -> None: ...
    def subscribe(self, session_id: str) -> asyncio.Queue[dict[str, object]]: ...
    def unsubscribe(self, session_id: str, queue: asyncio.Queue[dict[str, object]]) -> None: ...
