"""Clean errors over real HTTP: no input gives a 5xx; a wrong method is 405 with `Allow`; a body
that is not JSON is 415; every answer carries a request id, `no-store`, `nosniff` and no
version banner; anonymous refusals cannot flood the audit log."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import timedelta
from typing import Any

import pytest

from gateway.app import JsonLogFormatter
from gateway.http.routes import ALL_ROUTES
from tests.http.audit_rows import entries_without_org
from tests.http.world import World, build_world
from tests.plugins.gateway_server import Answer, Client, Gateway


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """None of this depends on the database engine (test_fuzz runs on PostgreSQL)."""
    return sqlite_url


async def _refusals(world: World) -> list[dict[str, Any]]:
    answer = await world.admin.get("/v1/audit?kind=request.refused&limit=500")
    assert answer.status == 200, answer.body
    return list(answer.body["items"])


def _refused(answer: Answer, status: int, code: str) -> None:
    assert (answer.status, answer.code) == (status, code), answer.body
    assert set(answer.body["error"]) == {"code", "message"}


async def test_odd_digits_and_extreme_times_are_refused_and_audited(gateway: Gateway) -> None:
    world = await build_world(gateway)
    seen = len(await _refusals(world))
    for path in (
        "/v1/audit?limit=²",
        "/v1/audit?limit=%E2%91%A0",  # ①
        "/v1/audit?after=①",
        "/v1/audit?after=١٢",  # Arabic-Indic digits
        "/v1/audit?limit=%2B5",
        "/v1/audit?limit=5&limit=6",
        "/v1/audit?since=0001-01-01T00:00:00%2B14:00",
        "/v1/audit?until=9999-12-31T23:59:59-14:00",
        "/v1/audit?session_id=a%00b",
        "/v1/audit?kind=a%0Ab",
        "/v1/incidents?limit=²",
        "/v1/incidents?limit=0",
        "/v1/incidents?status=OPEN",
        "/v1/incidents?as_staff=x%00",
        f"/v1/incidents/{'a' * 32}?as_staff=²&as_staff=x",
    ):
        answer = await world.admin.get(path)
        _refused(answer, 400, "query_invalid")
        assert "²" not in answer.body["error"]["message"]
    refused = await _refusals(world)
    assert len(refused) == seen + 15
    assert {entry["data"]["code"] for entry in refused[seen:]} == {"query_invalid"}

    start = gateway.clock.now()
    session = {"kind": "group", "title": "Maths club", "host_staff_id": world.ids["Tina Tutor"]}
    for starts_at, ends_at in (
        ("0001-01-01T00:00:00+14:00", "0001-01-01T01:00:00+14:00"),
        ("9999-12-31T23:00:00-14:00", "9999-12-31T23:59:59-14:00"),
        ("1900-01-01T00:00:00Z", "1900-01-01T01:00:00Z"),
        ((start + timedelta(days=999_999)).isoformat(), "9999-12-31T23:59:59Z"),
        (start.isoformat(), "2026-11-23T12:00:00"),  # no offset
    ):
        answer = await world.admin.post(
            "/v1/sessions", {**session, "starts_at": starts_at, "ends_at": ends_at}
        )
        _refused(answer, 400, "body_invalid")
    refused = await _refusals(world)
    assert [entry["data"]["code"] for entry in refused[seen + 15 :]] == ["body_invalid"] * 5


async def test_a_wrong_method_is_405_with_allow(gateway: Gateway) -> None:
    world = await build_world(gateway)
    seen = len(await _refusals(world))
    for method, path, allowed in (
        ("DELETE", "/v1/staff", {"GET", "POST"}),
        ("PUT", f"/v1/sessions/{world.session['id']}", {"GET"}),
        ("GET", "/v1/consents", {"POST"}),
        ("PATCH", "/v1/join", {"POST"}),
        ("POST", "/v1/openapi.json", {"GET", "HEAD"}),
    ):
        answer = await world.admin.call(method, path, {})
        _refused(answer, 405, "method_not_allowed")
        assert set(answer.headers["Allow"].split(",")) == allowed, (path, answer.headers)
    # Audited: under the organisation where the route takes its key (public routes read no
    # key, so those refusals are anonymous ones).
    refused = await _refusals(world)
    assert [entry["data"]["code"] for entry in refused[seen:]] == ["method_not_allowed"] * 3
    assert [entry["data"]["method"] for entry in refused[seen:]] == ["DELETE", "PUT", "GET"]
    anonymous = await entries_without_org(gateway, "request.refused")
    assert [e.data["method"] for e in anonymous[-2:]] == ["PATCH", "POST"]


async def _post_without_content_type(
    client: Client, path: str, raw: bytes, method: str = "POST"
) -> Answer:
    headers = {"Authorization": f"Bearer {client.key}"} if client.key else {}
    async with client.http.request(
        method, client.base + path, data=raw, headers=headers, skip_auto_headers=["Content-Type"]
    ) as response:
        assert "Content-Type" not in response.request_info.headers
        return Answer(response.status, await response.json(), response.headers)


async def test_every_json_route_refuses_a_body_that_is_not_json(gateway: Gateway) -> None:
    world = await build_world(gateway)
    anonymous = await gateway.client()
    before = len((await world.admin.get("/v1/guardians")).body["items"])
    with_bodies = [route for route in ALL_ROUTES if route.body is not None]
    assert len(with_bodies) >= 15
    for route in with_bodies:
        path = route.path.replace("{id}", world.session["id"]).replace("{participant}", "p")
        client = anonymous if route.public else world.admin
        for content_type, raw in (
            ("text/plain", b'{"name": "Gail Green", "contact": "call 0100"}'),
            ("application/x-www-form-urlencoded", b"name=Gail+Green&contact=call+0100"),
            ("multipart/form-data; boundary=x", b"--x\r\n\r\n{}\r\n--x--\r\n"),
            (None, b'{"token": "abc"}'),
        ):
            if content_type is None:
                answer = await _post_without_content_type(client, path, raw, route.method)
            else:
                headers = {"Content-Type": content_type}
                answer = await client.call(route.method, path, raw=raw, headers=headers)
            _refused(answer, 415, "unsupported_media_type")
    # JSON with a charset parameter is still JSON; and nothing above registered anyone.
    taken = await world.admin.call(
        "POST",
        "/v1/guardians",
        raw=b'{"name": "Gail Green", "contact": "call 0100"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert taken.status == 201, taken.body
    assert len((await world.admin.get("/v1/guardians")).body["items"]) == before + 1
    # Routes that need no body can still be called without one.
    empty = await world.admin.call("POST", f"/v1/invites/{world.invites['Ada Hill']['id']}/revoke")
    assert empty.status == 200, empty.body


async def test_every_answer_has_a_request_id_no_store_nosniff_and_no_banner(
    gateway: Gateway,
) -> None:
    world = await build_world(gateway)
    anonymous = await gateway.client()
    answers = {
        "json": await world.admin.get("/v1/staff"),
        "refusal": await world.admin.get("/v1/staff/nobody"),
        "405": await world.admin.call("DELETE", "/v1/staff"),
        "anonymous": await anonymous.get("/v1/staff"),
        "join": await world.join("Tina Tutor"),  # carries a media credential
        "openapi": await anonymous.get("/v1/openapi.json"),
        "page": await anonymous.get("/join"),
        "static": await anonymous.get("/static/session/main.js"),
        "healthz": await anonymous.get("/healthz"),
        "metrics": await anonymous.get("/metrics"),
    }
    ids = set()
    for name, answer in answers.items():
        headers = answer.headers
        assert "Python" not in headers.get("Server", "") and "aiohttp" not in headers.get(
            "Server", ""
        ), name
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert len(headers["X-Request-Id"]) >= 16, name
        ids.add(headers["X-Request-Id"])
        if headers["Content-Type"].startswith("application/json") or name == "page":
            assert headers["Cache-Control"] == "no-store", name
    assert answers["static"].headers["Cache-Control"] == "no-cache"
    assert answers["join"].body["outcome"] == "admit"
    assert len(ids) == len(answers)  # one per request

    # A request aiohttp cannot even parse is answered before any route: no banner there either,
    # and the gateway's log lines about it carry no client address.
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    handler.setFormatter(JsonLogFormatter())
    logging.getLogger().addHandler(handler)
    try:
        host, port = gateway.base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /v1/staff HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await writer.wait_closed()
    finally:
        logging.getLogger().removeHandler(handler)
    assert raw.startswith(b"HTTP/1.") and b" 400 " in raw.split(b"\r\n")[0], raw[:80]
    assert b"Python" not in raw and b"aiohttp" not in raw
    assert "Error handling request" in logged.getvalue()
    assert "127.0.0.1" not in logged.getvalue()


async def test_a_flood_of_anonymous_refusals_is_audited_in_aggregate(gateway: Gateway) -> None:
    world = await build_world(gateway)
    anonymous = await gateway.client()
    before = len(await entries_without_org(gateway))
    flood = 500
    for i in range(flood):
        if i % 2:
            # A body the join cannot read (bad invites have their own per-address limit).
            answer = await anonymous.post("/v1/join", {"token": 5})
            assert answer.code == "body_invalid"
        else:
            answer = await anonymous.get("/v1/staff")
            assert answer.code == "unauthenticated"
    written = await entries_without_org(gateway)
    individual = [e for e in written[before:] if e.kind == "request.refused"]
    assert 1 <= len(individual) <= 10  # the first few from this source, then only counts
    assert len(written) - before == len(individual)

    # The window closes: the next refusal writes one aggregate entry with the counts.
    gateway.clock.advance(timedelta(seconds=61))
    await anonymous.get("/v1/staff")
    aggregates = await entries_without_org(gateway, "request.refused.aggregate")
    assert len(aggregates) == 1
    data = aggregates[0].data
    counts = {(c["code"], c["route"]): c["count"] for c in data["counts"]}  # type: ignore[attr-defined]
    individually = {(e.data["code"], e.data["route"]) for e in individual}
    expected = {("body_invalid", "/v1/join"): 250, ("unauthenticated", "/v1/staff"): 250}
    for key in expected:
        expected[key] -= sum(1 for e in individual if (e.data["code"], e.data["route"]) == key)
    assert counts == expected, (counts, individually)
    assert data["total"] == flood - len(individual) and data["sources"] == 1
    assert "127.0.0.1" not in str([e.data for e in written])  # the source is never written
    assert len(await entries_without_org(gateway)) <= before + 10 + 2

    # Refusals of an organisation's key are never sampled: each one is its own entry.
    seen = len(await _refusals(world))
    for _ in range(30):
        assert (await world.admin.get("/v1/staff/nobody")).status == 404
    assert len(await _refusals(world)) == seen + 30
