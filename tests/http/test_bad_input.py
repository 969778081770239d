"""Malformed requests over real HTTP: each is refused with a stable 4xx code, changes nothing,
is audited for the organisation, and never echoes the value that was sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.http.world import EVIDENCE, VETTING, World
from tests.plugins.gateway_server import Answer, Client, Gateway

SECRET = "s3cret-Value-9"  # planted in bad bodies; must never come back in an answer
STAFF = {"name": "Tina Tutor", "email": "tina@example.org", "roles": ["tutor"], "vetting": VETTING}
LIMIT = 65536


async def _world(gateway: Gateway) -> World:
    org_id, key = await gateway.organisation()
    return World(gateway, await gateway.client(key), org_id)


async def _refused(admin: Client) -> list[dict[str, Any]]:
    answer = await admin.get("/v1/audit?kind=request.refused&limit=500")
    assert answer.status == 200, answer.body
    return list(answer.body["items"])


async def _expect(world: World, answer: Answer, status: int, code: str, seen: int) -> int:
    """The answer is the refusal; it is the one new audit entry. Returns the new count."""
    assert (answer.status, answer.code) == (status, code), answer.body
    assert set(answer.body) == {"error"} and set(answer.body["error"]) == {"code", "message"}
    assert SECRET not in str(answer.body)
    refused = await _refused(world.admin)
    assert len(refused) == seen + 1
    assert refused[-1]["org_id"] == world.org_id
    assert refused[-1]["data"]["code"] == code
    return seen + 1


async def test_bodies_with_unknown_fields_bad_json_or_wrong_types_are_refused(
    gateway: Gateway,
) -> None:
    world = await _world(gateway)
    await world.guardian("Gail Green")
    seen = 0
    unknown_fields: list[tuple[str, dict[str, Any]]] = [
        ("/v1/staff", {**STAFF, "is_admin": SECRET}),
        ("/v1/staff", {**STAFF, "vetting": {**VETTING, "verified_by": SECRET}}),
        ("/v1/guardians", {"name": "Gail Green", "contact": "call 0100", "org_id": SECRET}),
        ("/v1/sessions/any/end", {"force": SECRET}),  # the body is read before the session
    ]
    for path, body in unknown_fields:
        seen = await _expect(
            world, await world.admin.post(path, body), 400, "body_unknown_field", seen
        )

    malformed = [
        b'{"name": "' + SECRET.encode() + b'"',  # truncated
        b"{'name': 'x'}",  # not JSON quoting
        b"",  # nothing at all
        b'{"name": "\xff\xfe"}',  # not UTF-8
        b'{"name": "Gail", "contact": "call 0100",}',  # trailing comma
    ]
    for raw in malformed:
        answer = await world.admin.call("POST", "/v1/guardians", raw=raw)
        seen = await _expect(world, answer, 400, "body_invalid_json", seen)

    for raw in (b"[]", b'"' + SECRET.encode() + b'"', b"42", b"null", b"true"):
        answer = await world.admin.call("POST", "/v1/guardians", raw=raw)
        seen = await _expect(world, answer, 400, "body_invalid", seen)

    wrong_types: list[tuple[str, dict[str, Any]]] = [
        ("/v1/staff", {**STAFF, "name": 12345}),
        ("/v1/staff", {**STAFF, "roles": "tutor"}),
        ("/v1/staff", {**STAFF, "roles": [SECRET]}),
        ("/v1/staff", {**STAFF, "roles": []}),
        ("/v1/staff", {**STAFF, "vetting": {**VETTING, "expires_on": SECRET}}),
        ("/v1/staff", {**STAFF, "email": ["tina@example.org"]}),
        ("/v1/guardians", {"name": "Gail Green"}),  # a required field missing
        ("/v1/guardians", {"name": None, "contact": "call 0100"}),
        ("/v1/children", {"name": "Sam", "date_of_birth": SECRET, "guardian_ids": ["g1"]}),
        ("/v1/children", {"name": "Sam", "date_of_birth": "2016-04-02", "guardian_ids": "g1"}),
        (
            "/v1/children",
            {"name": "Sam", "date_of_birth": "2016-04-02", "guardian_ids": [SECRET + "/.."]},
        ),
        (
            "/v1/consents",
            {
                "subject_kind": "robot",
                "subject_id": "x",
                "purpose": "p",
                "action": "give",
                "given_by_kind": "guardian",
                "given_by_id": "y",
            },
        ),
        (
            "/v1/sessions",
            {
                "kind": "group",
                "title": SECRET,
                "host_staff_id": "x",
                "starts_at": "10am",
                "ends_at": "11am",
            },
        ),
    ]
    for path, body in wrong_types:
        seen = await _expect(world, await world.admin.post(path, body), 400, "body_invalid", seen)

    # None of it registered anything.
    for kind in ("staff", "children"):
        assert (await world.admin.get(f"/v1/{kind}")).body["items"] == []
    assert len((await world.admin.get("/v1/guardians")).body["items"]) == 1


async def test_bodies_over_64_kib_are_refused_and_one_at_the_limit_is_read(
    gateway: Gateway,
) -> None:
    world = await _world(gateway)
    body = json.dumps({"name": "Gail Green", "contact": "call 0100"}).encode()
    at_limit = body[:-1] + b" " * (LIMIT - len(body)) + b"}"
    assert len(at_limit) == LIMIT
    accepted = await world.admin.call("POST", "/v1/guardians", raw=at_limit)
    assert accepted.status == 201, accepted.body

    seen = len(await _refused(world.admin))
    over = at_limit[:-1] + b" }"
    answer = await world.admin.call("POST", "/v1/guardians", raw=over)
    seen = await _expect(world, answer, 413, "body_too_large", seen)
    huge = json.dumps({"name": "Gail Green", "contact": SECRET * 20_000}).encode()
    answer = await world.admin.call("POST", "/v1/guardians", raw=huge)
    seen = await _expect(world, answer, 413, "body_too_large", seen)

    # Without a Content-Length (chunked), the limit holds while reading.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 16384
        yield body

    async with world.admin.http.post(
        world.admin.base + "/v1/guardians",
        data=chunks(),
        headers={"Authorization": f"Bearer {world.admin.key}", "Content-Type": "application/json"},
    ) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "body_too_large"
    refused = await _refused(world.admin)
    assert len(refused) == seen + 1 and refused[-1]["data"]["code"] == "body_too_large"

    assert len((await world.admin.get("/v1/guardians")).body["items"]) == 1


async def test_unknown_or_malformed_query_parameters_on_the_audit_log_are_refused(
    gateway: Gateway,
) -> None:
    world = await _world(gateway)
    seen = len(await _refused(world.admin))
    for query in (
        "org_id=" + SECRET,
        "kind=x&format=csv",
        "limit=501",
        "limit=-1",
        "limit=ten",
        "after=" + SECRET,
        "since=" + SECRET,
        "since=2026-11-23T10:00:00",  # no UTC offset
        "until=yesterday",
    ):
        answer = await world.admin.get(f"/v1/audit?{query}")
        seen = await _expect(world, answer, 400, "query_invalid", seen)
    ok = await world.admin.get("/v1/audit?since=2026-11-23T00:00:00%2B00:00&limit=500")
    assert ok.status == 200 and ok.body["items"][0]["kind"] == "organisation.created"


async def test_hostile_json_is_a_bad_request_not_an_internal_error(gateway: Gateway) -> None:
    world = await _world(gateway)
    seen = len(await _refused(world.admin))
    for raw in (
        b"[" * 30000 + b"]" * 30000,  # nesting deeper than the parser's recursion limit
        b'{"name": ' + b"1" * 5000 + b', "contact": "call 0100"}',  # over int digit limit
    ):
        answer = await world.admin.call("POST", "/v1/guardians", raw=raw)
        seen = await _expect(world, answer, 400, "body_invalid_json", seen)


async def test_consent_text_with_control_characters_is_refused_not_stored(
    gateway: Gateway,
) -> None:
    world = await _world(gateway)
    await world.guardian("Gail Green")
    await world.child("Sam Green", "2016-04-02", "Gail Green", consent=False)
    base = {
        "subject_kind": "child",
        "subject_id": world.ids["Sam Green"],
        "purpose": "participation",
        "action": "give",
        "given_by_kind": "guardian",
        "given_by_id": world.ids["Gail Green"],
    }
    seen = len(await _refused(world.admin))
    for body in (
        {**base, "evidence": {**EVIDENCE, "reference": "form\x0017"}},
        {**base, "evidence": {**EVIDENCE, "reference": "form\u202e71"}},
        {**base, "action": "withdraw", "purpose": "participation\x00"},
        {**base, "action": "withdraw", "purpose": "\u202enoitapicitrap"},
    ):
        answer = await world.admin.post("/v1/consents", body)
        seen = await _expect(world, answer, 400, "body_invalid", seen)
    history = (await world.admin.get(f"/v1/children/{world.ids['Sam Green']}/consent")).body
    assert history["history"] == []


async def test_nul_in_an_id_is_not_found_or_query_invalid(
    gateway: Gateway, database_url: str, request: pytest.FixtureRequest
) -> None:
    world = await _world(gateway)
    seen = len(await _refused(world.admin))
    for path in ("/v1/staff/a%00b", "/v1/sessions/a%00b/participants", "/v1/children/%00"):
        seen = await _expect(world, await world.admin.get(path), 404, "not_found", seen)
    answer = await world.admin.get("/v1/audit?person_id=a%00b")
    seen = await _expect(world, answer, 400, "query_invalid", seen)
