"""The OpenAPI document describes exactly the JSON API the server has, and its body schemas are
as strict as the server (an unknown field is refused)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.http.world import VETTING
from tests.plugins.gateway_server import Gateway

# Served by the app but not part of the JSON API the document describes.
NOT_DOCUMENTED = {"/metrics", "/healthz", "/v1/openapi.json"}
PAGE_PREFIXES = ("/join", "/static/", "/staff", "/consent")
# Served to the video platform, in its own signed wire formats (LiveKit's webhooks, egress's
# S3-style uploads), not to organisations: tested in tests/livekit_webhooks and tests/egress.
PLATFORM_PREFIXES = ("/platform/", "/egress-uploads/")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The document does not depend on the database: SQLite only, to keep the suite fast."""
    return sqlite_url


def _served(gateway: Gateway) -> set[tuple[str, str]]:
    served = set()
    for route in gateway.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        undocumented = path in NOT_DOCUMENTED or path.startswith(PAGE_PREFIXES + PLATFORM_PREFIXES)
        if route.method == "HEAD" or undocumented:
            continue
        served.add((route.method, path))
    return served


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_document_lists_exactly_the_routes_the_server_has(gateway: Gateway) -> None:
    anonymous = await gateway.client()
    answer = await anonymous.get("/v1/openapi.json")  # no API key needed
    assert answer.status == 200, answer.body
    document = answer.body
    assert document["openapi"].startswith("3.")

    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = _served(gateway)
    assert documented == served, {
        "served, not documented": sorted(served - documented),
        "documented, not served": sorted(documented - served),
    }

    schemas = document["components"]["schemas"]
    operation_ids = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            operation_ids.append(operation["operationId"])
            assert operation["summary"]
            assert "default" in operation["responses"]  # the error shape is documented
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == {part[1:-1] for part in path.split("/") if part.startswith("{")}
            # Every route but the public participant ones needs the bearer key, and says so.
            public = operation["security"] == []
            probe = await anonymous.call(
                method.upper(),
                path.replace("{", "x").replace("}", ""),
                {} if method == "post" else None,
            )
            assert (probe.code == "unauthenticated") is not public, (method, path, probe.body)
    assert len(operation_ids) == len(set(operation_ids))
    # Readable, stable names a generated client uses: createStaff, listSessions, getIncident.
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", op) for op in operation_ids), operation_ids
    assert {"createStaff", "updateStaff", "listSessions", "getIncident", "issueInvite"} <= set(
        operation_ids
    )
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


def _objects(schema: Any, schemas: dict[str, Any], seen: set[str]) -> list[dict[str, Any]]:
    """Every object schema reachable from `schema` (following $refs)."""
    if isinstance(schema, list):
        return [o for item in schema for o in _objects(item, schemas, seen)]
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return []
        seen.add(name)
        return _objects(schemas[name], schemas, seen)
    found = [schema] if schema.get("type") == "object" else []
    return found + [o for value in schema.values() for o in _objects(value, schemas, seen)]


async def test_every_request_body_is_closed_and_unknown_fields_are_refused(
    gateway: Gateway,
) -> None:
    _, key = await gateway.organisation()
    admin = await gateway.client(key)
    document = (await admin.get("/v1/openapi.json")).body
    schemas = document["components"]["schemas"]
    with_bodies = 0
    for operations in document["paths"].values():
        for operation in operations.values():
            if "requestBody" not in operation:
                continue
            with_bodies += 1
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            objects = _objects(body, schemas, set())
            assert objects
            for schema in objects:
                assert schema.get("additionalProperties") is False, schema.get("title")
    assert with_bodies >= 10

    # Spot checks: a body the server would otherwise take, plus one field it does not know.
    gail = await admin.post("/v1/guardians", {"name": "Gail Green", "contact": "call 0100"})
    assert gail.status == 201
    staff = {"name": "Tina Tutor", "email": "tina@example.org", "roles": ["tutor"]}
    for path, body in (
        ("/v1/staff", {**staff, "vetting": VETTING, "superuser": True}),
        ("/v1/staff", {**staff, "vetting": {**VETTING, "note": "x"}}),
        ("/v1/guardians", {"name": "Gail Green", "contact": "call 0100", "email": "g@x"}),
        (
            "/v1/children",
            {
                "name": "Sam",
                "date_of_birth": "2016-04-02",
                "guardian_ids": [gail.body["id"]],
                "school": "x",
            },
        ),
        ("/v1/join", {"token": "abc", "password": "open-sesame", "device": "x"}),
        ("/v1/leave", {"token": "abc", "reason": "x"}),
    ):
        answer = await admin.post(path, body)
        assert (answer.status, answer.code) == (400, "body_unknown_field"), (path, answer.body)
    assert (await admin.get("/v1/staff")).body["items"] == []
    assert (await admin.get("/v1/children")).body["items"] == []


