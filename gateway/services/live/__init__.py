"""Running sessions (R4, R17): the live plane of one gateway process, split by concern.

A newcomer can follow it in this order:
  authority.py    one authority per live session: the lease, joins sent to the owner;
  state.py        what this process holds per seat and per live session (bounded by what is
                  live), and the ports every concern shares;
  media.py        joining (a seat and a single-use media credential), the media offer, and
                  platform events: an adult counts once their media is connected;
  supervision.py  the two-adult rule carried out: hold, release, alert, breach, incident, and
                  `supervision.action`;
  exits.py        leaving, removal, ending, and disconnecting whoever lost their standing:
                  durable in SQL first, applied here at once, elsewhere within a round;
  streams.py      each participant's event stream (closed when they lose their standing);
  nudges.py       a durable change made on any process applied at once by the owner;
  recording.py    recording the session: start/stop by the host, who is in it, kept right as
                  people come and go and consents change;
  reconcile.py    the periodic round: durable facts re-read, platform drift, live state
                  rebuilt, grace periods; and the sweep of dead processes' presences;
  views.py        what people are shown (the join answer, state events).

Decisions come from `domain.admission` (the one standing check, the join decision) and
`domain.supervision`; this package only carries them out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

from gateway.clock import Clock
from gateway.services.admission import AdmissionService, DeviceOf, JoinResult
from gateway.services.live.authority import SessionAuthority, SessionElsewhere
from gateway.services.live.exits import Exits
from gateway.services.live.media import Media
from gateway.services.live.nudges import Nudges
from gateway.services.live.reconcile import Reconciler
from gateway.services.live.recording import LiveRecording, RecordingRefused, RecordingRuns
from gateway.services.live.state import Event, IncidentRecorder, LivePorts, LiveRegistry
from gateway.services.live.streams import Streams
from gateway.services.live.supervision import Supervisor
from gateway.services.live.views import join_view
from gateway.services.live_ports import MediaCredentialCodec, MediaPlatform
from gateway.services.ports import Alerts, JoinRecord, LiveState, Organisation, Store

__all__ = [
    "LiveSessionService",
    "RecordingRefused",
    "RecordingRuns",
    "SessionElsewhere",
    "join_view",
]


class LiveSessionService:
    """The live plane's one entry point for handlers and periodic jobs."""

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
        process_url: str = "",
        lease_seconds: float = 9.0,
        connect_timeout: timedelta = timedelta(seconds=30),
    ) -> None:
        """`process_url`: where browsers reach this process (a join for a session owned here
        is sent to it from the others); `lease_seconds`: how long a session's lease lasts
        unrenewed (renewed every reconciliation: keep it a few rounds long)."""
        self._ports = LivePorts(store, live, platform, credentials, admission, alerts, clock)
        self._registry = LiveRegistry()
        self._streams = Streams(alerts)
        self._authority = SessionAuthority(self._ports, process_url, lease_seconds)
        self._supervisor = Supervisor(self._ports, self._registry, self._streams, self._authority)
        self._exits = Exits(self._ports, self._registry, self._streams, self._supervisor)
        self._supervisor.end_session = self._exits.end_for_supervision
        self._media = Media(
            self._ports,
            self._registry,
            self._streams,
            self._supervisor,
            self._exits,
            self._authority,
        )
        self._reconciler = Reconciler(
            self._ports,
            self._registry,
            self._streams,
            self._supervisor,
            self._exits,
            self._media,
            self._authority,
            connect_timeout=connect_timeout,
        )
        self._nudges = Nudges(
            alerts, self._reconciler.apply_durable_facts, self._reconciler.reconcile_session
        )
        self._exits.changed = self._nudges.send
        self.recording = LiveRecording(self._ports, self._registry, self._streams, self._authority)
        self._exits.recording = self._media.recording = self._reconciler.recording = self.recording
        platform.on_event(self._media.on_platform_event)

    # wiring and introspection (tests look at the platform and live state directly)
    @property
    def record_incident(self) -> IncidentRecorder | None:
        return self._ports.record_incident

    @record_incident.setter
    def record_incident(self, recorder: IncidentRecorder | None) -> None:
        self._ports.record_incident = recorder

    @property
    def _platform(self) -> MediaPlatform:
        return self._ports.platform

    @property
    def _alerts(self) -> Alerts:
        return self._ports.alerts

    @property
    def _live(self) -> LiveState:
        return self._ports.live

    def held_sizes(self) -> Mapping[str, int]:
        """How many seats and sessions this process holds (bounded by what is live)."""
        return self._registry.sizes()

    # participants
    async def join(
        self, token: str, password: str | None, device_of: DeviceOf, source: str
    ) -> tuple[JoinResult, Mapping[str, object] | None]:
        return await self._media.join(token, password, device_of, source)

    async def offer(self, credential: str, sdp: str) -> str:
        return await self._media.offer(credential, sdp)

    async def leave(self, token: str, device_of: DeviceOf) -> None:
        await self._exits.leave(token, device_of)

    async def caller(self, token: str, device_of: DeviceOf) -> JoinRecord:
        """Who is calling, if they still stand in the session (the one standing check)."""
        return await self._ports.admission.participant(token, device_of)

    # host powers
    async def remove(self, token: str, device_of: DeviceOf, identity: str) -> None:
        await self._exits.remove(token, device_of, identity)

    async def let_back_in(
        self, token: str, device_of: DeviceOf, identity: str
    ) -> tuple[Organisation, str, str, str]:
        return await self._exits.let_back_in(token, device_of, identity)

    async def end(self, token: str, device_of: DeviceOf) -> None:
        await self._exits.end(token, device_of)

    # event streams
    def subscribe(self, record: JoinRecord) -> asyncio.Queue[Event]:
        return self._streams.subscribe(record)

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._streams.unsubscribe(queue)

    async def snapshot(self, record: JoinRecord) -> list[Event]:
        events = await self._media.snapshot(record)
        # And whether a recording runs (and whether they are in it), also on a stream served
        # by a process that is not the session's authority (read from SQL there).
        events.append(
            await self.recording.status_anywhere(
                record.invite.session_id, record.participant.masked_identity
            )
        )
        return events

    async def recording_refresh(self, record: JoinRecord) -> Event | None:
        """For a stream served by a process that does not hold the session's recording (no
        changes are pushed to it): the indicator read again; None where changes are pushed."""
        if self.recording.held_here(record.invite.session_id):
            return None
        return await self.recording.status_anywhere(
            record.invite.session_id, record.participant.masked_identity
        )

    # durable changes made anywhere, applied at once
    async def durable_facts_changed(self) -> None:
        """Nudge every process (this one included) to re-read the durable facts now."""
        await self._nudges.send()

    async def platform_hint(self, session_id: str) -> None:
        """A platform event about a session (a LiveKit webhook, a hint only): its owner, on
        whichever process, reconciles it against the platform's own list now."""
        await self._nudges.platform_hint(session_id)

    async def follow_nudges(self) -> None:
        """Run for the life of the process: re-read the durable facts when nudged."""
        await self._nudges.follow()

    # periodic jobs
    async def evaluate(self, session_id: str) -> None:
        await self._supervisor.evaluate(session_id)

    async def reconcile(self) -> None:
        await self._reconciler.reconcile()

    async def heartbeat(self, ttl_seconds: float) -> None:
        """Tell the other processes this one is alive (per process, renewed well within ttl)."""
        await self._ports.live.heartbeat(ttl_seconds)

    async def sweep(self) -> None:
        await self._reconciler.sweep()
