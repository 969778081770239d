"""Sessions whose owner died while their people stayed connected to the platform (LiveKit):
another process takes their authority within a round of the lease running out, without
waiting for someone to join again (`domain/takeover.py` decides; this carries it out).

Each round, one call asks the platform which rooms are occupied; the rooms of sessions this
process runs are skipped, and one live-state read says who holds the others' leases. Only a
room with nobody holding its lease costs more (two SQL reads: who joined it, their standing),
and that happens once per owner's death:
- the session still on: the lease is claimed (atomically, fenced: one survivor wins), the
  platform's connections of people who still stand are vouched for and everything else
  disconnected, their seats rebuilt here with children held first (as when the live state
  is lost), and supervision evaluated at once: a child is released only once two adults are
  counted, and held again as soon as one goes. Audited `authority.taken_over`.
- the session ended meanwhile: the room is closed, so everyone in it is disconnected.
  Audited `authority.room_closed`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from gateway.domain.admission import counts_as_vetted_adult
from gateway.domain.audit import AuditEvent
from gateway.domain.hours import local_date
from gateway.domain.takeover import Lease, RoomAction, RoomFacts, decide, leases, unowned
from gateway.services.live.authority import SessionAuthority
from gateway.services.live.state import LivePorts, LiveRegistry, Seat
from gateway.services.live.supervision import Supervisor
from gateway.services.ports import JoinRecord

__all__ = ["Takeover"]

log = logging.getLogger(__name__)

Rebuild = Callable[[str, set[str]], Awaitable[None]]


class Takeover:
    def __init__(
        self,
        ports: LivePorts,
        registry: LiveRegistry,
        authority: SessionAuthority,
        supervisor: Supervisor,
        rebuild: Rebuild,
    ) -> None:
        self._ports = ports
        self._registry = registry
        self._authority = authority
        self._supervisor = supervisor
        self._rebuild = rebuild

    async def run(self) -> None:
        ports = self._ports
        try:
            occupied = await ports.platform.occupied_rooms()
        except Exception:
            log.warning("the platform's rooms are unreadable; abandoned sessions next round")
            return
        rooms = unowned(occupied, self._registry.session_ids())
        if not rooms:
            return
        try:
            holders = await ports.live.authority_holders(rooms)
        except Exception:
            log.warning("live state unavailable; abandoned sessions are looked at next round")
            return
        for room, lease in leases(rooms, holders, ports.live.process_id).items():
            if lease is not Lease.LAPSED:
                continue
            try:
                records = await self._joined(room)
            except Exception:
                log.exception("durable facts of an abandoned session unreadable; next round")
                continue
            ended = None if not records else records[0].session.ended_at is not None
            action = decide(RoomFacts(lease, ended))
            if action is RoomAction.CLAIM:
                await self._take_over(room, records)
            elif action is RoomAction.CLOSE:
                await self._close(room, records[0].session.org_id)

    async def _joined(self, session_id: str) -> Sequence[JoinRecord]:
        """The durable record of everyone who joined the session (their latest invite)."""
        invites = await self._ports.store.joined_invites(session_id)
        if not invites:
            return []
        return list((await self._ports.store.join_records(invites.values())).values())

    async def _take_over(self, session_id: str, records: Sequence[JoinRecord]) -> None:
        ports = self._ports
        org_id = records[0].session.org_id
        fence = await self._authority.claim_abandoned(session_id)
        if fence is None:
            return  # a live process holds it after all (or won the race)
        try:
            standing = {
                r.participant.masked_identity: r
                for r in records
                if not await ports.admission.standing(r)
            }
            adopted = await ports.platform.adopt(session_id, org_id, set(standing))
            policy = await ports.admission.policy_of(org_id)
        except Exception:
            log.exception("an abandoned session could not be taken over; next round")
            await self._authority.give_up(session_id)
            return
        if not adopted:  # nobody who stands is there (an egress lingering, say): nothing to run
            await self._authority.give_up(session_id)
            return
        now = ports.clock.now()
        self._registry.open_session(session_id, org_id, policy)
        for listed in adopted:
            record = standing[listed.identity]
            vetted = counts_as_vetted_adult(
                record.person, record.participant.role, policy, local_date(now, policy)
            )
            self._registry.seat_down(
                Seat(
                    org_id=org_id,
                    session_id=session_id,
                    participant_id=record.participant.id,
                    invite_id=record.invite.id,
                    identity=listed.identity,
                    display_name=record.participant.display_name,
                    role=record.participant.role,
                    person_kind=record.participant.person_kind,
                    joined_at=now,
                    vetted_adult=vetted,
                    departures=record.departures,
                    connected=listed.connected,
                    counted=vetted and listed.connected,  # entered just below
                )
            )
        # Children held first, adults counted again, then the two-adult rule applied now:
        # before the audit, so a store that cannot write it does not delay the holds (the
        # round is repeated for this session from now on like any other it runs).
        await self._rebuild(session_id, {p.identity for p in adopted if p.connected})
        await self._supervisor.evaluate(session_id)
        await self._audit(
            "authority.taken_over",
            org_id,
            session_id,
            {"process": ports.live.process_id, "fence": fence, "seats": len(adopted)},
        )

    async def _close(self, session_id: str, org_id: str) -> None:
        """Ended while its owner was dead: nobody may stay in its room. Under the lease, so
        of several survivors one closes it (and audits it) once."""
        if await self._authority.claim_abandoned(session_id) is None:
            return
        try:
            await self._ports.platform.close_room(session_id)
            await self._audit(
                "authority.room_closed",
                org_id,
                session_id,
                {"process": self._ports.live.process_id},
            )
        except Exception:
            log.exception("an ended session's room could not be closed; next round")
        finally:
            await self._authority.give_up(session_id)

    async def _audit(
        self, kind: str, org_id: str, session_id: str, data: dict[str, object]
    ) -> None:
        await self._ports.store.record(
            [AuditEvent(kind, "gateway", org_id, session_id=session_id, data=data)]
        )
