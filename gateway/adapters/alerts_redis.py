"""Alerts fanned out through Redis pub/sub, so a host page connected to any gateway instance sees
an alert raised on any other. The API is `InProcessAlerts`'s.

Each alert is published on `{channel_prefix}:{session_id}` and pushed onto the session's bounded
recent list `{channel_prefix}:recent:{session_id}` (LPUSH + LTRIM, kept `recent_ttl_seconds`
after the last alert), in one MULTI. Every instance runs one listener (`start()`/`stop()`)
pattern-subscribed to `{channel_prefix}:*`; it hands each alert to this instance's subscribers,
the publishing instance's included: local delivery goes through Redis too, so nobody gets an
alert twice.

When Redis is lost or misses its deadline: `publish` still hands the alert to this instance's
own subscribers, then raises `RedisUnavailable` (a `LiveStateUnavailable`, and a 503
`live_state_unavailable` if it reaches a request) so the caller knows the other instances did
not get it; `recent_alerts` raises the same. The
listener logs, retries every `reconnect_seconds` and resubscribes; alerts published while it was
away are in `recent_alerts` (Redis pub/sub does not replay them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.adapters.live_memory import LiveStateUnavailable
from gateway.adapters.live_redis import RedisClient, unavailable_on_error
from gateway.clock import Clock

__all__ = ["RedisAlerts"]

log = logging.getLogger(__name__)

Alert = dict[str, object]


class RedisAlerts:
    def __init__(
        self,
        client: RedisClient,
        clock: Clock,
        channel_prefix: str = "sgw:alerts",
        *,
        backlog: int = 100,
        recent_ttl_seconds: int = 24 * 3600,
        reconnect_seconds: float = 0.5,
    ) -> None:
        if backlog < 1 or recent_ttl_seconds < 1 or reconnect_seconds <= 0:
            raise ValueError("backlog, recent_ttl_seconds and reconnect_seconds must be positive")
        self._client = client
        self._clock = clock
        self._prefix = channel_prefix
        self._pattern = _glob_escape(channel_prefix) + ":*"
        self._backlog = backlog
        self._recent_ttl = recent_ttl_seconds
        self._reconnect = reconnect_seconds
        self._subscribers: dict[str, set[asyncio.Queue[Alert]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    # Alerts

    async def publish(self, org_id: str, session_id: str, alert: Mapping[str, object]) -> None:
        message: Alert = {"session_id": session_id, "at": self._clock.now().isoformat(), **alert}
        payload = json.dumps(message, default=str, separators=(",", ":"))
        recent_key = self._recent_key(session_id)
        try:
            with unavailable_on_error():
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.lpush(recent_key, payload)
                    pipe.ltrim(recent_key, 0, self._backlog - 1)
                    pipe.expire(recent_key, self._recent_ttl)
                    pipe.publish(f"{self._prefix}:{session_id}", payload)
                    await pipe.execute()
        except LiveStateUnavailable:
            self._deliver(session_id, json.loads(payload))
            raise

    def subscribe(self, session_id: str) -> asyncio.Queue[Alert]:
        queue: asyncio.Queue[Alert] = asyncio.Queue()
        self._subscribers.setdefault(session_id, set()).add(queue)
        return queue

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[Alert]) -> None:
        queues = self._subscribers.get(session_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[session_id]

    async def recent_alerts(self, session_id: str) -> list[Alert]:
        """The session's last `backlog` alerts, oldest first."""
        with unavailable_on_error():
            raw: list[Any] = await self._client.lrange(self._recent_key(session_id), 0, -1)
        return [_decode(item) for item in reversed(raw)]

    # the listener

    @property
    def listening(self) -> bool:
        """True while subscribed to Redis (alerts from other instances arrive)."""
        return self._listening.is_set()

    async def start(self, *, wait_seconds: float = 5.0) -> None:
        """Start the listener and wait (up to `wait_seconds`) until it is subscribed. If Redis
        cannot be reached it keeps trying in the background; see `listening`."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="redis-alerts-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), wait_seconds)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._listening.clear()

    async def _listen(self) -> None:
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await self._relay(pubsub)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if self._listening.is_set():
                    log.warning("alerts listener lost Redis (%s); retrying", exc)
            except Exception:  # a bug must not end fan-out for the life of the process
                log.exception("alerts listener failed; restarting it")
            self._listening.clear()
            await asyncio.sleep(self._reconnect)

    async def _relay(self, pubsub: PubSub) -> None:
        await pubsub.psubscribe(self._pattern)
        while True:  # wait for the confirmation: from then on, nothing published is missed
            reply = await pubsub.get_message(timeout=1.0)
            if reply is not None and reply["type"] == "psubscribe":
                break
        self._listening.set()
        log.info("alerts listener subscribed to %s", self._pattern)
        while True:
            reply = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if reply is not None and reply["type"] == "pmessage":
                self._on_message(reply["channel"], reply["data"])

    def _on_message(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        session_id = name[len(self._prefix) + 1 :]
        try:
            message = _decode(data)
        except ValueError:
            log.warning("alerts listener: dropped a message that is not a JSON object")
            return
        self._deliver(session_id, message)

    def _deliver(self, session_id: str, message: Alert) -> None:
        for queue in self._subscribers.get(session_id, ()):
            if queue.qsize() < self._backlog:
                queue.put_nowait(message)

    def _recent_key(self, session_id: str) -> str:
        return f"{self._prefix}:recent:{session_id}"


def _decode(raw: bytes | str) -> Alert:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\*?[]" else c for c in text)
