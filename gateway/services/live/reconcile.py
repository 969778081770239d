"""Reconciliation: the safety net that makes every change take effect within one round
(`GATEWAY_RECONCILE_SECONDS`, 3 s by default), whichever process it was made on.

Each round, for the live sessions of this process only (bounded by what is live):
  0. the session's lease renewed (a process that lost it lets its seats go);
  1. durable facts: one SQL read for every seat and stream here; whoever lost their standing
     (removed, invite revoked or expired, session ended, a child's consent withdrawn) is
     disconnected and told, audited; whoever left on purpose through another process (their
     durable departure count grew) is let go as a deliberate departure;
  2. the platform's own list of who is connected (events can be lost);
  3. the live state rebuilt from the platform if it was lost (children held first);
  4. supervision re-evaluated, so grace periods run out;
  5. sessions whose owner died while their people stayed connected to the platform (LiveKit)
     taken over (`takeover.py`), or their rooms closed if they ended meanwhile.
Then the sweep (one process at a time) removes presences of processes that died.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from gateway.domain.audit import AuditEvent
from gateway.domain.errors import Unavailable
from gateway.domain.liveness import orphaned
from gateway.domain.models import Grants, PersonKind, Presence
from gateway.services.live.authority import SessionAuthority
from gateway.services.live.exits import Exits
from gateway.services.live.media import Media
from gateway.services.live.recording import LiveRecording
from gateway.services.live.state import LivePorts, LiveRegistry, audit_seat
from gateway.services.live.streams import Streams
from gateway.services.live.supervision import Supervisor
from gateway.services.live.takeover import Takeover

__all__ = ["Reconciler"]

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self,
        ports: LivePorts,
        registry: LiveRegistry,
        streams: Streams,
        supervisor: Supervisor,
        exits: Exits,
        media: Media,
        authority: SessionAuthority,
        *,
        connect_timeout: timedelta,
    ) -> None:
        self._authority = authority
        self._durable_lock = asyncio.Lock()
        self._platform_lock = asyncio.Lock()  # a hinted session and the round take turns
        self._ports = ports
        self._registry = registry
        self._streams = streams
        self._supervisor = supervisor
        self._exits = exits
        self._media = media
        self._connect_timeout = connect_timeout
        self.recording: LiveRecording | None = None  # its scope re-checked with the facts
        self._takeover = Takeover(ports, registry, authority, supervisor, self._rebuild)

    async def reconcile(self) -> None:
        for session_id in self._registry.session_ids():
            if not await self._authority.renew(session_id):
                await self._exits.abandon(session_id)
        await self.apply_durable_facts()
        for session_id in self._registry.session_ids():
            async with self._platform_lock:
                await self._against_platform(session_id)
        await self._authority.release_idle(set(self._registry.session_ids()))
        async with self._platform_lock:
            await self._takeover.run()

    async def reconcile_session(self, session_id: str) -> None:
        """Steps 2 to 4 for one session now, if this process holds it (a platform hint, e.g.
        a LiveKit webhook, reached some process): the platform's own list decides, as in
        every round; the hint itself decides nothing."""
        if session_id not in set(self._registry.session_ids()):
            return
        async with self._platform_lock:
            await self._against_platform(session_id)

    async def _against_platform(self, session_id: str) -> None:
        now = self._ports.clock.now()
        try:
            listed = await self._ports.platform.participants(session_id)
        except Exception as exc:
            # The platform's list is the truth for who is connected: without it nobody
            # is taken for gone or arrived this round (supervision still runs below).
            if isinstance(exc, Unavailable):
                log.warning("platform unavailable: its participant list is read next round")
            else:
                log.exception("platform's participant list unreadable; next round")
            await self._supervisor.evaluate(session_id)
            return
        connected = {p.identity for p in listed if p.connected}
        for seat in self._registry.seats(session_id):
            if seat.connected and seat.identity not in connected:
                await self._exits.gone(seat, "media.vanished", deliberate=False)
            elif not seat.connected and seat.identity in connected:
                await self._media.connected(seat)
            elif not seat.connected and now - seat.joined_at > self._connect_timeout:
                await self._exits.gone(seat, "media.never_connected", deliberate=False)
        await self._rebuild(session_id, connected)
        await self._supervisor.evaluate(session_id)
        self._exits.forget_if_idle(session_id)

    async def apply_durable_facts(self) -> None:
        """Step 1: one read of the durable facts behind every seat and stream here (also run
        at once when another process nudges; one at a time)."""
        async with self._durable_lock:
            await self._apply_durable_facts()
        if self.recording is not None:  # a consent withdrawn: their recording stops now
            try:
                await self.recording.recheck()
            except Exception:
                log.exception("recording scope not re-checked this time; tried again next round")

    async def _apply_durable_facts(self) -> None:
        seats = self._registry.active_seats()
        gone = self._registry.gone_counted_seats()
        watchers = self._streams.watchers()
        invite_ids = {s.invite_id for s in (*seats, *gone)} | {w.invite_id for w in watchers}
        if not invite_ids:
            return
        try:
            records = await self._ports.store.join_records(invite_ids)
        except Exception:
            log.exception("durable facts unreadable this round; tried again next round")
            return
        reasons: dict[str, tuple[str, ...]] = {}
        for invite_id in invite_ids:
            record = records.get(invite_id)
            reasons[invite_id] = (
                await self._ports.admission.standing(record)
                if record is not None
                else ("invite_revoked",)
            )
        ended: set[str] = set()
        for seat in seats:
            lost = reasons[seat.invite_id]
            if lost:
                if "session_ended" in lost:
                    ended.add(seat.session_id)
                await self._exits.disconnect(seat, lost[0])
                continue
            record = records[seat.invite_id]
            if record.departures > seat.departures:  # left on purpose through another process
                seat.departures = record.departures
                await self._exits.let_go(seat, "participant.left_elsewhere")
        for seat in gone:  # media dropped, then a "leave" reached another process
            record = records.get(seat.invite_id)
            if record is not None and record.departures > seat.departures:
                seat.departures = record.departures
                await self._exits.left_on_purpose(seat)
        for watcher in watchers:
            lost = reasons[watcher.invite_id]
            if lost:
                self._streams.push(
                    watcher.identity,
                    {
                        "type": "ended" if lost[0] == "session_ended" else "removed",
                        "reason": lost[0],
                    },
                )
                if "session_ended" in lost:
                    ended.add(watcher.session_id)
        for session_id in ended:
            await self._exits.close_session(session_id)

    async def _rebuild(self, session_id: str, connected: set[str]) -> None:
        """Live state lost (e.g. Redis restarted)? Re-enter whoever the platform says is
        connected, children held until supervision has counted the adults again."""
        try:
            present = {p.participant_id for p in await self._ports.live.present(session_id)}
            for seat in self._registry.seats(session_id):
                if seat.identity not in connected or seat.participant_id in present:
                    continue
                if seat.vetted_adult and not seat.counted:
                    continue  # being counted right now (media.connected); not lost

                child = seat.person_kind is PersonKind.CHILD
                await self._ports.live.enter(
                    session_id,
                    Presence(
                        participant_id=seat.participant_id,
                        role=seat.role,
                        person_kind=seat.person_kind,
                        vetted_adult=seat.vetted_adult,
                        held=child,
                    ),
                )
                seat.counted = seat.vetted_adult
                if child:
                    await self._ports.platform.set_grants(session_id, seat.identity, Grants.none())
                await audit_seat(self._ports.store, seat, "live_state.rebuilt")
        except Exception:
            log.exception("live state still unavailable; children stay held")

    # presences outliving their process -------------------------------------------------------
    async def sweep(self) -> None:
        """Remove presences entered by processes that stopped heartbeating (crashed, killed),
        so no dead process's adult is counted (R4). A global job: one process at a time runs it
        under the leader lease. Each removal is audited (ids only), then supervision is
        re-evaluated here; the processes holding seats in those sessions re-evaluate at their
        next reconciliation."""
        live = self._ports.live
        owned = await live.owned_presences()
        alive = await live.alive({p.owner for p in owned if p.owner is not None})
        touched: dict[str, str | None] = {}
        for orphan in orphaned(owned, alive):
            if not await live.remove_orphan(orphan):
                continue  # its owner came back, or someone re-entered it meanwhile
            if orphan.session_id not in touched:
                touched[orphan.session_id] = await self._org_of(orphan.session_id)
            await self._ports.store.record(
                [
                    AuditEvent(
                        "live_state.orphan_removed",
                        "gateway",
                        touched[orphan.session_id],
                        session_id=orphan.session_id,
                        data={"participant": orphan.participant_id, "process": orphan.owner},
                    )
                ]
            )
        for session_id in touched:
            await self._supervisor.evaluate(session_id)

    async def _org_of(self, session_id: str) -> str | None:
        """Known here if this process has the session live, else looked up (rare: only after
        a process died)."""
        org_id = self._registry.org_of(session_id)
        if org_id is not None:
            return org_id
        for organisation in await self._ports.store.organisations():
            if await self._ports.store.session(organisation.id, session_id) is not None:
                return organisation.id
        return None