async def test_query_parameters_are_typed_and_bounded_as_the_server_checks_them(
    gateway: Gateway,
) -> None:
    document = (await (await gateway.client()).get("/v1/openapi.json")).body
    audit = {p["name"]: p for p in document["paths"]["/v1/audit"]["get"]["parameters"]}
    assert set(audit) == {"session_id", "person_id", "kind", "since", "until", "after", "limit"}
    assert audit["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 500,
        "default": 100,
    }
    assert audit["since"]["schema"] == {
        "type": "string",
        "format": "date-time",
        "pattern": "^(19[7-9][0-9]|[2-8][0-9]{3})-",  # the years the server takes
    }
    assert audit["session_id"]["schema"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    incidents = document["paths"]["/v1/incidents"]["get"]["parameters"]
    status = next(p for p in incidents if p["name"] == "status")
    assert status["schema"] == {"type": "string", "enum": ["open", "closed"]}
    assert all(not p["required"] for p in incidents)

    _, key = await gateway.organisation()
    admin = await gateway.client(key)
    assert (await admin.get("/v1/audit?limit=500")).status == 200
    for query in ("limit=501", "limit=0", "since=2026-11-23", "session_id=a/b", "x=1"):
        answer = await admin.get(f"/v1/audit?{query}")
        assert (answer.status, answer.code) == (400, "query_invalid"), query


WITHOUT_RESPONSE_SCHEMA: set[tuple[str, str]] = set()


async def test_every_answer_and_refusal_has_a_schema(gateway: Gateway) -> None:
    document = (await (await gateway.client()).get("/v1/openapi.json")).body
    schemas = document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert success, (method, path)
            if not path.startswith(("/v1/join", "/v1/leave", "/v1/live", "/v1/media")) and (
                (method, path) not in WITHOUT_RESPONSE_SCHEMA
            ):
                for code in success:
                    schema = responses[code]["content"]["application/json"]["schema"]
                    assert schema["$ref"].rsplit("/", 1)[1] in schemas, (method, path)
            for code, response in responses.items():
                if code[0] in "45" or code == "default":
                    error = response["content"]["application/json"]["schema"]
                    assert error == {"$ref": "#/components/schemas/Error"}, (method, path, code)
            if not operation["security"]:
                assert "400" in responses or "requestBody" not in operation
            else:
                assert "401" in responses, (method, path)

    # A created record comes back with its id: what a generated client needs next.
    staff = schemas["StaffView"]
    assert {"id", "name", "email", "roles", "vetting"} <= set(staff["required"])
    assert schemas["SessionList"]["properties"]["next_cursor"]
    assert "token" in schemas["IssuedInviteView"]["required"]


async def test_server_side_limits_are_stated(gateway: Gateway) -> None:
    document = (await (await gateway.client()).get("/v1/openapi.json")).body
    schemas = document["components"]["schemas"]
    staff = schemas["StaffBody"]["properties"]
    assert staff["email"]["format"] == "email"
    assert staff["email"]["pattern"] and staff["email"]["maxLength"] <= 320
    assert staff["name"]["maxLength"] == 200
    assert staff["roles"]["items"]["enum"] == ["tutor", "observer", "dsl", "admin"]
    assert "pattern" in schemas["GuardianBody"]["properties"]["contact"]
    session = schemas["SessionBody"]["properties"]
    assert session["title"]["maxLength"] == 200 and "pattern" in session["title"]
    assert session["starts_at"]["format"] == "date-time" and "pattern" in session["starts_at"]
    patch = schemas["StaffPatchBody"]
    assert "required" not in patch or patch["required"] == []

    listing = {p["name"]: p for p in document["paths"]["/v1/sessions"]["get"]["parameters"]}
    assert set(listing) == {"status", "from", "to", "cursor", "limit"}
    assert listing["status"]["schema"] == {"type": "string", "enum": ["upcoming", "live", "ended"]}
    assert listing["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 200,
        "default": 50,
    }


async def test_participant_authentication_is_described(gateway: Gateway) -> None:
    document = (await (await gateway.client()).get("/v1/openapi.json")).body
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
    cookie = schemes["deviceCookie"]
    assert (cookie["type"], cookie["in"]) == ("apiKey", "cookie")
    assert "invite token" in document["info"]["description"]
    join = document["paths"]["/v1/join"]["post"]
    assert join["security"] == []
    assert "deviceCookie" in join["x-participant-auth"]


def test_incident_and_channel_answers_follow_their_declared_models() -> None:
    """Incidents and notification channels are rendered by their own modules: their answers
    must still be what the document's response models say (a drift fails here)."""
    from datetime import UTC, datetime

    from gateway.domain.incidents import (
        Incident,
        IncidentNote,
        IncidentStatus,
        ReporterKind,
        ViewerRights,
        incident_detail_view,
    )
    from gateway.domain.outbox import Channels, EmailChannel, WebhookChannel
    from gateway.http.notifications_api import channels_view
    from gateway.http.views import ChannelsView, IncidentDetailView

    now = datetime(2026, 11, 23, 10, tzinfo=UTC)
    incident = Incident(
        id="i1",
        org_id="o1",
        session_id="s1",
        reported_by_kind=ReporterKind.PARTICIPANT,
        reporter_identity="p_abc",
        reporter_participant_id="part1",
        kind="concern",
        summary="worried",
        what_gateway_did=("alerted_dsl",),
        status=IncidentStatus.CLOSED,
        created_at=now,
        closed_at=now,
        closed_by="s9",
    )
    note = IncidentNote("n1", "i1", "s9", "Spoke to the child's parent.", now)
    for rights in (ViewerRights(True, True), ViewerRights(False, False)):
        view = incident_detail_view(incident, rights, [note])
        model = IncidentDetailView.model_validate(view)
        # Every field the module writes is declared, with the type it writes.
        assert model.model_extra == {} and model.reported_by.model_extra == {}
        assert model.model_dump(mode="json", exclude_unset=True) == view

    channels = Channels(
        email=EmailChannel("smtp.example.org", 587, "starttls", "gw@example.org", "dsl@x.org"),
        webhook=WebhookChannel("https://hooks.example.org/x", "s3cret"),
    )
    view = channels_view(channels)
    channels_model = ChannelsView.model_validate(view)
    assert channels_model.model_dump(mode="json", exclude_unset=True) == view
