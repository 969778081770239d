"""Each participant's live event stream (server-sent events) in this process.

A stream remembers whose it is (invite, session, role), so reconciliation re-checks its owner's
standing every round: a participant removed, revoked, ended or without consent gets a final
"removed"/"ended" event and the stream closes, even when their seat is on another process. Staff
streams also carry the session's alerts, from whichever process raised them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.domain.models import SessionRole
from gateway.services.live.state import Event
from gateway.services.ports import Alerts, JoinRecord

__all__ = ["Streams", "Watcher"]

QUEUE_SIZE = 200
FINAL = ("removed", "ended")  # the event types after which a stream closes


@dataclass
class Watcher:
    identity: str
    invite_id: str
    session_id: str
    role: SessionRole
    queue: asyncio.Queue[Event]
    forwarder: tuple[asyncio.Task[None], asyncio.Queue[dict[str, object]]] | None = None


class Streams:
    def __init__(self, alerts: Alerts) -> None:
        self._alerts = alerts
        self._watchers: dict[int, Watcher] = {}  # by id(queue)

    def subscribe(self, record: JoinRecord) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=QUEUE_SIZE)
        participant = record.participant
        watcher = Watcher(
            participant.masked_identity,
            record.invite.id,
            record.invite.session_id,
            participant.role,
            queue,
        )
        if participant.role in (SessionRole.HOST, SessionRole.OBSERVER):
            alerts = self._alerts.subscribe(watcher.session_id)
            watcher.forwarder = (asyncio.create_task(_forward_alerts(alerts, queue)), alerts)
        self._watchers[id(queue)] = watcher
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        watcher = self._watchers.pop(id(queue), None)
        if watcher is not None:
            self._stop_alerts(watcher)

    def _stop_alerts(self, watcher: Watcher) -> None:
        if watcher.forwarder is not None:
            task, alerts = watcher.forwarder
            task.cancel()
            self._alerts.unsubscribe(watcher.session_id, alerts)
            watcher.forwarder = None

    def push(self, identity: str, event: Event) -> None:
        for watcher in list(self._watchers.values()):
            if watcher.identity != identity:
                continue
            if event.get("type") in FINAL:
                # Nothing more reaches a stream that is closing: alerts stop at once.
                self._stop_alerts(watcher)
                _put_final(watcher.queue, event)
            elif not watcher.queue.full():
                watcher.queue.put_nowait(event)

    def watchers(self) -> list[Watcher]:
        return list(self._watchers.values())

    def watches(self, session_id: str) -> bool:
        return any(w.session_id == session_id for w in self._watchers.values())


def _put_final(queue: asyncio.Queue[Event], event: Event) -> None:
    """A final event always gets in, even into a full queue (the oldest event makes room)."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(event)


async def _forward_alerts(
    alerts: asyncio.Queue[dict[str, object]], to: asyncio.Queue[Event]
) -> None:
    while True:
        alert = await alerts.get()
        if not to.full():
            to.put_nowait({"type": "alert", **alert})
