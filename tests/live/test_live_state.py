"""The live-state contract, run over the in-process state and Redis (`live` fixture), then what
only Redis has: several processes sharing it, and failing closed when it is lost."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from gateway.adapters.live_memory import (
    InProcessLiveState,
    LiveStateUnavailable,
    ParticipantRemoved,
)
from gateway.adapters.live_redis import RedisClient, RedisLiveState, close_client, redis_client
from gateway.domain.liveness import OwnedPresence
from gateway.domain.models import PersonKind, Presence, SessionRole
from tests.plugins.servers import RedisServer

LiveStateImpl = InProcessLiveState | RedisLiveState


def host(pid: str = "p_host", held: bool = False) -> Presence:
    return Presence(pid, SessionRole.HOST, PersonKind.STAFF, vetted_adult=True, held=held)


def child(pid: str = "p_child", held: bool = False) -> Presence:
    return Presence(pid, SessionRole.CHILD, PersonKind.CHILD, vetted_adult=False, held=held)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[RedisClient]:
    c = redis_client(redis_url, timeout_seconds=1.0)
    try:
        yield c
    finally:
        await close_client(c)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def live(request: pytest.FixtureRequest, monotonic: FakeMonotonic) -> Iterator[LiveStateImpl]:
    if request.param == "memory":
        yield InProcessLiveState(monotonic=monotonic)
    else:
        yield RedisLiveState(request.getfixturevalue("client"), prefix="t")


@pytest.fixture
def pass_time(live: LiveStateImpl, monotonic: FakeMonotonic) -> Callable[[float], Awaitable[None]]:
    """Let `seconds` go by for the state's expiries: its fake clock, or Redis's own."""

    async def later(seconds: float) -> None:
        if isinstance(live, InProcessLiveState):
            monotonic.now += seconds
        else:
            await asyncio.sleep(seconds)

    return later


def ids(presences: object) -> set[str]:
    assert isinstance(presences, list)
    return {p.participant_id for p in presences}


# --- the shared contract -------------------------------------------------------------------


async def _sessions(live: LiveStateImpl) -> list[str]:
    """The sessions with anyone present, as the sweep sees them (`owned_presences`)."""
    return sorted({p.session_id for p in await live.owned_presences()})


async def _barred(live: LiveStateImpl, session_id: str, presence: Presence) -> bool:
    """Whether `enter` refuses this participant as removed (and nothing changed if so); a
    successful probe is undone."""
    try:
        await live.enter(session_id, presence)
    except ParticipantRemoved:
        return True
    await live.leave(session_id, presence.participant_id)
    return False


async def test_enter_present_leave(live: LiveStateImpl) -> None:
    assert await live.present("s1") == []
    await live.enter("s1", host())
    await live.enter("s1", child())
    await live.enter("s2", host("p_other"))
    assert sorted(await live.present("s1"), key=lambda p: p.participant_id) == [child(), host()]
    assert await live.present("s2") == [host("p_other")]

    await live.leave("s1", "p_child")
    assert await live.present("s1") == [host()]
    await live.leave("s1", "p_child")  # again: leaving always works
    await live.leave("s1", "nobody")
    await live.leave("no-such-session", "nobody")
    assert await live.present("s1") == [host()]


async def test_enter_returns_who_is_present_with_the_newcomer(live: LiveStateImpl) -> None:
    """The count a child's admission is confirmed on is read in the entry's own step."""
    assert await live.enter("s1", host()) == [host()]
    await live.enter("s2", host("p_other"))
    now_present = await live.enter("s1", child())
    assert sorted(now_present, key=lambda p: p.participant_id) == [child(), host()]
    await live.mark_removed("s1", "p_child")
    with pytest.raises(ParticipantRemoved):
        await live.enter("s1", child())


async def test_enter_again_replaces(live: LiveStateImpl) -> None:
    await live.enter("s1", child(held=True))
    await live.enter("s1", child(held=False))
    assert await live.present("s1") == [child(held=False)]


async def test_every_role_and_kind_round_trips(live: LiveStateImpl) -> None:
    people = [
        Presence(f"p_{role}_{kind}", role, kind, vetted_adult=(i % 2 == 0), held=(i % 3 == 0))
        for i, (role, kind) in enumerate(
            (role, kind) for role in SessionRole for kind in PersonKind
        )
    ]
    for presence in people:
        await live.enter("s1", presence)
    assert sorted(await live.present("s1"), key=lambda p: p.participant_id) == sorted(
        people, key=lambda p: p.participant_id
    )


async def test_sessions_lists_those_with_anyone_present(live: LiveStateImpl) -> None:
    assert await _sessions(live) == []
    await live.enter("s1", host())
    await live.enter("s1", child())
    await live.enter("s2", host())
    assert sorted(await _sessions(live)) == ["s1", "s2"]
    await live.leave("s1", "p_host")
    assert sorted(await _sessions(live)) == ["s1", "s2"]
    await live.leave("s1", "p_child")
    assert await _sessions(live) == ["s2"]
    await live.mark_removed("s2", "p_host")
    assert await _sessions(live) == []


async def test_unmark_removed_lets_them_enter_again(live: LiveStateImpl) -> None:
    """The host let them back in: `enter` accepts them again, in that session only."""
    await live.mark_removed("s1", "p_child")
    await live.mark_removed("s2", "p_child")
    await live.unmark_removed("s1", "p_child")
    await live.enter("s1", child())
    assert await live.present("s1") == [child()]
    assert await _barred(live, "s2", child())
    await live.unmark_removed("s3", "p_child")  # never removed: nothing to do


async def test_set_held(live: LiveStateImpl) -> None:
    await live.enter("s1", host())
    await live.enter("s1", child())
    await live.set_held("s1", "p_child", True)
    assert set(await live.present("s1")) == {host(), child(held=True)}
    await live.set_held("s1", "p_child", True)  # idempotent
    assert set(await live.present("s1")) == {host(), child(held=True)}
    await live.set_held("s1", "p_child", False)
    assert set(await live.present("s1")) == {host(), child(held=False)}


async def test_set_held_never_makes_anyone_present(live: LiveStateImpl) -> None:
    await live.set_held("s1", "p_child", True)
    assert await live.present("s1") == []
    assert await _sessions(live) == []
    await live.enter("s1", host())
    await live.set_held("s1", "p_child", True)
    assert await live.present("s1") == [host()]


async def test_claim_credential_once_only(live: LiveStateImpl) -> None:
    assert await live.claim_credential("jti-1", 60) is True
    assert await live.claim_credential("jti-1", 60) is False
    assert await live.claim_credential("jti-1", 60) is False
    assert await live.claim_credential("jti-2", 60) is True
    with pytest.raises(ValueError):
        await live.claim_credential("jti-3", 0)


async def test_concurrent_claims_grant_exactly_one(live: LiveStateImpl) -> None:
    results = await asyncio.gather(*(live.claim_credential("jti-race", 60) for _ in range(20)))
    assert results.count(True) == 1


async def test_mark_removed_takes_out_and_keeps_out(live: LiveStateImpl) -> None:
    await live.enter("s1", host())
    await live.enter("s1", child())
    assert not await _barred(live, "s1", child())

    await live.mark_removed("s1", "p_child")
    assert await live.present("s1") == [host()]
    assert await _barred(live, "s1", child())
    with pytest.raises(ParticipantRemoved) as raised:
        await live.enter("s1", child())
    assert (raised.value.session_id, raised.value.participant_id) == ("s1", "p_child")
    assert await live.present("s1") == [host()]
    await live.leave("s1", "p_child")  # leaving still works

    # only this participant, only this session
    assert not await _barred(live, "s2", child())
    await live.enter("s2", child())
    assert not await _barred(live, "s1", host())
    await live.enter("s1", host())


async def test_mark_removed_someone_not_present(live: LiveStateImpl) -> None:
    await live.mark_removed("s1", "p_child")
    assert await _barred(live, "s1", child())
    assert await live.present("s1") == []
    assert await _sessions(live) == []
    with pytest.raises(ParticipantRemoved):
        await live.enter("s1", child())


async def test_ping(live: LiveStateImpl) -> None:
    await live.ping()


# presences outliving their process


async def test_enter_records_this_process_as_owner(live: LiveStateImpl) -> None:
    me = live.process_id
    assert me
    assert await live.owned_presences() == []
    await live.enter("s1", host())
    await live.enter("s1", child())
    await live.enter("s2", host())
    await live.set_held("s1", "p_child", True)  # keeps the owner
    assert sorted(await live.owned_presences(), key=lambda p: (p.session_id, p.participant_id)) == [
        OwnedPresence("s1", "p_child", me),
        OwnedPresence("s1", "p_host", me),
        OwnedPresence("s2", "p_host", me),
    ]
    await live.leave("s1", "p_child")
    await live.mark_removed("s2", "p_host")
    assert await live.owned_presences() == [OwnedPresence("s1", "p_host", me)]


async def test_heartbeat_keeps_a_process_alive_until_it_runs_out(
    live: LiveStateImpl, pass_time: Callable[[float], Awaitable[None]]
) -> None:
    me = live.process_id
    assert await live.alive([]) == frozenset()
    assert await live.alive([me, "other"]) == frozenset()
    await live.heartbeat(1.0)
    assert await live.alive([me, "other"]) == frozenset({me})
    await pass_time(0.6)
    await live.heartbeat(1.0)  # renewed in time
    await pass_time(0.6)
    assert await live.alive([me]) == frozenset({me})
    await pass_time(0.6)
    assert await live.alive([me]) == frozenset()
    with pytest.raises(ValueError):
        await live.heartbeat(0)


async def test_remove_orphan_only_once_its_owner_is_silent(
    live: LiveStateImpl, pass_time: Callable[[float], Awaitable[None]]
) -> None:
    me = live.process_id
    await live.enter("s1", host())
    await live.enter("s1", child())
    await live.heartbeat(1.0)
    mine = OwnedPresence("s1", "p_host", me)
    assert not await live.remove_orphan(mine)  # its owner is alive
    assert not await live.remove_orphan(OwnedPresence("s1", "p_host", "other"))  # not its owner
    assert not await live.remove_orphan(OwnedPresence("s1", "p_host", None))
    assert not await live.remove_orphan(OwnedPresence("s1", "nobody", me))
    assert ids(await live.present("s1")) == {"p_host", "p_child"}

    await pass_time(1.1)
    assert await live.remove_orphan(mine)
    assert await live.present("s1") == [child()]
    assert not await live.remove_orphan(mine)  # once
    assert await _sessions(live) == ["s1"]
    assert await live.remove_orphan(OwnedPresence("s1", "p_child", me))
    assert await _sessions(live) == []  # the last one out takes the session off the index


# --- in-process only: expiry on its monotonic clock -----------------------------------------


async def test_memory_credential_and_removal_expire(monotonic: FakeMonotonic) -> None:
    live = InProcessLiveState(removed_ttl_seconds=100, monotonic=monotonic)
    assert await live.claim_credential("jti", 10)
    await live.mark_removed("s1", "p_child")
    monotonic.now += 9.9
    assert not await live.claim_credential("jti", 10)
    monotonic.now += 0.1
    assert await live.claim_credential("jti", 10)
    assert await _barred(live, "s1", child())
    monotonic.now += 90
    assert not await _barred(live, "s1", child())
    await live.enter("s1", child())


async def test_memory_expired_entries_are_swept(monotonic: FakeMonotonic) -> None:
    live = InProcessLiveState(monotonic=monotonic)
    for i in range(1000):
        assert await live.claim_credential(f"jti-{i}", 1)
        monotonic.now += 1
    assert len(live._credentials) <= 256


# --- Redis only ----------------------------------------------------------------------------


async def test_redis_two_processes_share_presence(redis_url: str) -> None:
    a_client = redis_client(redis_url)
    b_client = redis_client(redis_url)
    try:
        a, b = RedisLiveState(a_client, "t"), RedisLiveState(b_client, "t")
        await a.enter("s1", host())
        await b.enter("s1", child())
        assert set(await a.present("s1")) == {host(), child()}
        assert set(await b.present("s1")) == {host(), child()}
        await b.set_held("s1", "p_host", True)
        assert host(held=True) in await a.present("s1")
        assert await a.claim_credential("jti", 60)
        assert not await b.claim_credential("jti", 60)
        await a.mark_removed("s1", "p_child")
        with pytest.raises(ParticipantRemoved):
            await b.enter("s1", child())
        assert await _sessions(b) == ["s1"]
        # another prefix is another gateway deployment
        assert await RedisLiveState(a_client, "other").present("s1") == []
    finally:
        await close_client(a_client)
        await close_client(b_client)


async def test_redis_presences_of_a_silent_process_are_orphans_others_are_not(
    client: RedisClient,
) -> None:
    a = RedisLiveState(client, "t", process_id="A")
    b = RedisLiveState(client, "t", process_id="B")
    await a.enter("s1", host())
    await b.enter("s1", host("p_observer"))
    await b.enter("s1", child())
    await a.set_held("s1", "p_child", True)  # another process holding B's child: still B's
    await a.heartbeat(10)
    owned = await a.owned_presences()
    assert set(owned) == {
        OwnedPresence("s1", "p_host", "A"),
        OwnedPresence("s1", "p_observer", "B"),
        OwnedPresence("s1", "p_child", "B"),
    }
    assert await a.alive({"A", "B"}) == frozenset({"A"})
    assert not await a.remove_orphan(OwnedPresence("s1", "p_host", "A"))

    # the observer re-joined through A between the sweep's read and its removal: kept
    await a.enter("s1", host("p_observer"))
    assert not await a.remove_orphan(OwnedPresence("s1", "p_observer", "B"))
    # B came back (a long pause, not a death) before its child was removed: kept
    await b.heartbeat(10)
    assert not await a.remove_orphan(OwnedPresence("s1", "p_child", "B"))
    assert ids(await a.present("s1")) == {"p_host", "p_observer", "p_child"}
    await client.delete("t:live:process:B")
    assert await a.remove_orphan(OwnedPresence("s1", "p_child", "B"))
    assert ids(await b.present("s1")) == {"p_host", "p_observer"}


async def test_redis_presence_without_an_owner_is_nobodys(client: RedisClient) -> None:
    """Written by a gateway that did not record owners: an orphan (decided closed)."""
    live = RedisLiveState(client, "t", process_id="A")
    await live.heartbeat(10)
    legacy = {
        "participant_id": "p_host",
        "role": "host",
        "person_kind": "staff",
        "vetted_adult": True,
        "held": False,
    }
    await client.hset("t:live:present:s1", "p_host", json.dumps(legacy))
    await client.sadd("t:live:sessions", "s1")
    assert await live.present("s1") == [host()]
    assert await live.owned_presences() == [OwnedPresence("s1", "p_host", None)]
    assert not await live.remove_orphan(OwnedPresence("s1", "p_host", "A"))
    assert await live.remove_orphan(OwnedPresence("s1", "p_host", None))
    assert await _sessions(live) == []


async def test_redis_heartbeat_expires_in_redis(client: RedisClient) -> None:
    live = RedisLiveState(client, "t", process_id="A")
    await live.heartbeat(2.5)
    assert 2000 < await client.pttl("t:live:process:A") <= 2500


async def test_redis_credential_expires(client: RedisClient) -> None:
    live = RedisLiveState(client, "t")
    assert await live.claim_credential("jti", 1)
    assert 0 < await client.ttl("t:live:credential:jti") <= 1


async def test_redis_removal_has_a_ttl(client: RedisClient) -> None:
    live = RedisLiveState(client, "t", removed_ttl_seconds=3600)
    await live.mark_removed("s1", "p_child")
    assert 3590 < await client.ttl("t:live:removed:s1:p_child") <= 3600


async def test_redis_enter_and_remove_race_never_leaves_a_removed_participant_present(
    client: RedisClient,
) -> None:
    live = RedisLiveState(client, "t")
    for i in range(30):
        pid = f"p_{i}"
        results = await asyncio.gather(
            live.enter("s1", child(pid)),
            live.mark_removed("s1", pid),
            return_exceptions=True,
        )
        assert all(
            isinstance(r, ParticipantRemoved) or not isinstance(r, BaseException) for r in results
        )
        assert pid not in ids(await live.present("s1"))


async def _every_call(live: RedisLiveState) -> None:
    calls = [
        live.ping(),
        live.present("s1"),
        live.enter("s1", child()),
        live.leave("s1", "p_child"),
        live.set_held("s1", "p_child", True),
        live.claim_credential("jti", 60),
        live.mark_removed("s1", "p_child"),
        live.heartbeat(10),
        live.alive(["A"]),
        live.owned_presences(),
        live.remove_orphan(OwnedPresence("s1", "p_child", "A")),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(LiveStateUnavailable):
            await call
        assert time.monotonic() - started < 1.5


async def test_redis_lost_fails_closed_then_recovers(
    redis_server: RedisServer, client: RedisClient
) -> None:
    live = RedisLiveState(client, "t")
    await live.enter("s1", host())  # the pool now holds a connection that the kill will break
    redis_server.stop(kill=True)
    try:
        await _every_call(live)
    finally:
        redis_server.start()
    await live.ping()
    assert await live.present("s1") == []  # nothing persisted: rebuilt by reconciliation
    await live.enter("s1", host())
    assert await live.present("s1") == [host()]


async def test_redis_hung_times_out(redis_server: RedisServer, client: RedisClient) -> None:
    live = RedisLiveState(client, "t")
    await live.ping()
    redis_server.command("CLIENT", "PAUSE", "1200", "ALL")
    started = time.monotonic()
    with pytest.raises(LiveStateUnavailable):  # a retry would outlast the pause and succeed
        await live.present("s1")
    assert time.monotonic() - started < 1.8  # one 1 s socket timeout, not retried
    await asyncio.sleep(0.3)
    await live.ping()


# --- one authority per live session ----------------------------------------------------------


async def test_authority_is_taken_renewed_and_released(
    live: LiveStateImpl, pass_time: Callable[[float], Awaitable[None]]
) -> None:
    first = await live.claim_authority("s1", "http://a", 0.5)
    assert first.mine and first.taken_over and first.url == "http://a"
    again = await live.claim_authority("s1", "http://a", 0.5)
    assert again.mine and not again.taken_over and again.fence == first.fence
    assert await live.set_held("s1", "p_child", True, first.fence)
    assert not await live.set_held("s1", "p_child", True, first.fence + 1)  # not the fence
    await live.release_authority("s1", first.fence)
    retaken = await live.claim_authority("s1", "http://a", 0.5)
    assert retaken.taken_over and retaken.fence > first.fence  # a new owner, a new fence
    assert not await live.set_held("s1", "p_child", True, first.fence)  # the old one is stale
    await pass_time(0.6)
    assert not await live.set_held("s1", "p_child", True, retaken.fence)  # lapsed


async def test_redis_one_owner_at_a_time_and_a_takeover_drops_the_dead_owners_presences(
    redis_url: str,
) -> None:
    a_client, b_client = redis_client(redis_url), redis_client(redis_url)
    try:
        a = RedisLiveState(a_client, "t", process_id="A")
        b = RedisLiveState(b_client, "t", process_id="B")
        owner = await a.claim_authority("s1", "http://a", 0.5)
        await a.enter("s1", host())
        await a.enter("s1", adult_observer := host("p_obs"))
        await a.enter("s1", child())
        other = await b.claim_authority("s1", "http://b", 0.5)
        assert not other.mine and other.owner == "A" and other.url == "http://a"
        assert other.fence == owner.fence
        assert not await b.set_held("s1", "p_child", True, owner.fence + 1)
        await asyncio.sleep(0.6)  # A died: its lease runs out
        taken = await b.claim_authority("s1", "http://b", 0.5)
        assert taken.mine and taken.taken_over and taken.fence > owner.fence
        assert await b.present("s1") == []  # A's media died with it: nobody counts
        assert adult_observer not in await b.present("s1")
        assert not await a.set_held("s1", "p_child", False, owner.fence)  # A is fenced off
        lost = await a.claim_authority("s1", "http://a", 0.5)
        assert not lost.mine and lost.url == "http://b"
    finally:
        await close_client(a_client)
        await close_client(b_client)


async def test_joins_arriving_together_share_one_claim_of_the_session(
    client: RedisClient,
) -> None:
    """Sixty-four joins reaching the owner when its lease is due make one round trip to the
    live state, not sixty-four; each of them learns the outcome (here: someone else owns it)."""
    from datetime import UTC, datetime

    from gateway.clock import FrozenClock
    from gateway.services.live.authority import SessionAuthority, SessionElsewhere
    from gateway.services.live.state import LivePorts

    async def claims_made() -> int:
        stats = await client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))

    def authority(process: str, url: str) -> SessionAuthority:
        live = RedisLiveState(client, "t", process_id=process)
        clock = FrozenClock(datetime.now(UTC))
        ports = LivePorts(None, live, None, None, None, None, clock)  # type: ignore[arg-type]
        return SessionAuthority(ports, url, 15)

    mine = authority("A", "http://a")
    await asyncio.gather(*(mine.claim("s1") for _ in range(64)))
    before = await claims_made()
    await asyncio.gather(*(mine.claim("s1") for _ in range(64)))  # lease fresh: no round trip
    assert await claims_made() == before

    other = authority("B", "http://b")
    before = await claims_made()
    outcomes = await asyncio.gather(*(other.claim("s1") for _ in range(64)), return_exceptions=True)
    assert await claims_made() - before == 1
    assert all(isinstance(o, SessionElsewhere) and o.location == "http://a" for o in outcomes)
