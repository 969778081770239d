"""Failure limits (R1) shared by every gateway instance through Redis.

The semantics are `InProcessAttemptLimiter`'s (see `rate_limit.py`): a fixed window opened by the
first failure, counted but not extended by later ones; `check` answers None below `limit`, else
the seconds until the window closes.

Time: the window is a Redis TTL, so it runs on the Redis server's clock. The `now` the caller
passes is checked (it must be time-zone aware, as in-process) but not used to place the window.
Tests that move a frozen clock to close a window must use `InProcessAttemptLimiter`; tests of this
class use short real windows or `reset`.

Failures: a lost or slow Redis raises `RedisUnavailable` from every method within the client's
deadline (a `LiveStateUnavailable`, and an `Unavailable(LIVE_STATE_UNAVAILABLE)`: a password join
that lets it through is refused with 503 and Retry-After, and audited like any refusal); the
caller must refuse the attempt (fail closed), never let it through unchecked.

Keys: `{prefix}:attempts:{key}`, an integer counter with the window as its TTL.
"""

from __future__ import annotations

from datetime import datetime

from gateway.adapters.live_redis import RedisClient, unavailable_on_error

__all__ = ["RedisAttemptLimiter"]

# INCR, and open the window on the first failure. A counter found without a TTL (which these
# scripts never leave behind) gets one too, so a key can never block forever.
_FAIL = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""

# {count, milliseconds left}; {0, -2} when there is no window.
_CHECK = """
local count = redis.call('GET', KEYS[1])
if not count then return {0, -2} end
return {tonumber(count), redis.call('PTTL', KEYS[1])}
"""


class RedisAttemptLimiter:
    def __init__(self, client: RedisClient, prefix: str = "sgw") -> None:
        self._client = client
        self._prefix = f"{prefix}:attempts"
        self._fail = client.register_script(_FAIL)
        self._check = client.register_script(_CHECK)

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    async def check(self, key: str, limit: int, window_seconds: int, now: datetime) -> float | None:
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be positive")
        _aware(now)
        with unavailable_on_error():
            reply = await self._check(keys=[self._key(key)])
        count, pttl = int(reply[0]), int(reply[1])
        if count < limit:
            return None
        if pttl == -2:  # expired between GET and PTTL (cannot happen inside one script)
            return None
        if pttl < 0:  # no TTL: never left by _FAIL; be safe and wait a whole window
            return float(window_seconds)
        return max(pttl, 1) / 1000.0

    async def fail(self, key: str, window_seconds: int, now: datetime) -> None:
        if window_seconds < 1:
            raise ValueError("window_seconds must be positive")
        _aware(now)
        with unavailable_on_error():
            await self._fail(keys=[self._key(key)], args=[window_seconds * 1000])

    async def reset(self, key: str) -> None:
        with unavailable_on_error():
            await self._client.delete(self._key(key))


def _aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; attach a time zone")
