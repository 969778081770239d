"""The two-adult rule carried out (R4): `domain.supervision.evaluate_supervision` decides, this
module holds or releases this process's children on the platform, alerts, records the breach
and its incident, and ends the session when the policy says so (`supervision.action`).

If the live state cannot be read, this process's children are held (fail closed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from gateway.domain.admission import grants_for
from gateway.domain.audit import AuditEvent
from gateway.domain.models import Grants, Outcome, PersonKind, Presence, SessionRole
from gateway.domain.supervision import SupervisionVerdict, evaluate_supervision
from gateway.services.live.authority import SessionAuthority
from gateway.services.live.state import Event, LivePorts, LiveRegistry, LiveSession, audit_seat
from gateway.services.live.streams import Streams
from gateway.services.live.views import state_event

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)
EndSession = Callable[[str, str], Awaitable[None]]  # (session id, reason)


class Supervisor:
    def __init__(
        self,
        ports: LivePorts,
        registry: LiveRegistry,
        streams: Streams,
        authority: SessionAuthority,
    ) -> None:
        self._authority = authority
        self._ports = ports
        self._registry = registry
        self._streams = streams
        self.end_session: EndSession | None = None  # set by the facade (exits)
        # per session, the evaluation waiting for the lock, shared by callers arriving meanwhile
        self._waiting: dict[str, asyncio.Future[SupervisionVerdict | None]] = {}

    async def evaluate(self, session_id: str, *, adult_left_on_purpose: bool = False) -> None:
        """Re-apply the two-adult rule to one session, now. `adult_left_on_purpose`: a counted
        adult has just left on purpose or been removed, so no grace period applies."""
        entry = self._registry.session(session_id)
        fence = self._authority.fence(session_id)
        if entry is None or fence is None:
            return  # only the session's owner evaluates supervision and acts on it
        if adult_left_on_purpose or not (entry.lock.locked() or session_id in self._waiting):
            async with entry.lock:
                verdict = await self._evaluate(session_id, entry, fence, adult_left_on_purpose)
        else:
            verdict = await self._next_evaluation(session_id, entry, fence)
        if verdict is not None and verdict.end_session and self.end_session is not None:
            await self.end_session(session_id, "supervision_breach")

    async def _next_evaluation(
        self, session_id: str, entry: LiveSession, fence: int
    ) -> SupervisionVerdict | None:
        """While the session is being evaluated: the outcome of an evaluation that starts after
        this call. Evaluations of one session run one at a time (under its lock); callers
        arriving while one waits for the lock share it: it has not read the live state yet, so
        it sees everything each of them would have seen. Twenty joins to one session then cost
        two evaluations, not twenty in a row."""
        waiting = self._waiting.get(session_id)
        if waiting is None:
            waiting = asyncio.ensure_future(self._evaluate_when_free(session_id, entry, fence))
            self._waiting[session_id] = waiting
        # shielded: one caller giving up (its request cancelled) must not cancel the others'
        return await asyncio.shield(waiting)

    async def _evaluate_when_free(
        self, session_id: str, entry: LiveSession, fence: int
    ) -> SupervisionVerdict | None:
        try:
            await entry.lock.acquire()
        finally:
            self._waiting.pop(session_id, None)  # from here on, later callers queue a new one
        try:
            return await self._evaluate(session_id, entry, fence, False)
        finally:
            entry.lock.release()

    async def _evaluate(
        self, session_id: str, entry: LiveSession, fence: int, adult_left_on_purpose: bool
    ) -> SupervisionVerdict | None:
        ports = self._ports
        now = ports.clock.now()
        try:
            present = list(await ports.live.present(session_id))
        except Exception:
            log.exception("live state unreadable: holding every child (fail closed)")
            for seat in self._registry.seats(session_id):
                if seat.person_kind is PersonKind.CHILD:
                    await ports.platform.set_grants(session_id, seat.identity, Grants.none())
                    self._streams.push(
                        seat.identity,
                        state_event(Outcome.HOLD, Grants.none(), ["live_state_unavailable"]),
                    )
            return None
        verdict = evaluate_supervision(
            present,
            entry.policy,
            now,
            entry.below_since,
            adult_left_on_purpose=adult_left_on_purpose,
        )
        entry.below_since = verdict.below_since
        seats = {seat.participant_id: seat for seat in self._registry.seats(session_id)}
        for participant_id in verdict.hold:
            # set_held, not enter: never brings back someone who left meanwhile, and keeps the
            # presence's owner (the process the child is connected to).
            if not await ports.live.set_held(session_id, participant_id, True, fence):
                self._lost(session_id)
                return None
            held_seat = seats.get(participant_id)
            if held_seat is not None:
                seat = held_seat
                await ports.platform.set_grants(session_id, seat.identity, Grants.none())
                self._streams.push(
                    seat.identity,
                    state_event(Outcome.HOLD, Grants.none(), ["awaiting_supervision"]),
                )
                await audit_seat(ports.store, seat, "supervision.hold", verdict.as_dict())
        for participant_id in verdict.release:
            if not await ports.live.set_held(session_id, participant_id, False, fence):
                self._lost(session_id)
                return None
            released = seats.get(participant_id)
            if released is not None:
                seat = released
                grants = grants_for(seat.role, entry.policy)
                await ports.platform.set_grants(session_id, seat.identity, grants)
                self._streams.push(
                    seat.identity, state_event(Outcome.ADMIT, grants, ["supervised"])
                )
                await audit_seat(ports.store, seat, "supervision.release", verdict.as_dict())
        if verdict.alert or verdict.incident:
            await self._raise(session_id, entry, verdict)
        held = frozenset(
            p.participant_id
            for p in present
            if (p.held or p.participant_id in verdict.hold)
            and p.participant_id not in verdict.release
        )
        await self._mirror(session_id, entry, present, held, verdict)
        self._push_roster(session_id, verdict, held)
        return verdict

    def _lost(self, session_id: str) -> None:
        """The live state refused our fence: another process owns the session now. Stop
        acting; reconciliation lets this process's seats go."""
        log.warning("a former owner's write was refused; this process stops acting")
        self._authority.lose(session_id)

    async def _mirror(
        self,
        session_id: str,
        entry: LiveSession,
        present: list[Presence],
        held: frozenset[str],
        verdict: SupervisionVerdict,
    ) -> None:
        """The live state's held flag is the truth for every process: a hold or release that
        another process decided (it saw the adults leave or arrive first) is applied here to
        the media of this process's seats, so a child is never left unheld because the
        decision was taken elsewhere."""
        decided_here = set(verdict.hold) | set(verdict.release)
        in_state = {p.participant_id for p in present}
        try:
            listed = await self._ports.platform.participants(session_id)
        except Exception:
            log.exception("platform's participant list unavailable; mirrored next round")
            return
        granted = {p.identity: p.grants for p in listed}
        for seat in self._registry.seats(session_id):
            have = granted.get(seat.identity)
            if (
                seat.vetted_adult
                or have is None
                or seat.participant_id in decided_here
                or seat.participant_id not in in_state
            ):
                continue
            hold = seat.participant_id in held
            want = Grants.none() if hold else grants_for(seat.role, entry.policy)
            if (have.can_publish, have.can_subscribe) == (want.can_publish, want.can_subscribe):
                continue
            await self._ports.platform.set_grants(session_id, seat.identity, want)
            outcome, reason = (
                (Outcome.HOLD, "awaiting_supervision") if hold else (Outcome.ADMIT, "supervised")
            )
            self._streams.push(seat.identity, state_event(outcome, want, [reason]))
            kind = "supervision.hold" if hold else "supervision.release"
            await audit_seat(self._ports.store, seat, kind, {"mirrored": True, **verdict.as_dict()})

    async def _raise(
        self, session_id: str, entry: LiveSession, verdict: SupervisionVerdict
    ) -> None:
        ports = self._ports
        await ports.alerts.publish(
            entry.org_id,
            session_id,
            {
                "kind": "supervision",
                "state": verdict.state,
                "vetted_adults": verdict.vetted_adults,
                "required": verdict.required,
            },
        )
        if not verdict.incident:
            return
        await ports.store.record(
            [
                AuditEvent(
                    "supervision.breach",
                    "gateway",
                    entry.org_id,
                    session_id=session_id,
                    data=verdict.as_dict(),
                )
            ]
        )
        if ports.record_incident is not None:
            actions = ["held_children", "alerted_host"]  # the DSL: queued with the incident
            if verdict.end_session:
                actions.append("ended_session")
            await ports.record_incident(
                entry.org_id,
                session_id,
                "supervision_breach",
                f"Fewer than {verdict.required} vetted adults present; children held.",
                actions,
            )

    def roster(self, session_id: str, held: frozenset[str] = frozenset()) -> list[Event]:
        def state(left: bool, participant_id: str) -> str:
            if left:
                return "left"
            return "held" if participant_id in held else "admitted"

        return [
            {**seat.public(), "state": state(seat.left, seat.participant_id)}
            for seat in self._registry.seats(session_id, with_left=True)
        ]

    def _push_roster(
        self, session_id: str, verdict: SupervisionVerdict, held: frozenset[str]
    ) -> None:
        event: Event = {
            "type": "roster",
            "participants": self.roster(session_id, held),
            "supervision": {
                "vetted_adults": verdict.vetted_adults,
                "required": verdict.required,
                "state": verdict.state,
            },
        }
        for seat in self._registry.seats(session_id):
            if seat.role is SessionRole.HOST:
                self._streams.push(seat.identity, event)
