"""Live state in Redis, shared by every gateway instance (the contract is in `live_memory.py`).

Redis holds only what can be rebuilt (DESIGN.md): lose it and the gateway fails closed until the
reconciliation loop has rebuilt presence from SQL and the platform. Every method turns a lost or
slow connection into `RedisUnavailable` within the client's socket timeout (see `redis_client`),
never into an answer: a `LiveStateUnavailable` for the callers that catch it, and an
`Unavailable(LIVE_STATE_UNAVAILABLE)` (503 with Retry-After) for those that let it through.

Keys (`prefix` defaults to "sgw"):

    {prefix}:live:present:{session}          hash  participant_id -> Presence as JSON, with
                                                   "owner": the process that entered it
    {prefix}:live:sessions                   set   sessions with anyone present
    {prefix}:live:removed:{session}:{pid}    str   exists while the participant is barred (24 h)
    {prefix}:live:credential:{jti}           str   a claimed media credential, until it expires
    {prefix}:live:process:{process_id}       str   exists while that process heartbeats (PX)
    {prefix}:live:authority:{session}        hash  owner, url, fence: the session's lease (PX)
    {prefix}:live:fence                      str   the fencing counter (INCR at every new owner)

Changes that touch more than one key, or read before they write, are Lua scripts (one atomic
step on the server): `enter` checks the removal mark and writes in one step, `leave` drops the
session from the index when its last participant goes, `remove_orphan` checks the owner and its
heartbeat and removes in one step. Presence hashes have no TTL: the reconciliation loop of the
owning process decides who has gone, and the sweep job (one process at a time) removes the
presences of processes whose heartbeat ran out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.adapters.live_memory import (
    REMOVED_TTL_SECONDS,
    LiveStateUnavailable,
    ParticipantRemoved,
)
from gateway.domain.errors import ErrorCode, Unavailable
from gateway.domain.liveness import Authority, OwnedPresence
from gateway.domain.models import PersonKind, Presence, SessionRole

__all__ = [
    "RedisClient",
    "RedisLiveState",
    "RedisUnavailable",
    "close_client",
    "redis_client",
    "unavailable_on_error",
]

log = logging.getLogger(__name__)

# redis-py 8 ships its own types, where `Redis` is not generic; the old types-redis stubs (if
# still installed) make it generic over the reply type. This alias reads the same under both.
RedisClient: TypeAlias = "Redis[Any]"  # type: ignore[type-arg, unused-ignore]


HEALTH_CHECK_SECONDS = 15  # a connection idle this long is PINGed before it is used again
UNAVAILABLE_MESSAGE = "The live session state is not available right now; try again shortly."


class RedisUnavailable(LiveStateUnavailable, Unavailable):
    """Redis is down, refused the connection or missed its deadline. Both a
    `LiveStateUnavailable` (what the live-state contract promises) and an `Unavailable`: a
    caller that lets it through answers 503 `live_state_unavailable` with Retry-After. The
    message is fixed: addresses and driver errors stay in the log and the cause."""

    def __init__(self) -> None:
        Unavailable.__init__(self, ErrorCode.LIVE_STATE_UNAVAILABLE, UNAVAILABLE_MESSAGE)


def redis_client(url: str, *, timeout_seconds: float = 1.0) -> RedisClient:
    """A client that gives up quickly: connect and read timeouts of `timeout_seconds`
    (GATEWAY_REDIS_TIMEOUT_SECONDS), and one immediate retry on a dropped connection only (so one
    closed by a Redis restart is replaced at once; a timeout is not retried) instead of
    redis-py's default of ten retries with backoff, which would keep a failing caller waiting
    for seconds. A pooled connection idle for `HEALTH_CHECK_SECONDS` is checked before use, so a
    connection Redis dropped while idle is replaced rather than failing a caller."""
    if not timeout_seconds > 0:
        raise ValueError("timeout_seconds must be positive")
    client: RedisClient = Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        health_check_interval=HEALTH_CHECK_SECONDS,
    )
    return client


async def close_client(client: RedisClient) -> None:
    """Close the client and its connection pool (at shutdown)."""
    with suppress(RedisConnectionError, RedisTimeoutError, OSError):
        await client.aclose()  # type: ignore[attr-defined, unused-ignore]  # stale types-redis


@contextmanager
def unavailable_on_error() -> Iterator[None]:
    """Turn a lost, refused or timed-out Redis connection (or a server still loading, or a
    replica left read-only by a failover) into `RedisUnavailable`."""
    try:
        yield
    except (
        RedisConnectionError,
        RedisTimeoutError,
        BusyLoadingError,
        ReadOnlyError,
        OSError,
    ) as exc:
        log.warning("redis unavailable", extra={"code": type(exc).__name__})
        raise RedisUnavailable() from exc


_ENTER = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""

_LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
"""

