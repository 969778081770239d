"""One authority per live session (DESIGN.md §3): the process holding the session's lease in
the live state is the only one that seats participants, carries their media (the embedded
relay keeps a session's media in one process) and evaluates supervision for it.

A join reaching another process is answered with the owner's address (421
`session_elsewhere`, with `location`), and the join page goes there. The owner renews the lease
at every reconciliation while the session is live here, and gives it up when the session is
idle. A process that finds its lease gone (it stalled past the lease, or the live state was
lost and someone else took it) stops acting: it lets its seats go, and their browsers re-join
at the new owner. Supervision's writes carry the lease's fencing counter, and the live state
refuses those of a former owner. When an owner dies, the next join after the lease ran out
makes another process the owner; taking over drops the former owner's presences (its media
died with it), so children re-joining are held until two adults have connected again. On a
platform whose connections outlive the owner (LiveKit), another process takes the session
over without waiting for a join, within a round of the lease running out (`takeover.py`).

Hosts' and participants' other requests (leave, remove, end, event streams, concerns) may
reach any process: they are durable in SQL first, and the owner applies them within a round.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime, timedelta

from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.liveness import Authority
from gateway.services.live.state import LivePorts

__all__ = ["SessionAuthority", "SessionElsewhere"]

log = logging.getLogger(__name__)


class SessionElsewhere(Refusal):
    """This session is live on another gateway process: join there."""

    def __init__(self, location: str) -> None:
        super().__init__(
            ErrorCode.SESSION_ELSEWHERE, "This session is run by another gateway; join there."
        )
        self.location = location


class SessionAuthority:
    def __init__(self, ports: LivePorts, url: str, ttl_seconds: float) -> None:
        self._ports = ports
        self._url = url
        self._ttl = ttl_seconds
        self._held: dict[str, Authority] = {}  # sessions this process owns
        self._renewed: dict[str, datetime] = {}  # when each lease was last taken or renewed
        self._claiming: dict[str, asyncio.Future[None]] = {}  # claims in flight, per session

    async def claim(self, session_id: str) -> None:
        """Before anything of a join is recorded: be the session's owner, or send the
        browser to it. Fails closed when the live state cannot say who owns it. A lease taken
        or renewed within the last third of its term is still ours: no round trip then."""
        renewed = self._renewed.get(session_id)
        if (
            session_id in self._held
            and renewed is not None
            and self._ports.clock.now() - renewed < timedelta(seconds=self._ttl / 3)
        ):
            return
        # Joins arriving together when the lease is due share one claim (one round trip),
        # and each of them gets its outcome.
        claiming = self._claiming.get(session_id)
        if claiming is None:
            claiming = asyncio.ensure_future(self._claim_now(session_id))
            self._claiming[session_id] = claiming
            claiming.add_done_callback(functools.partial(self._claimed, session_id))
        await asyncio.shield(claiming)  # one caller giving up must not cancel the others'

    def _claimed(self, session_id: str, claim: asyncio.Future[None]) -> None:
        if self._claiming.get(session_id) is claim:
            del self._claiming[session_id]
        if not claim.cancelled():
            claim.exception()  # retrieved: its callers were told (or all gave up)

    async def _claim_now(self, session_id: str) -> None:
        try:
            authority = await self._ports.live.claim_authority(session_id, self._url, self._ttl)
        except Exception as exc:
            raise Unavailable(
                ErrorCode.LIVE_STATE_UNAVAILABLE,
                "The gateway cannot check who runs this session right now; try again shortly.",
            ) from exc
        if not authority.mine:
            self.lose(session_id)
            raise SessionElsewhere(authority.url)
        self._keep(session_id, authority)

    async def claim_abandoned(self, session_id: str) -> int | None:
        """Take over a session whose lease lapsed while its people stayed connected to the
        platform (its owner died): the fence to act under, or None when a live process holds
        it (or this one already did: a join here is running it). The live state's claim is
        one atomic step, so of two processes trying at once, one wins."""
        try:
            authority = await self._ports.live.claim_authority(session_id, self._url, self._ttl)
        except Exception:
            log.warning("live state unavailable; an abandoned session is looked at next round")
            return None
        if not authority.mine:
            return None
        self._keep(session_id, authority)
        return authority.fence if authority.taken_over else None

    async def give_up(self, session_id: str) -> None:
        """Release a lease this process holds and will not use (nothing to take over)."""
        authority = self._held.get(session_id)
        if authority is not None:
            self.lose(session_id)
            await self.release(session_id, authority.fence)

    def fence(self, session_id: str) -> int | None:
        """The fencing counter this process acts under, None when it does not own it."""
        authority = self._held.get(session_id)
        return authority.fence if authority is not None else None

    async def renew(self, session_id: str) -> bool:
        """Still the owner? (False: stop acting for this session.) With the live state down
        nobody can take the lease either: keep the seats (children are held meanwhile)."""
        try:
            authority = await self._ports.live.claim_authority(session_id, self._url, self._ttl)
        except Exception:
            log.warning("live state unavailable; the session's lease cannot be renewed")
            return session_id in self._held
        if not authority.mine:
            self.lose(session_id)
            return False
        self._keep(session_id, authority)  # renewed (or re-taken, under a new fence)
        return True

    def _keep(self, session_id: str, authority: Authority) -> None:
        self._held[session_id] = authority
        self._renewed[session_id] = self._ports.clock.now()

    def lose(self, session_id: str) -> None:
        self._held.pop(session_id, None)
        self._renewed.pop(session_id, None)

    async def release_idle(self, live_sessions: set[str]) -> None:
        """Give up the leases of sessions no longer live here (bounded by what is live). A
        lease taken moments ago is kept: its join may still be running (a password check)."""
        now = self._ports.clock.now()
        recent = timedelta(seconds=self._ttl / 3)
        idle = [
            s
            for s in self._held
            if s not in live_sessions and now - self._renewed.get(s, now - recent) >= recent
        ]
        for session_id in idle:
            authority = self._held[session_id]
            self.lose(session_id)
            await self.release(session_id, authority.fence)

    async def release(self, session_id: str, fence: int) -> None:
        try:
            await self._ports.live.release_authority(session_id, fence)
        except Exception:
            log.warning("live state unavailable; the lease will run out by itself")
