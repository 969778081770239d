"""Alerts fanned out to subscribers in this process (host pages, the DSL's view).

`RedisAlerts` (alerts_redis.py) has the same API and fans out across gateway instances; the
same tests run over both (tests/live/test_alerts.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from gateway.clock import Clock


class InProcessAlerts:
    def __init__(self, clock: Clock, backlog: int = 100) -> None:
        self._clock = clock
        self._backlog = backlog
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, object]]]] = {}
        self.recent: dict[str, list[dict[str, object]]] = {}

    async def publish(self, org_id: str, session_id: str, alert: Mapping[str, object]) -> None:
        message = {"session_id": session_id, "at": self._clock.now().isoformat(), **alert}
        recent = self.recent.setdefault(session_id, [])
        recent.append(message)
        del recent[: -self._backlog]
        for queue in self._subscribers.get(session_id, ()):
            if queue.qsize() < self._backlog:
                queue.put_nowait(message)

    def subscribe(self, session_id: str) -> asyncio.Queue[dict[str, object]]:
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self._subscribers.setdefault(session_id, set()).add(queue)
        return queue

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[dict[str, object]]) -> None:
        queues = self._subscribers.get(session_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[session_id]

    async def recent_alerts(self, session_id: str) -> list[dict[str, object]]:
        """The session's last `backlog` alerts, oldest first."""
        return list(self.recent.get(session_id, ()))

    async def start(self) -> None:
        """Nothing to start in one process (the same lifecycle as `RedisAlerts`)."""

    async def stop(self) -> None:
        """Nothing to stop in one process."""