_MARK_REMOVED = """
redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
redis.call('HDEL', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
"""

_SET_HELD = """
if ARGV[3] ~= '' and redis.call('HGET', KEYS[2], 'fence') ~= ARGV[3] then return -1 end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local presence = cjson.decode(raw)
presence['held'] = (ARGV[2] == '1')
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(presence))
return 1
"""

# KEYS: authority hash, fence counter, presence hash, sessions index;
# ARGV: this process, its url, ttl in ms, session
_CLAIM_AUTHORITY = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner == ARGV[1] then
  redis.call('HSET', KEYS[1], 'url', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {owner, ARGV[2], redis.call('HGET', KEYS[1], 'fence'), 0}
end
if owner then
  return {owner, redis.call('HGET', KEYS[1], 'url'), redis.call('HGET', KEYS[1], 'fence'), 0}
end
local fence = redis.call('INCR', KEYS[2])
local present = redis.call('HGETALL', KEYS[3])
for i = 1, #present, 2 do
  local presence = cjson.decode(present[i + 1])
  if presence['owner'] ~= ARGV[1] then redis.call('HDEL', KEYS[3], present[i]) end
end
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SREM', KEYS[4], ARGV[4]) end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'url', ARGV[2], 'fence', fence)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {ARGV[1], ARGV[2], tostring(fence), 1}
"""

_RELEASE_AUTHORITY = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'fence') == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: presence hash, sessions index, the owner's heartbeat; ARGV: session, participant, owner
_REMOVE_ORPHAN = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if not raw then return 0 end
local owner = cjson.decode(raw)['owner']
if type(owner) ~= 'string' then owner = '' end
if owner ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
"""


class RedisLiveState:
    def __init__(
        self,
        client: RedisClient,
        prefix: str = "sgw",
        *,
        removed_ttl_seconds: int = REMOVED_TTL_SECONDS,
        process_id: str | None = None,
    ) -> None:
        self._client = client
        self._prefix = f"{prefix}:live"
        self._process_id = process_id or secrets.token_hex(8)
        self._removed_ttl = removed_ttl_seconds
        self._enter = client.register_script(_ENTER)
        self._leave = client.register_script(_LEAVE)
        self._mark_removed = client.register_script(_MARK_REMOVED)
        self._set_held = client.register_script(_SET_HELD)
        self._remove_orphan = client.register_script(_REMOVE_ORPHAN)
        self._claim_authority = client.register_script(_CLAIM_AUTHORITY)
        self._release_authority = client.register_script(_RELEASE_AUTHORITY)
        # present(): the read each session's callers of this turn share, not yet sent
        self._reading: dict[str, asyncio.Future[Sequence[Presence]]] = {}
        self._tasks: set[asyncio.Future[None]] = set()

    # keys

    def _present_key(self, session_id: str) -> str:
        return f"{self._prefix}:present:{session_id}"

    def _sessions_key(self) -> str:
        return f"{self._prefix}:sessions"

    def _removed_key(self, session_id: str, participant_id: str) -> str:
        return f"{self._prefix}:removed:{session_id}:{participant_id}"

    def _credential_key(self, jti: str) -> str:
        return f"{self._prefix}:credential:{jti}"

    def _process_key(self, process_id: str) -> str:
        return f"{self._prefix}:process:{process_id}"

    def _authority_key(self, session_id: str) -> str:
        return f"{self._prefix}:authority:{session_id}"

    # LiveState

    async def present(self, session_id: str) -> Sequence[Presence]:
        """Who is present. Callers asking about one session in the same turn of the event loop
        share one HGETALL, sent after that turn: each still gets a read that began after its
        call (every join reads this, and under load a session's joins arrive together)."""
        reading = self._reading.get(session_id)
        if reading is None:
            reading = asyncio.get_running_loop().create_future()
            self._reading[session_id] = reading
            asyncio.get_running_loop().call_soon(self._read_present, session_id, reading)
        # shielded: one caller giving up (its request cancelled) must not cancel the others'
        return list(await asyncio.shield(reading))  # each caller's own list

    def _read_present(self, session_id: str, reading: asyncio.Future[Sequence[Presence]]) -> None:
        del self._reading[session_id]  # from here on, later callers need a read of their own
        task = asyncio.ensure_future(self._hgetall_present(session_id, reading))
        self._tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._tasks.discard)

    async def _hgetall_present(
        self, session_id: str, reading: asyncio.Future[Sequence[Presence]]
    ) -> None:
        try:
            with unavailable_on_error():
                raw: dict[Any, Any] = await self._client.hgetall(self._present_key(session_id))
            present = tuple(_decode(value) for value in raw.values())
        except Exception as error:
            reading.set_exception(error)
            reading.exception()  # retrieved: nobody left waiting is not an unhandled error
        else:
            reading.set_result(present)

    async def enter(self, session_id: str, presence: Presence) -> list[Presence]:
        pid = presence.participant_id
        with unavailable_on_error():
            entered: Any = await self._enter(
                keys=[
                    self._present_key(session_id),
                    self._removed_key(session_id, pid),
                    self._sessions_key(),
                ],
                args=[session_id, pid, _encode(presence, self._process_id)],
            )
        if not entered:  # 0: barred; else the hash after the entry, as [field, value, ...]
            raise ParticipantRemoved(session_id, pid)
        return [_decode(value) for value in entered[1::2]]

    async def leave(self, session_id: str, participant_id: str) -> None:
        with unavailable_on_error():
            await self._leave(
                keys=[self._present_key(session_id), self._sessions_key()],
                args=[session_id, participant_id],
            )

    async def set_held(
        self, session_id: str, participant_id: str, held: bool, fence: int | None = None
    ) -> bool:
        with unavailable_on_error():
            done = await self._set_held(
                keys=[self._present_key(session_id), self._authority_key(session_id)],
                args=[participant_id, "1" if held else "0", "" if fence is None else str(fence)],
            )
        return int(done) != -1

    async def claim_authority(self, session_id: str, url: str, ttl_seconds: float) -> Authority:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        with unavailable_on_error():
            owner, at, fence, taken = await self._claim_authority(
                keys=[
                    self._authority_key(session_id),
                    f"{self._prefix}:fence",
                    self._present_key(session_id),
                    self._sessions_key(),
                ],
                args=[self._process_id, url, max(1, round(ttl_seconds * 1000)), session_id],
            )
        holder = _text(owner)
        return Authority(
            holder,
            _text(at),
            int(_text(fence)),
            mine=holder == self._process_id,
            taken_over=bool(int(taken)),
        )

    async def release_authority(self, session_id: str, fence: int) -> None:
        with unavailable_on_error():
            await self._release_authority(
                keys=[self._authority_key(session_id)], args=[self._process_id, str(fence)]
            )

    async def authority_holders(self, session_ids: Collection[str]) -> Mapping[str, str | None]:
        ordered = sorted(set(session_ids))
        if not ordered:
            return {}
        with unavailable_on_error():
            async with self._client.pipeline(transaction=False) as pipe:
                for session_id in ordered:
                    pipe.hget(self._authority_key(session_id), "owner")
                owners: list[Any] = await pipe.execute()
        return {
            s: None if owner is None else _text(owner)
            for s, owner in zip(ordered, owners, strict=True)
        }

    async def claim_credential(self, jti: str, ttl_seconds: int) -> bool:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be positive")
        with unavailable_on_error():
            claimed = await self._client.set(
                self._credential_key(jti), b"1", nx=True, ex=ttl_seconds
            )
        return bool(claimed)

    async def mark_removed(self, session_id: str, participant_id: str) -> None:
        with unavailable_on_error():
            await self._mark_removed(
                keys=[
                    self._present_key(session_id),
                    self._sessions_key(),
                    self._removed_key(session_id, participant_id),
                ],
                args=[session_id, participant_id, self._removed_ttl],
            )

    async def unmark_removed(self, session_id: str, participant_id: str) -> None:
        with unavailable_on_error():
            await self._client.delete(self._removed_key(session_id, participant_id))

    async def _session_ids(self) -> list[str]:
        """Sessions with anyone present (the index the sweep walks)."""
        with unavailable_on_error():
            members: set[Any] = await self._client.smembers(self._sessions_key())
        return sorted(_text(member) for member in members)

    async def ping(self) -> None:
        with unavailable_on_error():
            await self._client.ping()

    @property
    def process_id(self) -> str:
        return self._process_id

    async def heartbeat(self, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        milliseconds = max(1, round(ttl_seconds * 1000))
        with unavailable_on_error():
            await self._client.set(self._process_key(self._process_id), b"1", px=milliseconds)

    async def alive(self, process_ids: Collection[str]) -> frozenset[str]:
        ordered = sorted(set(process_ids))
        if not ordered:
            return frozenset()
        with unavailable_on_error():
            values: list[Any] = await self._client.mget([self._process_key(p) for p in ordered])
        return frozenset(p for p, value in zip(ordered, values, strict=True) if value is not None)

    async def owned_presences(self) -> Sequence[OwnedPresence]:
        sessions = await self._session_ids()
        with unavailable_on_error():
            async with self._client.pipeline(transaction=False) as pipe:
                for session_id in sessions:
                    pipe.hgetall(self._present_key(session_id))
                hashes: list[dict[Any, Any]] = await pipe.execute()
        return [
            OwnedPresence(session_id, _text(participant_id), _owner(raw))
            for session_id, present in zip(sessions, hashes, strict=True)
            for participant_id, raw in present.items()
        ]

    async def remove_orphan(self, orphan: OwnedPresence) -> bool:
        with unavailable_on_error():
            removed = await self._remove_orphan(
                keys=[
                    self._present_key(orphan.session_id),
                    self._sessions_key(),
                    self._process_key(orphan.owner or ""),
                ],
                args=[orphan.session_id, orphan.participant_id, orphan.owner or ""],
            )
        return bool(removed)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _encode(presence: Presence, owner: str) -> str:
    return json.dumps(
        {
            "participant_id": presence.participant_id,
            "role": presence.role.value,
            "person_kind": presence.person_kind.value,
            "vetted_adult": presence.vetted_adult,
            "held": presence.held,
            "owner": owner,
        },
        separators=(",", ":"),
    )


def _owner(raw: bytes | str) -> str | None:
    owner = json.loads(raw).get("owner")
    return owner if isinstance(owner, str) and owner else None


def _decode(raw: bytes | str) -> Presence:
    data = json.loads(raw)
    return Presence(
        participant_id=str(data["participant_id"]),
        role=SessionRole(data["role"]),
        person_kind=PersonKind(data["person_kind"]),
        vetted_adult=data["vetted_adult"] is True,
        held=data["held"] is True,
    )
