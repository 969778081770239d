"""Two gateway processes on PostgreSQL and Redis: hold, release, removal and ending come out
the same whichever process each person reached (R4, DESIGN.md "One authority per live
session"). Everyone's media is on the session's owner process (A, where the first join
landed: the embedded relay keeps a session's media in one process); their other requests
(leave, remove, end, streams) may reach either process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.live._gateways import (
    Admin,
    Attendee,
    SupervisedSession,
    Watch,
    environment,
    new_org,
    ready,
    serving,
    supervised_session,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.media]

RECONCILE = 1.0
LIVE_WITHIN = 5.0  # every change reaches every connected person within this


@dataclass
class Twin:
    a: str
    b: str
    admin: Admin
    session: SupervisedSession
    people: dict[str, Attendee]

    def watch(self, role: str, base: str) -> Watch:
        person = self.people[role]
        return Watch(person.device, base, person.token)


@dataclass
class Pair:
    """Two gateway processes on one PostgreSQL database (at the newest schema) and one Redis."""

    env: dict[str, str]
    a: str
    b: str


@contextmanager
def _pair(tmp_path: Path, redis_url: str, postgres_url: str, reconcile: float) -> Iterator[Pair]:
    env = environment(
        tmp_path,
        redis_url,
        grace_seconds=60,
        database_url=postgres_url,
        GATEWAY_RECONCILE_SECONDS=str(reconcile),
    )
    with serving(env, 2) as (a, b):
        yield Pair(env, a.base, b.base)


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
    module_redis_url: str,
    module_postgres_url_at_head: str,
) -> Iterator[Pair]:
    """Started once for the module's tests (a start takes seconds to tens of seconds on a busy
    machine): each test has its own organisation, people and session on them."""
    tmp_path = tmp_path_factory.mktemp("pair")
    with _pair(tmp_path, module_redis_url, module_postgres_url_at_head, RECONCILE) as started:
        yield started


@asynccontextmanager
async def _twin(pair: Pair) -> AsyncIterator[Twin]:
    devices = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(4)]
    people: dict[str, Attendee] = {}
    try:
        admin_http = devices[0]
        await ready(admin_http, pair.a, pair.b)
        key = await new_org(pair.env)
        session = await supervised_session(admin_http, pair.a, key)
        for device, role in zip(devices[1:], ("host", "observer", "child"), strict=True):
            people[role] = Attendee(role, device, session.tokens[role])
        yield Twin(pair.a, pair.b, Admin(admin_http, pair.a, key), session, people)
    finally:
        for person in people.values():
            await person.hang_up()
        for device in devices:
            await device.close()


@pytest.fixture
async def twin(pair: Pair) -> AsyncIterator[Twin]:
    async with _twin(pair) as started:
        yield started


def _state(outcome: str) -> object:
    return lambda e: e["type"] == "state" and e["outcome"] == outcome


async def test_observer_leaving_through_the_other_process_holds_the_child_and_returning_releases(
    twin: Twin,
) -> None:
    host, observer, child = twin.people["host"], twin.people["observer"], twin.people["child"]
    await host.arrive(twin.a, twin.admin)
    await observer.arrive(twin.a, twin.admin)
    assert (await child.arrive(twin.a, twin.admin))["outcome"] == "admit"
    stream = twin.watch("child", twin.a)
    try:
        await stream.until(_state("admit"), 5)
        mark = stream.mark()
        # The observer's "leave" reaches process B; their media is on A.
        async with observer.device.post(twin.b + "/v1/leave", json={"token": observer.token}) as r:
            assert r.status == 200
        held = await stream.until(_state("hold"), LIVE_WITHIN, mark)  # no grace: on purpose
        assert held["grants"] == {"can_publish": False, "can_subscribe": False}
        incidents = await twin.admin.incidents()
        assert [i["kind"] for i in incidents] == ["supervision_breach"]
        kinds = {e["kind"] for e in await twin.admin.audit()}
        assert {"participant.left", "participant.left_elsewhere", "supervision.breach"} <= kinds

        mark = stream.mark()
        await observer.hang_up()
        await observer.arrive(twin.a, twin.admin)  # back, with media: two adults again
        await stream.until(_state("admit"), LIVE_WITHIN, mark)
    finally:
        await stream.close()


async def test_host_ending_on_one_process_disconnects_everyone_on_the_other(twin: Twin) -> None:
    host, observer, child = twin.people["host"], twin.people["observer"], twin.people["child"]
    await host.arrive(twin.a, twin.admin)
    await observer.arrive(twin.a, twin.admin)
    await child.arrive(twin.a, twin.admin)
    child_stream = twin.watch("child", twin.a)
    observer_stream = twin.watch("observer", twin.b)  # a stream on the other process
    try:
        await child_stream.until(_state("admit"), 5)
        async with host.device.post(twin.b + "/v1/live/end", json={"token": host.token}) as r:
            assert r.status == 200
        await child_stream.until(lambda e: e["type"] == "ended", LIVE_WITHIN)
        await observer_stream.until(lambda e: e["type"] == "ended", LIVE_WITHIN)
        session = await twin.admin.get(f"/v1/sessions/{twin.session.id}")
        assert session["ended_at"] is not None
        async with child.device.post(
            twin.a + "/v1/live/events", json={"token": child.token}
        ) as again:
            assert again.status == 409  # session_ended: no stream any more
    finally:
        await child_stream.close()
        await observer_stream.close()


async def test_host_on_one_process_removes_a_child_seated_on_the_other(twin: Twin) -> None:
    host, observer, child = twin.people["host"], twin.people["observer"], twin.people["child"]
    await host.arrive(twin.a, twin.admin)  # everyone's media is on A, the session's owner
    await observer.arrive(twin.a, twin.admin)
    assert (await child.arrive(twin.a, twin.admin))["outcome"] == "admit"
    stream = twin.watch("child", twin.a)
    try:
        await stream.until(_state("admit"), 5)
        async with host.device.post(
            twin.b + "/v1/live/remove", json={"token": host.token, "identity": child.identity}
        ) as r:
            assert r.status == 200
        removed = await stream.until(lambda e: e["type"] == "removed", LIVE_WITHIN)
        assert removed["reason"] == "participant_removed"
        async with child.device.post(
            twin.a + "/v1/join", json={"token": child.token, "password": "open-sesame"}
        ) as again:
            assert again.status == 403
        disconnected = await twin.admin.audit("participant.disconnected")
        assert [e["actor"] for e in disconnected] == [child.identity]
    finally:
        await stream.close()


@pytest.fixture
async def slow_twin(
    tmp_path: Path,
    redis_url: str,
    postgres_url: str,
    schema_at_head: Callable[[str], None],
) -> AsyncIterator[Twin]:
    """Two processes whose reconciliation is far slower than the 5 s promise: what reaches
    people in time is the nudge."""
    schema_at_head(postgres_url)
    with _pair(tmp_path, redis_url, postgres_url, 30) as slow:
        async with _twin(slow) as started:
            yield started


async def test_a_consent_withdrawn_through_the_other_process_reaches_the_child_at_once(
    slow_twin: Twin,
) -> None:
    twin = slow_twin
    host, observer, child = twin.people["host"], twin.people["observer"], twin.people["child"]
    await host.arrive(twin.a, twin.admin)
    await observer.arrive(twin.a, twin.admin)
    assert (await child.arrive(twin.a, twin.admin))["outcome"] == "admit"
    stream = twin.watch("child", twin.a)
    try:
        await stream.until(_state("admit"), 5)
        child_id = next(
            p["person_id"]
            for p in (await twin.admin.get(f"/v1/sessions/{twin.session.id}/participants"))["items"]
            if p["role"] == "child"
        )
        guardian_id = (await twin.admin.get(f"/v1/children/{child_id}"))["guardian_ids"][0]
        async with twin.admin.http.post(
            twin.b + "/v1/consents",
            json={
                "subject_kind": "child",
                "subject_id": child_id,
                "purpose": "participation",
                "action": "withdraw",
                "given_by_kind": "guardian",
                "given_by_id": guardian_id,
            },
            headers={"Authorization": f"Bearer {twin.admin.key}"},
        ) as withdrawn:
            assert withdrawn.status == 201
        removed = await stream.until(lambda e: e["type"] == "removed", LIVE_WITHIN)
        assert removed["reason"] == "no_participation_consent"
    finally:
        await stream.close()
