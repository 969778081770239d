"""Running sessions (R4, R17): media credentials and signalling, two-adult supervision on every
presence change, reconciliation against the platform, and each participant's event stream.

Decisions come from `domain.supervision.evaluate_supervision` and `domain.admission`; this
service carries them out: hold or release children on the platform, alert, log incidents.
If live state cannot be read, children are held (fail closed); leaving always works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.clock import Clock
from gateway.domain.admission import grants_for
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.hours import local_date
from gateway.domain.liveness import orphaned
from gateway.domain.models import Decision, Grants, Outcome, PersonKind, Presence, SessionRole
from gateway.domain.policy import Policy
from gateway.domain.supervision import evaluate_supervision
from gateway.services.admission import AdmissionService, DeviceOf, JoinResult, presence_of
from gateway.services.live_ports import MediaCredentialCodec, MediaPlatform, PlatformEvent
from gateway.services.ports import Alerts, JoinRecord, LiveState, Store

log = logging.getLogger(__name__)
Event = dict[str, object]
IncidentRecorder = Callable[[str, str, str, str, list[str]], Awaitable[object]]


@dataclass
class _Seat:
    """What this process knows of one admitted participant while the session runs."""

    org_id: str
    session_id: str
    participant_id: str
    identity: str
    display_name: str
    role: SessionRole
    person_kind: PersonKind
    joined_at: datetime
    vetted_adult: bool = False
    connected: bool = False
    left: bool = False


class LiveSessionService:
    def __init__(
        self,
        store: Store,
        live: LiveState,
        platform: MediaPlatform,
        credentials: MediaCredentialCodec,
        admission: AdmissionService,
        alerts: Alerts,
        clock: Clock,
        *,
        connect_timeout: timedelta = timedelta(seconds=30),
    ) -> None:
        self._store = store
        self._live = live
        self._platform = platform
        self._credentials = credentials
        self._admission = admission
        self._alerts = alerts
        self._clock = clock
        self._connect_timeout = connect_timeout
        self._seats: dict[str, _Seat] = {}  # by masked identity
        self._policies: dict[str, Policy] = {}  # by session id
        self._below_since: dict[str, datetime | None] = {}
        self._used_credentials: dict[str, datetime] = {}
        self._removed: set[str] = set()  # identities removed for good
        self._streams: dict[str, set[asyncio.Queue[Event]]] = {}  # by identity
        self._locks: dict[str, asyncio.Lock] = {}
        self.record_incident: IncidentRecorder | None = None
        self._forwarders: dict[
            int, tuple[asyncio.Task[None], str, asyncio.Queue[dict[str, object]]]
        ] = {}
        platform.on_event(self.on_platform_event)

    # joining ---------------------------------------------------------------------------------
    async def join(
        self, token: str, password: str | None, device_of: DeviceOf, source: str
    ) -> tuple[JoinResult, Mapping[str, object] | None]:
        result = await self._admission.join(token, password, device_of, source)
        if result.decision.outcome is Outcome.DENY:
            return result, None
        participant = result.participant
        if participant.masked_identity in self._removed:
            raise Refusal(ErrorCode.INVITE_REVOKED, "You were removed from this session.")
        session_id = result.session.id
        self._policies[session_id] = result.policy
        seat = self._seats.get(participant.masked_identity)
        if seat is None or seat.left:
            self._seats[participant.masked_identity] = _Seat(
                org_id=result.session.org_id,
                session_id=session_id,
                participant_id=participant.id,
                identity=participant.masked_identity,
                display_name=participant.display_name,
                role=participant.role,
                person_kind=participant.person_kind,
                joined_at=self._clock.now(),
                vetted_adult=presence_of(
                    participant,
                    result.record.person,
                    result.policy,
                    local_date(self._clock.now(), result.policy),
                    result.decision,
                ).vetted_adult,
            )
        media = {
            "credential": self._credentials.mint(
                session_id,
                participant.masked_identity,
                _grants_dict(result.decision.grants),
                self._clock.now(),
            ),
            "ice_servers": self._platform.ice_servers(),
            "slots": 8,
        }
        await self.evaluate(session_id)  # an adult arriving may release waiting children
        return result, media

    async def offer(self, credential: str, sdp: str) -> str:
        """Signalling, accepted only with a fresh, single-use credential from admission."""
        now = self._clock.now()
        claims = self._credentials.verify(credential, now)
        self._forget_used_credentials(now)
        if claims.credential_id in self._used_credentials:
            raise Refusal(ErrorCode.CREDENTIAL_INVALID, "This media credential was used already.")
        self._used_credentials[claims.credential_id] = claims.expires_at
        seat = self._seats.get(claims.identity)
        if seat is None or seat.left or claims.identity in self._removed:
            raise Refusal(ErrorCode.CREDENTIAL_INVALID, "This media credential is not valid.")
        if seat.session_id != claims.session_id:
            raise Refusal(ErrorCode.CREDENTIAL_INVALID, "This media credential is not valid.")
        grants = await self._current_grants(seat)
        return await self._platform.connect(seat.session_id, seat.identity, grants, sdp)

    def _forget_used_credentials(self, now: datetime) -> None:
        for jti in [j for j, expiry in self._used_credentials.items() if expiry < now]:
            del self._used_credentials[jti]

    async def _current_grants(self, seat: _Seat) -> Grants:
        present = {p.participant_id: p for p in await self._present(seat.session_id)}
        presence = present.get(seat.participant_id)
        if presence is None or presence.held:
            return Grants.none()
        return grants_for(seat.role, self._policies[seat.session_id])

    async def _present(self, session_id: str) -> list[Presence]:
        return list(await self._live.present(session_id))

    # presence changes ------------------------------------------------------------------------
    async def on_platform_event(self, event: PlatformEvent) -> None:
        seat = self._seats.get(event.identity)
        if seat is None:
            return
        if event.kind == "joined":
            seat.connected = True
            await self._audit(seat, "media.connected")
        elif event.kind == "left":
            await self._gone(seat, "media.disconnected")
        elif event.kind == "slots" and event.slots is not None:
            await self._push(
                seat.identity,
                {
                    "type": "slots",
                    "slots": {
                        str(index): self._public(identity)
                        for index, identity in event.slots.items()
                        if identity in self._seats
                    },
                },
            )

    def _public(self, identity: str) -> dict[str, object]:
        seat = self._seats[identity]
        return {"identity": identity, "display_name": seat.display_name, "role": seat.role.value}

    async def _gone(self, seat: _Seat, kind: str) -> None:
        if seat.left:
            return
        seat.left = True
        seat.connected = False
        # Leaving is never blocked: live-state trouble only delays the bookkeeping.
        try:
            await self._live.leave(seat.session_id, seat.participant_id)
        except Exception:
            log.exception("live state unavailable while recording a departure")
        await self._audit(seat, kind)
        await self.evaluate(seat.session_id)

    async def leave(self, token: str, device_of: DeviceOf) -> None:
        record = await self._admission.leave(token, device_of)
        seat = self._seats.get(record.participant.masked_identity)
        if seat is not None:
            await self._platform.remove(seat.session_id, seat.identity)
            seat.left = True
            seat.connected = False
            await self.evaluate(seat.session_id)

    async def evaluate(self, session_id: str) -> None:
        """Re-apply the two-adult rule (R4) to one session, now."""
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            await self._evaluate(session_id)

    async def _evaluate(self, session_id: str) -> None:
        policy = self._policies.get(session_id)
        if policy is None:
            return
        now = self._clock.now()
        try:
            present = await self._present(session_id)
        except Exception:
            log.exception("live state unreadable: holding every child (fail closed)")
            for seat in self._session_seats(session_id):
                if seat.person_kind is PersonKind.CHILD:
                    await self._platform.set_grants(session_id, seat.identity, Grants.none())
                    await self._push(
                        seat.identity,
                        _state(Outcome.HOLD, Grants.none(), ["live_state_unavailable"]),
                    )
            return
        verdict = evaluate_supervision(present, policy, now, self._below_since.get(session_id))
        self._below_since[session_id] = verdict.below_since
        seats = {seat.participant_id: seat for seat in self._session_seats(session_id)}
        for participant_id in verdict.hold:
            # set_held, not enter: never brings back someone who left meanwhile, and keeps the
            # presence's owner (the process the child is connected to).
            await self._live.set_held(session_id, participant_id, True)
            held_seat = seats.get(participant_id)
            if held_seat is not None:
                seat = held_seat
                await self._platform.set_grants(session_id, seat.identity, Grants.none())
                await self._push(
                    seat.identity, _state(Outcome.HOLD, Grants.none(), ["awaiting_supervision"])
                )
                await self._audit(seat, "supervision.hold", verdict.as_dict())
        for participant_id in verdict.release:
            await self._live.set_held(session_id, participant_id, False)
            released = seats.get(participant_id)
            if released is not None:
                seat = released
                grants = grants_for(seat.role, policy)
                await self._platform.set_grants(session_id, seat.identity, grants)
                await self._push(seat.identity, _state(Outcome.ADMIT, grants, ["supervised"]))
                await self._audit(seat, "supervision.release", verdict.as_dict())
        any_seat = next(iter(seats.values()), None)
        if any_seat is not None and (verdict.alert or verdict.incident):
            alert = {
                "kind": "supervision",
                "state": verdict.state,
                "vetted_adults": verdict.vetted_adults,
                "required": verdict.required,
            }
            await self._alerts.publish(any_seat.org_id, session_id, alert)
            if verdict.incident:
                await self._store.record(
                    [
                        AuditEvent(
                            "supervision.breach",
                            "gateway",
                            any_seat.org_id,
                            session_id=session_id,
                            data=verdict.as_dict(),
                        )
                    ]
                )
                if self.record_incident is not None:
                    await self.record_incident(
                        any_seat.org_id,
                        session_id,
                        "supervision_breach",
                        f"Fewer than {verdict.required} vetted adults present; children held.",
                        ["held_children", "alerted_dsl", "alerted_host"],
                    )
        held = frozenset(
            p.participant_id
            for p in present
            if (p.held or p.participant_id in verdict.hold)
            and p.participant_id not in verdict.release
        )
        await self._push_roster(
            session_id, verdict.vetted_adults, verdict.required, verdict.state, held
        )

    def _session_seats(self, session_id: str) -> list[_Seat]:
        return [s for s in self._seats.values() if s.session_id == session_id and not s.left]

    async def reconcile(self) -> None:
        """Compare live state with the platform's own participant list and fix drift
        (events can be lost); then re-evaluate supervision, so grace periods run out."""
        now = self._clock.now()
        for session_id in list(self._policies):
            connected = {p.identity for p in self._platform.participants(session_id) if p.connected}
            for seat in self._session_seats(session_id):
                if seat.connected and seat.identity not in connected:
                    await self._gone(seat, "media.vanished")
                elif not seat.connected and seat.identity in connected:
                    seat.connected = True
                elif not seat.connected and now - seat.joined_at > self._connect_timeout:
                    await self._gone(seat, "media.never_connected")
            await self._rebuild(session_id, connected)
            await self.evaluate(session_id)

    async def _rebuild(self, session_id: str, connected: set[str]) -> None:
        """Live state lost (e.g. Redis restarted)? Re-enter whoever the platform says is
        connected, children held until supervision has counted the adults again."""
        try:
            present = {p.participant_id for p in await self._live.present(session_id)}
            for seat in self._session_seats(session_id):
                if seat.identity in connected and seat.participant_id not in present:
                    await self._live.enter(
                        session_id,
                        Presence(
                            participant_id=seat.participant_id,
                            role=seat.role,
                            person_kind=seat.person_kind,
                            vetted_adult=seat.vetted_adult,
                            held=seat.person_kind is PersonKind.CHILD,
                        ),
                    )
                    if seat.person_kind is PersonKind.CHILD:
                        await self._platform.set_grants(session_id, seat.identity, Grants.none())
                    await self._audit(seat, "live_state.rebuilt")
        except Exception:
            log.exception("live state still unavailable; children stay held")

    # presences outliving their process -------------------------------------------------------
    async def heartbeat(self, ttl_seconds: float) -> None:
        """Tell the other processes this one is alive (per process, renewed well within ttl)."""
        await self._live.heartbeat(ttl_seconds)

    async def sweep(self) -> None:
        """Remove presences entered by processes that stopped heartbeating (crashed, killed),
        so no dead process's adult is counted (R4). A global job: one process at a time runs it
        under the leader lease. Each removal is audited (ids only), then supervision is
        re-evaluated here; the processes holding seats in those sessions re-evaluate at their
        next reconciliation, and hold children once the grace period has run out."""
        owned = await self._live.owned_presences()
        alive = await self._live.alive({p.owner for p in owned if p.owner is not None})
        touched: dict[str, str | None] = {}
        for orphan in orphaned(owned, alive):
            if not await self._live.remove_orphan(orphan):
                continue  # its owner came back, or someone re-entered it meanwhile
            if orphan.session_id not in touched:
                touched[orphan.session_id] = await self._org_of(orphan.session_id)
            await self._store.record(
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
            await self.evaluate(session_id)

    async def _org_of(self, session_id: str) -> str | None:
        """The organisation a session belongs to: known here if this process has seats in it,
        else looked up (rare: only after a process died)."""
        for seat in self._seats.values():
            if seat.session_id == session_id:
                return seat.org_id
        for organisation in await self._store.organisations():
            if await self._store.session(organisation.id, session_id) is not None:
                return organisation.id
        return None

    # host actions ----------------------------------------------------------------------------
    async def remove(self, token: str, device_of: DeviceOf, identity: str) -> None:
        host = await self._host(token, device_of)
        seat = self._seats.get(identity)
        if seat is None or seat.session_id != host.invite.session_id:
            raise Refusal(ErrorCode.NOT_FOUND, "No such participant in this session.")
        self._removed.add(identity)
        # Removal is for good: the invite is revoked durably, so no device can come back.
        await self._store.revoke_participant_invites(
            seat.org_id,
            seat.participant_id,
            self._clock.now(),
            [
                AuditEvent(
                    "participant.removed",
                    host.participant.masked_identity,
                    seat.org_id,
                    session_id=seat.session_id,
                    data={"participant": seat.participant_id},
                )
            ],
        )
        await self._push(identity, {"type": "removed"})
        await self._platform.remove(seat.session_id, identity)
        seat.left = True
        try:
            await self._live.leave(seat.session_id, seat.participant_id)
        except Exception:
            log.exception("live state unavailable while removing; the invite is revoked")
        await self.evaluate(seat.session_id)

    async def end(self, token: str, device_of: DeviceOf) -> None:
        host = await self._host(token, device_of)
        session_id = host.invite.session_id
        for seat in self._session_seats(session_id):
            await self._push(seat.identity, {"type": "ended"})
            seat.left = True
            await self._live.leave(session_id, seat.participant_id)
        await self._platform.close_room(session_id)
        await self._store.end_session(
            host.invite.org_id,
            session_id,
            self._clock.now(),
            [
                AuditEvent(
                    "session.ended",
                    host.participant.masked_identity,
                    host.invite.org_id,
                    session_id=session_id,
                )
            ],
        )

    async def _host(self, token: str, device_of: DeviceOf) -> JoinRecord:
        record = await self._admission.participant(token, device_of)
        if record.participant.role is not SessionRole.HOST:
            raise Refusal(ErrorCode.FORBIDDEN, "Only the session's host can do that.")
        return record

    async def caller(self, token: str, device_of: DeviceOf) -> JoinRecord:
        return await self._admission.participant(token, device_of)

    def roster(
        self, session_id: str, held: frozenset[str] = frozenset()
    ) -> list[dict[str, object]]:
        def state(seat: _Seat) -> str:
            if seat.left:
                return "left"
            return "held" if seat.participant_id in held else "admitted"

        return [
            {**self._public(seat.identity), "state": state(seat)}
            for seat in self._seats.values()
            if seat.session_id == session_id
        ]

    # event streams ---------------------------------------------------------------------------
    def subscribe(self, identity: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=200)
        self._streams.setdefault(identity, set()).add(queue)
        seat = self._seats.get(identity)
        if seat is not None and seat.role in (SessionRole.HOST, SessionRole.OBSERVER):
            # Staff also hear the session's alerts, from whichever gateway raised them.
            alerts = self._alerts.subscribe(seat.session_id)
            self._forwarders[id(queue)] = (
                asyncio.create_task(_forward_alerts(alerts, queue)),
                seat.session_id,
                alerts,
            )
        return queue

    def unsubscribe(self, identity: str, queue: asyncio.Queue[Event]) -> None:
        self._streams.get(identity, set()).discard(queue)
        forwarder = self._forwarders.pop(id(queue), None)
        if forwarder is not None:
            task, session_id, alerts = forwarder
            task.cancel()
            self._alerts.unsubscribe(session_id, alerts)

    async def snapshot(self, record: JoinRecord) -> list[Event]:
        """What a newly connected stream needs to know first."""
        identity = record.participant.masked_identity
        seat = self._seats.get(identity)
        events: list[Event] = []
        if seat is None:
            return events
        present = {p.participant_id: p for p in await self._present(seat.session_id)}
        presence = present.get(seat.participant_id)
        held = presence is None or presence.held
        grants = Grants.none() if held else grants_for(seat.role, self._policies[seat.session_id])
        events.append(_state(Outcome.HOLD if held else Outcome.ADMIT, grants, []))
        slots = self._platform.slot_map(seat.session_id, identity)
        events.append(
            {
                "type": "slots",
                "slots": {
                    str(i): self._public(who) for i, who in slots.items() if who in self._seats
                },
            }
        )
        return events

    async def _push(self, identity: str, event: Event) -> None:
        for queue in list(self._streams.get(identity, ())):
            if not queue.full():
                queue.put_nowait(event)

    async def _push_roster(
        self, session_id: str, adults: int, required: int, state: str, held: frozenset[str]
    ) -> None:
        event: Event = {
            "type": "roster",
            "participants": self.roster(session_id, held),
            "supervision": {"vetted_adults": adults, "required": required, "state": state},
        }
        for seat in self._session_seats(session_id):
            if seat.role is SessionRole.HOST:
                await self._push(seat.identity, event)

    async def _audit(
        self, seat: _Seat, kind: str, data: Mapping[str, object] | None = None
    ) -> None:
        await self._store.record(
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


async def _forward_alerts(
    alerts: asyncio.Queue[dict[str, object]], to: asyncio.Queue[Event]
) -> None:
    while True:
        alert = await alerts.get()
        if not to.full():
            to.put_nowait({"type": "alert", **alert})


def _grants_dict(grants: Grants) -> dict[str, object]:
    return {"can_publish": grants.can_publish, "can_subscribe": grants.can_subscribe}


def _state(outcome: Outcome, grants: Grants, reasons: list[str]) -> Event:
    return {
        "type": "state",
        "outcome": outcome.value,
        "grants": _grants_dict(grants),
        "reasons": reasons,
    }


def join_view(result: JoinResult, media: Mapping[str, object] | None) -> dict[str, object]:
    """The join answer: masked identities only (R3); plain words for the page (R8, R17)."""
    decision: Decision = result.decision
    policy = result.policy
    purpose = result.session.recording_purpose
    notice = None
    if purpose is not None and purpose in policy.recording.purposes:
        notice = (
            "This session may be recorded, only if everyone in it has agreed in writing. "
            f"Why: {policy.recording.purposes[purpose].description}"
        )
    view: dict[str, object] = {
        "outcome": decision.outcome.value,
        "reasons": list(decision.reasons),
        "grants": decision.as_dict()["grants"],
        "policy_version": decision.policy_version,
        "session": {
            "id": result.session.id,
            "kind": result.session.kind.value,
            "title": result.record.session_title,
            "recording_purpose": purpose,
            "recording_notice": notice,
            "safeguarding_contact": policy.contact.safeguarding_contact,
        },
        "participant": {
            "identity": result.participant.masked_identity,
            "display_name": result.participant.display_name,
            "role": result.participant.role.value,
        },
    }
    if media is not None:
        view["media"] = dict(media)
    return view
