"""Nudges: a durable change made on any process takes effect on the session's owner at once.

The change is already in SQL when the nudge goes out; the nudge only says "re-read now". It
travels on the alerts fan-out (Redis pub/sub between processes; in-process without Redis) on a
channel no session uses, so no participant's stream ever sees it. A lost nudge costs at most one
reconciliation round (`GATEWAY_RECONCILE_SECONDS`), which re-reads the same facts anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.services.ports import Alerts

__all__ = ["CHANNEL", "Nudges"]

log = logging.getLogger(__name__)
CHANNEL = "_live_durable_facts"  # not a session id (those are 32 hex digits)


class Nudges:
    def __init__(
        self,
        alerts: Alerts,
        reread: Callable[[], Awaitable[None]],
        platform_changed: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._alerts = alerts
        self._reread = reread
        self._platform_changed = platform_changed

    async def send(self) -> None:
        try:
            await self._alerts.publish("gateway", CHANNEL, {"kind": "durable_facts_changed"})
        except Exception:
            log.warning("nudge not sent; the next reconciliation applies the change")

    async def platform_hint(self, session_id: str) -> None:
        """The platform said something about a session (a LiveKit webhook): whichever process
        owns it reconciles it against the platform's own list now. Only a hint: lost, it
        costs one reconciliation round."""
        try:
            await self._alerts.publish(
                "gateway", CHANNEL, {"kind": "platform_hint", "room_session": session_id}
            )
        except Exception:
            log.warning("platform hint not sent; the next reconciliation catches up")

    async def follow(self) -> None:
        """Re-read the durable facts whenever nudged (until cancelled); nudges arriving
        together are served by one read. Platform hints reconcile their session, once per
        batch."""
        queue = self._alerts.subscribe(CHANNEL)
        try:
            while True:
                batch = [await queue.get()]
                while not queue.empty():
                    batch.append(queue.get_nowait())
                hinted = {str(m["room_session"]) for m in batch if m.get("kind") == "platform_hint"}
                try:
                    if len(hinted) < len(batch):
                        await self._reread()
                    if self._platform_changed is not None:
                        for session_id in sorted(hinted):
                            await self._platform_changed(session_id)
                except Exception:
                    log.exception("re-reading durable facts after a nudge failed")
        finally:
            self._alerts.unsubscribe(CHANNEL, queue)
