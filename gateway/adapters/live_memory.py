"""Live state kept in this process: the embedded default (no Redis).

The contract every live state shares (`RedisLiveState` in `live_redis.py` is the other one; the
same tests run over both, tests/live/test_live_state.py):

* `present(session_id)` is everyone the state says is in the session, in no particular order.
* `enter(session_id, presence)` adds or replaces that participant's presence. It raises
  `ParticipantRemoved` (and changes nothing) for someone `mark_removed` has taken out of this
  session: the check and the write are one atomic step.
* `leave(session_id, participant_id)` takes them out; unknown ids are ignored (leaving always
  works).
* `set_held(session_id, participant_id, held)` changes the `held` flag of someone present; it
  does nothing for someone not present (it never makes anyone present).
* `claim_credential(jti, ttl_seconds)` is True once per jti within `ttl_seconds`, then False:
  single-use media credentials.
* `mark_removed(session_id, participant_id)` takes them out of the session and keeps them out
  (for `removed_ttl_seconds`, default 24 h): `enter` refuses them meanwhile.
* `unmark_removed(session_id, participant_id)` undoes that (the host let them back in).
* Every presence records the process that entered it (`process_id`, random unless given);
  `set_held` keeps that owner. `heartbeat(ttl_seconds)` says this process is alive for that
  long; `alive(process_ids)` names those whose heartbeat has not run out; `owned_presences()`
  lists every presence with its owner; `remove_orphan(orphan)` takes a presence out only if that
  owner still owns it and still has no heartbeat, in one atomic step (see `domain/liveness.py`).
* `claim_authority(session_id, url, ttl_seconds)` takes, renews or reports the session's lease
  (one authority per live session, with a fencing counter that grows at every change of owner);
  taking it over drops the former owner's presences of that session in the same atomic step.
  `release_authority(session_id, fence)` gives it up; `authority_holders(session_ids)` says who
  holds each lease now (None: nobody). `set_held(..., fence=f)` writes only
  while `f` is the session's current fence (False otherwise): a former owner cannot act.
* `ping()` returns when the state can be read and raises `LiveStateUnavailable` otherwise. Every
  method may raise `LiveStateUnavailable`; callers fail closed on it (hold children, refuse
  admissions), except for exits, which must still be let through.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Generic, TypeVar

from gateway.domain.liveness import Authority, OwnedPresence
from gateway.domain.models import Presence

__all__ = [
    "REMOVED_TTL_SECONDS",
    "InProcessLiveState",
    "LiveStateUnavailable",
    "ParticipantRemoved",
]

REMOVED_TTL_SECONDS = 24 * 3600

K = TypeVar("K")


class LiveStateUnavailable(Exception):
    """The live state cannot be read or written right now (e.g. Redis is down): fail closed."""


class ParticipantRemoved(Exception):
    """`enter` for someone removed from this session: they may not come back."""

    def __init__(self, session_id: str, participant_id: str) -> None:
        super().__init__(f"participant {participant_id} was removed from session {session_id}")
        self.session_id = session_id
        self.participant_id = participant_id


class InProcessLiveState:
    """One process's live state. Expiring entries (credentials, removals, heartbeats) use
    `monotonic` time and are swept as new ones are added, so memory stays bounded by what is
    live. With one process every presence is its own; the sweep finds orphans here only if this
    process missed its own heartbeat (and its reconciliation then re-enters who is connected)."""

    def __init__(
        self,
        *,
        removed_ttl_seconds: int = REMOVED_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        process_id: str | None = None,
    ) -> None:
        self._process_id = process_id or secrets.token_hex(8)
        self._sessions: dict[str, dict[str, Presence]] = {}
        self._owners: dict[tuple[str, str], str] = {}  # (session, participant) -> process
        self._heartbeats: _Expiring[str] = _Expiring()  # process ids
        self._removed: _Expiring[tuple[str, str]] = _Expiring()  # (session, participant)
        self._credentials: _Expiring[str] = _Expiring()  # jti
        self._removed_ttl = removed_ttl_seconds
        self._monotonic = monotonic
        # session -> (owner, url, fence, expires at): with one process, always this one's
        self._authority: dict[str, tuple[str, str, int, float]] = {}
        self._fence = 0

    async def present(self, session_id: str) -> Sequence[Presence]:
        return list(self._sessions.get(session_id, {}).values())

    async def enter(self, session_id: str, presence: Presence) -> Sequence[Presence]:
        if self._is_removed(session_id, presence.participant_id):
            raise ParticipantRemoved(session_id, presence.participant_id)
        present = self._sessions.setdefault(session_id, {})
        present[presence.participant_id] = presence
        self._owners[(session_id, presence.participant_id)] = self._process_id
        return list(present.values())

    async def leave(self, session_id: str, participant_id: str) -> None:
        self._owners.pop((session_id, participant_id), None)
        present = self._sessions.get(session_id)
        if present is not None:
            present.pop(participant_id, None)
            if not present:
                del self._sessions[session_id]

    async def set_held(
        self, session_id: str, participant_id: str, held: bool, fence: int | None = None
    ) -> bool:
        if fence is not None and not self._fenced(session_id, fence):
            return False
        present = self._sessions.get(session_id, {})
        presence = present.get(participant_id)
        if presence is not None and presence.held != held:
            present[participant_id] = replace(presence, held=held)
        return True

    def _fenced(self, session_id: str, fence: int) -> bool:
        held = self._authority.get(session_id)
        return held is not None and held[2] == fence and held[3] > self._monotonic()

    async def claim_authority(self, session_id: str, url: str, ttl_seconds: float) -> Authority:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        now = self._monotonic()
        held = self._authority.get(session_id)
        if held is not None and held[3] > now and held[0] != self._process_id:
            return Authority(held[0], held[1], held[2], mine=False)
        if held is not None and held[3] > now:
            self._authority[session_id] = (self._process_id, url, held[2], now + ttl_seconds)
            return Authority(self._process_id, url, held[2], mine=True)
        self._fence += 1
        for participant_id in [
            pid
            for (sid, pid), owner in self._owners.items()
            if sid == session_id and owner != self._process_id
        ]:
            await self.leave(session_id, participant_id)  # never suspends: atomic
        self._authority[session_id] = (self._process_id, url, self._fence, now + ttl_seconds)
        return Authority(self._process_id, url, self._fence, mine=True, taken_over=True)

    async def release_authority(self, session_id: str, fence: int) -> None:
        held = self._authority.get(session_id)
        if held is not None and held[0] == self._process_id and held[2] == fence:
            del self._authority[session_id]

    async def authority_holders(self, session_ids: Collection[str]) -> Mapping[str, str | None]:
        now = self._monotonic()
        holders: dict[str, str | None] = {}
        for session_id in session_ids:
            held = self._authority.get(session_id)
            holders[session_id] = held[0] if held is not None and held[3] > now else None
        return holders

    async def claim_credential(self, jti: str, ttl_seconds: int) -> bool:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be positive")
        now = self._monotonic()
        if self._credentials.live(jti, now):
            return False
        self._credentials.add(jti, now + ttl_seconds, now)
        return True

    async def mark_removed(self, session_id: str, participant_id: str) -> None:
        now = self._monotonic()
        self._removed.add((session_id, participant_id), now + self._removed_ttl, now)
        await self.leave(session_id, participant_id)

    async def unmark_removed(self, session_id: str, participant_id: str) -> None:
        self._removed.discard((session_id, participant_id))

    async def ping(self) -> None:
        return None

    @property
    def process_id(self) -> str:
        return self._process_id

    async def heartbeat(self, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        now = self._monotonic()
        self._heartbeats.add(self._process_id, now + ttl_seconds, now)

    async def alive(self, process_ids: Collection[str]) -> frozenset[str]:
        now = self._monotonic()
        return frozenset(p for p in process_ids if self._heartbeats.live(p, now))

    async def owned_presences(self) -> Sequence[OwnedPresence]:
        return [
            OwnedPresence(
                session_id, participant_id, self._owners.get((session_id, participant_id))
            )
            for session_id, present in self._sessions.items()
            for participant_id in present
        ]

    async def remove_orphan(self, orphan: OwnedPresence) -> bool:
        key = (orphan.session_id, orphan.participant_id)
        if orphan.participant_id not in self._sessions.get(orphan.session_id, {}):
            return False
        if self._owners.get(key) != orphan.owner:
            return False
        if orphan.owner is not None and self._heartbeats.live(orphan.owner, self._monotonic()):
            return False
        await self.leave(orphan.session_id, orphan.participant_id)  # never suspends: atomic
        return True

    def _is_removed(self, session_id: str, participant_id: str) -> bool:
        return self._removed.live((session_id, participant_id), self._monotonic())


class _Expiring(Generic[K]):
    """Keys with an expiry instant; expired keys are swept every `sweep_every` additions."""

    def __init__(self, sweep_every: int = 256) -> None:
        self._expires: dict[K, float] = {}
        self._sweep_every = sweep_every
        self._added = 0

    def live(self, key: K, now: float) -> bool:
        expires_at = self._expires.get(key)
        return expires_at is not None and now < expires_at

    def add(self, key: K, expires_at: float, now: float) -> None:
        self._added += 1
        if self._added >= self._sweep_every:
            self._added = 0
            for stale in [k for k, at in self._expires.items() if now >= at]:
                del self._expires[stale]
        self._expires[key] = expires_at

    def discard(self, key: K) -> None:
        self._expires.pop(key, None)

    def __len__(self) -> int:
        return len(self._expires)
