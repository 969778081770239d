"""Exits and the powers that take people out: leaving, removal by the host, ending a session,
and disconnecting whoever lost their standing (removed, revoked, ended, consent withdrawn).

Every exit is written to SQL first (a departure, a removal, an end), so it holds whichever
process the request reached and whatever the live state has lost; then this process applies it
to the seats it holds at once, and every other process at its next reconciliation (which re-reads
those durable facts each round). Live-state and platform trouble never blocks an exit: it is
logged, and the exit stands.

A counted adult who leaves on purpose or is removed is no dropped connection: supervision is
re-evaluated with no grace period (children held at once, incident opened).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.models import SessionRole
from gateway.services.admission import DeviceOf
from gateway.services.live.recording import LiveRecording
from gateway.services.live.state import LivePorts, LiveRegistry, Seat, audit_seat
from gateway.services.live.streams import Streams
from gateway.services.live.supervision import Supervisor
from gateway.services.ports import DurableFactsChanged, JoinRecord, Organisation

__all__ = ["Exits"]

log = logging.getLogger(__name__)


class Exits:
    def __init__(
        self,
        ports: LivePorts,
        registry: LiveRegistry,
        streams: Streams,
        supervisor: Supervisor,
    ) -> None:
        self._ports = ports
        self._registry = registry
        self._streams = streams
        self._supervisor = supervisor
        self.changed: DurableFactsChanged | None = None  # the nudge (set by the facade)
        self.recording: LiveRecording | None = None  # their recording stops as they go

    # leaving ---------------------------------------------------------------------------------
    async def leave(self, token: str, device_of: DeviceOf) -> None:
        record = await self._ports.admission.leave(token, device_of)  # durable first
        await self._nudge()
        seat = self._registry.seat(record.participant.masked_identity)
        if seat is None:
            return
        seat.departures = record.departures + 1  # this departure is handled here
        try:
            if not seat.left:
                await self.let_go(seat, None)
            elif seat.counted_when_left:  # their media dropped a moment before they said so
                await self.left_on_purpose(seat)
        except Unavailable:
            # Leaving never fails (it is durable above). A platform that cannot be reached
            # right now gets the holds this departure calls for from the next reconciliation
            # round, which evaluates supervision again against the platform's own list.
            log.warning("platform unavailable after a departure; supervision re-applied next round")

    async def left_on_purpose(self, seat: Seat) -> None:
        """A counted adult who already went turns out to have left on purpose: no grace."""
        seat.counted_when_left = False
        await self._supervisor.evaluate(seat.session_id, adult_left_on_purpose=True)

    async def gone(self, seat: Seat, kind: str | None, *, deliberate: bool) -> None:
        """This seat's person is no longer in the session (audited as `kind` unless None)."""
        if seat.left:
            return
        counted = seat.counted
        seat.left = True
        seat.connected = False
        seat.counted = False
        seat.counted_when_left = counted and not deliberate
        await self._quietly(self._ports.live.leave(seat.session_id, seat.participant_id))
        if not deliberate:
            # Whoever is taken for gone is off the platform too: on LiveKit a connection the
            # gateway stopped seeing (a reconnect, a lost list) could otherwise linger with its
            # grants; the page then joins again and is seated anew. (let_go removes the others.)
            await self._quietly(self._ports.platform.remove(seat.session_id, seat.identity))
        if kind is not None:
            await audit_seat(self._ports.store, seat, kind)
        await self._supervisor.evaluate(
            seat.session_id, adult_left_on_purpose=deliberate and counted
        )
        if self.recording is not None:  # whoever is gone is recorded no more (after the
            await self._quietly(self.recording.gone(seat))  # children's safety is seen to)
        self.forget_if_idle(seat.session_id)

    async def disconnect(self, seat: Seat, reason: str) -> None:
        """Take out someone who lost their standing (reason: a standing reason), audited."""
        self._streams.push(seat.identity, {"type": _final_event(reason), "reason": reason})
        if not seat.left:
            await audit_seat(
                self._ports.store, seat, "participant.disconnected", {"reason": reason}
            )
        await self.let_go(seat, None)

    async def let_go(self, seat: Seat, kind: str | None) -> None:
        """A deliberate exit: out of the count first (so the relay's "left" event that the
        removal causes is not mistaken for a dropped connection), then off the platform."""
        await self.gone(seat, kind, deliberate=True)
        await self._quietly(self._ports.platform.remove(seat.session_id, seat.identity))

    def forget_if_idle(self, session_id: str) -> None:
        self._registry.drop_if_idle(session_id, self._streams.watches(session_id))

    # host powers -----------------------------------------------------------------------------
    async def remove(self, token: str, device_of: DeviceOf, identity: str) -> None:
        host = await self._host(token, device_of)
        org_id, session_id = host.invite.org_id, host.invite.session_id
        target = next(
            (
                p
                for p in await self._ports.store.participants(org_id, session_id)
                if p.masked_identity == identity
            ),
            None,
        )
        if target is None or target.id == host.participant.id:
            raise Refusal(ErrorCode.NOT_FOUND, "No such participant in this session.")
        # Removal is for good and durable: the participant is marked removed and every invite
        # of theirs revoked, so no device can come back, on any process.
        await self._ports.store.remove_participant(
            org_id,
            target.id,
            self._ports.clock.now(),
            [
                AuditEvent(
                    "participant.removed",
                    host.participant.masked_identity,
                    org_id,
                    session_id=session_id,
                    data={"participant": target.id},
                )
            ],
        )
        # Out of every process's count at once (the live state is shared); the process holding
        # their media disconnects them now if it is this one, else when nudged (or at its next
        # reconciliation, if the nudge is lost).
        await self._nudge()
        await self._quietly(self._ports.live.mark_removed(session_id, target.id))
        self._streams.push(identity, {"type": "removed", "reason": "participant_removed"})
        seat = self._registry.seat_in(identity)
        if seat is not None:
            await self.disconnect(seat, "participant_removed")
        else:  # their seat is on another process, which disconnects them within a round
            entry = self._registry.session(session_id)
            counting = entry is not None and (
                target.role.value in entry.policy.supervision.counting_roles
            )
            await self._supervisor.evaluate(session_id, adult_left_on_purpose=counting)

    async def let_back_in(
        self, token: str, device_of: DeviceOf, identity: str
    ) -> tuple[Organisation, str, str, str]:
        """The host lets a participant they removed come back: the removal is cleared durably
        (audited, ids only) and its live echo dropped. Returns (organisation, session id,
        participant id, actor) for a new personal invite; the old ones stay revoked, and the
        participant comes back through the normal join, under every rule (R-two adults,
        consent)."""
        host = await self._host(token, device_of)  # a removed or revoked host cannot
        org_id, session_id = host.invite.org_id, host.invite.session_id
        target = next(
            (
                p
                for p in await self._ports.store.participants(org_id, session_id)
                if p.masked_identity == identity
            ),
            None,
        )
        org = await self._ports.store.organisation(org_id)
        if target is None or target.id == host.participant.id or org is None:
            raise Refusal(ErrorCode.NOT_FOUND, "No such participant in this session.")
        actor = host.participant.masked_identity
        cleared = await self._ports.store.let_back_in(
            org_id,
            target.id,
            [
                AuditEvent(
                    "participant.let_back_in",
                    actor,
                    org_id,
                    session_id=session_id,
                    data={"participant": target.id},
                )
            ],
        )
        if not cleared:
            raise Refusal(ErrorCode.CONFLICT, "That participant has not been removed.")
        # Best effort: SQL is the truth; a marker left behind expires on its own.
        await self._quietly(self._ports.live.unmark_removed(session_id, target.id))
        return org, session_id, target.id, actor

    async def end(self, token: str, device_of: DeviceOf) -> None:
        host = await self._host(token, device_of)
        await self._end(
            host.invite.org_id, host.invite.session_id, host.participant.masked_identity, {}
        )

    async def end_for_supervision(self, session_id: str, reason: str) -> None:
        """`supervision.action = "end_session"`: a breach ends the session."""
        org_id = self._registry.org_of(session_id)
        if org_id is not None:
            await self._end(org_id, session_id, "gateway", {"reason": reason})

    async def _end(self, org_id: str, session_id: str, actor: str, data: dict[str, object]) -> None:
        # Durable first: works with the live state or the platform down, from any process.
        await self._ports.store.end_session(
            org_id,
            session_id,
            self._ports.clock.now(),
            [AuditEvent("session.ended", actor, org_id, session_id=session_id, data=data)],
        )
        await self._nudge()
        await self.close_session(session_id)

    async def close_session(self, session_id: str) -> None:
        """The session has ended: everyone here out, streams closed, room closed, forgotten."""
        if self.recording is not None:
            await self._quietly(self.recording.session_closed(session_id, "session_ended"))
        for watcher in self._streams.watchers():
            if watcher.session_id == session_id:
                self._streams.push(watcher.identity, {"type": "ended"})
        for seat in self._registry.seats(session_id):
            seat.left = True
            seat.connected = seat.counted = False
            await self._quietly(self._ports.live.leave(session_id, seat.participant_id))
        await self._quietly(self._ports.platform.close_room(session_id))
        self.forget_if_idle(session_id)

    async def abandon(self, session_id: str) -> None:
        """This process no longer owns the session: let its seats go as dropped connections
        (their browsers re-join, and are sent to the new owner); nothing durable changes.
        Media carried here ends (the embedded relay); connections the platform carries
        (LiveKit) are the new owner's to keep or remove: deleting its room from here would
        end the session the new owner runs."""
        if self.recording is not None:  # the media goes: so does its recording
            await self._quietly(self.recording.session_closed(session_id, "authority_lost"))
        for seat in self._registry.seats(session_id):
            seat.left = True
            seat.connected = seat.counted = False
            await audit_seat(self._ports.store, seat, "authority.lost")
        await self._quietly(self._ports.platform.let_go(session_id))
        self.forget_if_idle(session_id)

    async def _host(self, token: str, device_of: DeviceOf) -> JoinRecord:
        record = await self._ports.admission.participant(token, device_of)  # standing checked
        if record.participant.role is not SessionRole.HOST:
            raise Refusal(ErrorCode.FORBIDDEN, "Only the session's host can do that.")
        return record

    async def _nudge(self) -> None:
        if self.changed is not None:
            await self.changed()

    @staticmethod
    async def _quietly(step: Awaitable[object]) -> None:
        """An exit's side step that must not block the exit (live state, platform)."""
        try:
            await step
        except Exception:
            log.exception("live state or platform unavailable during an exit; it stands")


def _final_event(reason: str) -> str:
    return "ended" if reason == "session_ended" else "removed"
