"""What one process knows of its live sessions: seats (who joined here), per-session entries
(policy, supervision clock, lock), and the ports every live concern shares.

Everything here is bounded by what is live: a session's entry and its seats go when the session
ends or its last person here leaves (`LiveRegistry.drop_if_idle`); reconciliation walks only the
sessions in this registry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.models import PersonKind, SessionRole
from gateway.domain.policy import Policy
from gateway.services.admission import AdmissionService
from gateway.services.live_ports import MediaCredentialCodec, MediaPlatform
from gateway.services.ports import Alerts, LiveState, Store

Event = dict[str, object]
IncidentRecorder = Callable[[str, str, str, str, list[str]], Awaitable[object]]


@dataclass
class LivePorts:
    """The ports and services the live concerns share (wired once, in app.py)."""

    store: Store
    live: LiveState
    platform: MediaPlatform
    credentials: MediaCredentialCodec
    admission: AdmissionService
    alerts: Alerts
    clock: Clock
    record_incident: IncidentRecorder | None = None


@dataclass
class Seat:
    """One participant admitted through this process (their media, if any, is here too)."""

    org_id: str
    session_id: str
    participant_id: str
    invite_id: str
    identity: str
    display_name: str
    role: SessionRole
    person_kind: PersonKind
    joined_at: datetime
    vetted_adult: bool = False  # counts towards supervision once connected
    departures: int = 0  # the durable count of deliberate departures when they joined
    connected: bool = False
    counted: bool = False  # entered in the live state as a counting adult (media connected)
    left: bool = False
    # Counted when they went: a "leave" arriving just after their media dropped is still a
    # deliberate departure of a counted adult (the page hangs up, then says it left).
    counted_when_left: bool = False

    def public(self) -> dict[str, object]:
        return {
            "identity": self.identity,
            "display_name": self.display_name,
            "role": self.role.value,
        }


@dataclass
class LiveSession:
    """Per-session entries of this process."""

    org_id: str
    policy: Policy
    below_since: datetime | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Media credentials used here, until they expire: a credential only works on the process
    # that seated its holder, so this memory keeps them single-use even if Redis is flushed.
    used_credentials: dict[str, datetime] = field(default_factory=dict)

    def use_credential(self, credential_id: str, expires_at: datetime, now: datetime) -> bool:
        """True the first time; expired entries are dropped as new ones come (bounded)."""
        for stale in [c for c, at in self.used_credentials.items() if at < now]:
            del self.used_credentials[stale]
        if credential_id in self.used_credentials:
            return False
        self.used_credentials[credential_id] = expires_at
        return True


class LiveRegistry:
    def __init__(self) -> None:
        self._seats: dict[str, Seat] = {}  # by masked identity
        self._sessions: dict[str, LiveSession] = {}  # by session id

    def seat(self, identity: str) -> Seat | None:
        return self._seats.get(identity)

    def seat_in(self, identity: str) -> Seat | None:
        """The seat of this identity if it is still in its session."""
        seat = self._seats.get(identity)
        return seat if seat is not None and not seat.left else None

    def seat_down(self, seat: Seat) -> None:
        self._seats[seat.identity] = seat

    def seats(self, session_id: str, *, with_left: bool = False) -> list[Seat]:
        return [
            s
            for s in self._seats.values()
            if s.session_id == session_id and (with_left or not s.left)
        ]

    def active_seats(self) -> list[Seat]:
        return [s for s in self._seats.values() if not s.left]

    def gone_counted_seats(self) -> list[Seat]:
        """Seats of counted adults whose media went, still remembered (their session is live)."""
        return [s for s in self._seats.values() if s.left and s.counted_when_left]

    def session(self, session_id: str) -> LiveSession | None:
        return self._sessions.get(session_id)

    def open_session(self, session_id: str, org_id: str, policy: Policy) -> LiveSession:
        entry = self._sessions.get(session_id)
        if entry is None:
            entry = self._sessions[session_id] = LiveSession(org_id, policy)
        else:
            entry.policy = policy
        return entry

    def session_ids(self) -> list[str]:
        return list(self._sessions)

    def drop_if_idle(self, session_id: str, watched: bool) -> bool:
        """Forget a session once nobody is in it here and no stream watches it (bounded
        state); True when it was dropped."""
        if watched or self.seats(session_id):
            return False
        entry = self._sessions.get(session_id)
        if entry is not None and entry.lock.locked():
            return False
        self._sessions.pop(session_id, None)
        for seat in self.seats(session_id, with_left=True):
            del self._seats[seat.identity]
        return True

    def org_of(self, session_id: str) -> str | None:
        entry = self._sessions.get(session_id)
        return entry.org_id if entry is not None else None

    def sizes(self) -> Mapping[str, int]:
        """How much is held (for tests of boundedness)."""
        return {"seats": len(self._seats), "sessions": len(self._sessions)}


class SessionLocks:
    """One lock per session, kept only while someone holds it or waits for it: a session
    whose recording was started, refused or stopped once leaves nothing behind."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # by session id: lock, users

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(session_id) or (asyncio.Lock(), 0)
        self._locks[session_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[session_id]
            if users > 1:
                self._locks[session_id] = (lock, users - 1)
            else:
                del self._locks[session_id]

    def __len__(self) -> int:
        return len(self._locks)


async def audit_seat(
    store: Store, seat: Seat, kind: str, data: Mapping[str, object] | None = None
) -> None:
    await store.record(
        [
            AuditEvent(
                kind,
                seat.identity,
                seat.org_id,
                session_id=seat.session_id,
                data={"participant": seat.participant_id, **(data or {})},
            )
        ]
    )
