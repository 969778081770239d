"""Seats and media: a join seats the participant in this process and hands out what their
browser connects with: on the embedded relay a single-use media credential for the offer,
which then connects it through the gateway; on LiveKit a just-in-time platform token (the
platform's `admit`). Platform events and the platform's own list say who is really connected.

An adult counts towards supervision only once their media is connected (the relay's `joined`
event): their presence enters the live state then, not at the HTTP join, so a child is never
admitted on an adult who never arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway.domain.admission import counts_as_vetted_adult, grants_for
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.hours import local_date
from gateway.domain.models import Grants, Outcome, Presence
from gateway.services.admission import DeviceOf, JoinResult
from gateway.services.live.authority import SessionAuthority
from gateway.services.live.exits import Exits
from gateway.services.live.recording import LiveRecording
from gateway.services.live.state import Event, LivePorts, LiveRegistry, Seat, audit_seat
from gateway.services.live.streams import Streams
from gateway.services.live.supervision import Supervisor
from gateway.services.live.views import grants_dict, state_event
from gateway.services.live_ports import PlatformEvent
from gateway.services.ports import JoinRecord

__all__ = ["Media"]

log = logging.getLogger(__name__)
CREDENTIAL_TTL_SECONDS = 60


class Media:
    def __init__(
        self,
        ports: LivePorts,
        registry: LiveRegistry,
        streams: Streams,
        supervisor: Supervisor,
        exits: Exits,
        authority: SessionAuthority,
    ) -> None:
        self._authority = authority
        self._ports = ports
        self._registry = registry
        self._streams = streams
        self._supervisor = supervisor
        self._exits = exits
        self.recording: LiveRecording | None = None  # a newcomer while recording (set by facade)

    async def join(
        self, token: str, password: str | None, device_of: DeviceOf, source: str
    ) -> tuple[JoinResult, Mapping[str, object] | None]:
        ports = self._ports
        # The session's owner seats everyone (its media stays in one process); anywhere
        # else, the browser is sent there before anything of this join is recorded.
        claims = ports.admission.verify(token)  # once per join: the admission reuses it
        await self._authority.claim(claims.session_id)
        # The platform's room first: with the platform unreachable nobody is admitted blind
        # (503, nothing of this join recorded but the refusal).
        await self._open_room(claims.session_id, claims.org_id)
        result = await ports.admission.join_verified(claims, password, device_of, source)
        if result.decision.outcome is Outcome.DENY:
            return result, None
        participant = result.participant
        session_id = result.session.id
        now = ports.clock.now()
        self._registry.open_session(session_id, result.session.org_id, result.policy)
        seat = self._registry.seat(participant.masked_identity)
        if seat is None or seat.left:
            seat = Seat(
                org_id=result.session.org_id,
                session_id=session_id,
                participant_id=participant.id,
                invite_id=result.record.invite.id,
                identity=participant.masked_identity,
                display_name=participant.display_name,
                role=participant.role,
                person_kind=participant.person_kind,
                joined_at=now,
                vetted_adult=counts_as_vetted_adult(
                    result.record.person,
                    participant.role,
                    result.policy,
                    local_date(now, result.policy),
                ),
                departures=result.record.departures,
            )
            self._registry.seat_down(seat)
        if result.entered:  # a child's arrival may need a hold; an adult's join changes nothing
            await self._supervisor.evaluate(session_id)
        # A platform the browser reaches directly (LiveKit) gets a token minted now; the relay
        # signals through the gateway. The token outlives this moment and LiveKit checks it
        # only at connect: only a vetted adult's carries media. Anyone else's carries none
        # until the session's authority grants it over the platform's API once they are
        # connected and supervised, so a hold decided meanwhile can never be missed.
        admitted = grants_for(seat.role, result.policy)
        direct = await ports.platform.admit(
            session_id,
            seat.identity,
            seat.display_name,
            admitted if seat.vetted_adult else Grants(False, False, hidden=admitted.hidden),
        )
        media: Mapping[str, object] = (
            direct
            if direct is not None
            else {
                "credential": ports.credentials.mint(
                    session_id,
                    participant.masked_identity,
                    grants_dict(result.decision.grants),
                    now,
                    CREDENTIAL_TTL_SECONDS,
                ),
                "ice_servers": ports.platform.ice_servers(),
                "slots": 8,
            }
        )
        return result, media

    async def _open_room(self, session_id: str, org_id: str) -> None:
        try:
            await self._ports.platform.open_room(session_id, org_id)
        except Unavailable:
            await self._ports.store.record(
                [
                    AuditEvent(
                        "join.platform_unavailable",
                        "gateway",
                        org_id,
                        session_id=session_id,
                        data={},
                    )
                ]
            )
            raise

    async def offer(self, credential: str, sdp: str) -> str:
        """Signalling, accepted only with a fresh, single-use credential from a join on this
        process, from someone who still stands in the session."""
        ports = self._ports
        now = ports.clock.now()
        claims = ports.credentials.verify(credential, now)
        seat = self._registry.seat_in(claims.identity)
        entry = self._registry.session(claims.session_id)
        if seat is None or entry is None or seat.session_id != claims.session_id:
            raise Refusal(ErrorCode.CREDENTIAL_INVALID, "This media credential is not valid.")
        if not entry.use_credential(claims.credential_id, claims.expires_at, now):
            raise Refusal(ErrorCode.CREDENTIAL_INVALID, "This media credential was used already.")
        try:  # and single use across processes (the live state is shared)
            fresh = await ports.live.claim_credential(
                claims.credential_id, CREDENTIAL_TTL_SECONDS + 5
            )
        except Exception as exc:
            raise Unavailable(
                ErrorCode.LIVE_STATE_UNAVAILABLE,
                "The gateway cannot check this media credential right now; try again.",
            ) from exc
        if not fresh:
            raise Refusal(ErrorCode.CREDENTIAL_INVALID, "This media credential was used already.")
        record = await ports.store.join_record(seat.invite_id)
        if record is None or await ports.admission.standing(record):
            raise Refusal(ErrorCode.CREDENTIAL_INVALID, "This media credential is not valid.")
        grants = await self._current_grants(seat)
        return await ports.platform.connect(seat.session_id, seat.identity, grants, sdp)

    async def _current_grants(self, seat: Seat) -> Grants:
        entry = self._registry.session(seat.session_id)
        if entry is None:
            return Grants.none()
        if seat.vetted_adult:
            return grants_for(seat.role, entry.policy)
        present = {p.participant_id: p for p in await self._ports.live.present(seat.session_id)}
        presence = present.get(seat.participant_id)
        if presence is None or presence.held:
            return Grants.none()
        return grants_for(seat.role, entry.policy)

    # what the platform says ------------------------------------------------------------------
    async def on_platform_event(self, event: PlatformEvent) -> None:
        seat = self._registry.seat(event.identity)
        if seat is None:
            return
        if event.kind == "joined":
            await self.connected(seat)
        elif event.kind == "left":
            await self._exits.gone(seat, "media.disconnected", deliberate=False)
        elif event.kind == "slots" and event.slots is not None:
            self._streams.push(
                seat.identity, {"type": "slots", "slots": self._public_slots(event.slots)}
            )

    async def connected(self, seat: Seat) -> None:
        """Their media is connected: a vetted adult starts counting now."""
        if seat.left or seat.connected:
            return
        seat.connected = True
        await audit_seat(self._ports.store, seat, "media.connected")
        if seat.vetted_adult:
            await self.count(seat)
        await self._supervisor.evaluate(seat.session_id)
        if self.recording is not None:
            try:  # recorded, left out, or the recording stops: never captured unchecked
                await self.recording.connected(seat)
            except Exception:
                log.exception("a newcomer's recording scope could not be decided; not recorded")

    async def count(self, seat: Seat) -> None:
        """Enter a connected vetted adult in the live state (they count from now on)."""
        try:
            await self._ports.live.enter(
                seat.session_id,
                Presence(
                    participant_id=seat.participant_id,
                    role=seat.role,
                    person_kind=seat.person_kind,
                    vetted_adult=True,
                    held=False,
                ),
            )
            seat.counted = True
        except Exception:
            # Not counted (live state down, or the participant was removed meanwhile):
            # children stay held; reconciliation disconnects or counts them next round.
            log.exception("a connected adult could not be counted yet")

    def _public_slots(self, slots: Mapping[int, str]) -> dict[str, object]:
        public: dict[str, object] = {}
        for index, identity in slots.items():
            seat = self._registry.seat(identity)
            if seat is not None:
                public[str(index)] = seat.public()
        return public

    async def snapshot(self, record: JoinRecord) -> list[Event]:
        """What a newly connected stream needs to know first."""
        identity = record.participant.masked_identity
        seat = self._registry.seat_in(identity)
        entry = self._registry.session(record.invite.session_id)
        if seat is None or entry is None:
            return []
        if seat.vetted_adult:
            held = False
        else:
            present = {p.participant_id: p for p in await self._ports.live.present(seat.session_id)}
            presence = present.get(seat.participant_id)
            held = presence is None or presence.held
        grants = Grants.none() if held else grants_for(seat.role, entry.policy)
        slots = self._ports.platform.slot_map(seat.session_id, identity)
        return [
            state_event(Outcome.HOLD if held else Outcome.ADMIT, grants, []),
            {"type": "slots", "slots": self._public_slots(slots)},
        ]
