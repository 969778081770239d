"""Organisations are isolated (tenancy) and every organisation route needs a live API key.

Another organisation's records are answered exactly as a random id would be (404 not_found),
so a key can neither read nor change them, nor learn that they exist."""

from __future__ import annotations

import uuid
from typing import Any

from tests.http.world import World
from tests.plugins.gateway_server import Answer, Gateway


async def _org(gateway: Gateway, name: str) -> World:
    org_id, key = await gateway.organisation(name)
    return World(gateway, await gateway.client(key), org_id)


def _random_like(real: str) -> str:
    fake = uuid.uuid4().hex
    assert len(fake) == len(real)
    return fake


async def test_one_organisations_key_cannot_reach_anothers_records(gateway: Gateway) -> None:
    other = await _org(gateway, "Other Club")
    await other.staff("Tina Tutor", ["tutor"])
    await other.guardian("Gail Green")
    await other.child("Sam Green", "2016-04-02", "Gail Green")
    session_id = await other.new_session("Tina Tutor")
    await other.enrol("Sam Green", "child", "child")
    invite = await other.invite("Sam Green")
    ours = await _org(gateway, "Our Club")
    await ours.staff("Olga Own", ["tutor"])
    await ours.guardian("Owen Own")
    await ours.child("Ola Own", "2015-05-05", "Owen Own")
    our_session = await ours.new_session("Olga Own")

    staff, guardian, child = (other.ids[n] for n in ("Tina Tutor", "Gail Green", "Sam Green"))
    participant = other.participants["Sam Green"]
    # (method, path template, body): each is tried with the other organisation's id and with
    # a random id of the same shape; the two answers must be the same 404.
    probes: list[tuple[str, str, str, Any]] = [
        ("GET", "/v1/staff/{}", staff, None),
        ("GET", "/v1/staff/{}/consent", staff, None),
        ("GET", "/v1/guardians/{}", guardian, None),
        ("GET", "/v1/guardians/{}/consent", guardian, None),
        ("GET", "/v1/children/{}", child, None),
        ("GET", "/v1/children/{}/consent", child, None),
        ("GET", "/v1/sessions/{}", session_id, None),
        ("GET", "/v1/sessions/{}/participants", session_id, None),
        ("POST", "/v1/sessions/{}/end", session_id, {}),
        (
            "POST",
            "/v1/sessions/{}/participants",
            session_id,
            {"person_kind": "child", "person_id": ours.ids["Ola Own"], "role": "child"},
        ),
        ("POST", "/v1/sessions/{}/participants/" + participant + "/invite", session_id, {}),
        ("POST", f"/v1/sessions/{our_session}/participants/{{}}/invite", participant, {}),
        ("POST", "/v1/invites/{}/revoke", invite["id"], {}),
        (
            "POST",
            f"/v1/sessions/{our_session}/participants",
            child,
            {"person_kind": "child", "person_id": "{}", "role": "child"},
        ),
        (
            "POST",
            "/v1/consents",
            child,
            {
                "subject_kind": "child",
                "subject_id": "{}",
                "purpose": "participation",
                "action": "withdraw",
                "given_by_kind": "guardian",
                "given_by_id": guardian,
            },
        ),
        (
            "POST",
            "/v1/children",
            guardian,
            {"name": "Ola Two", "date_of_birth": "2015-05-05", "guardian_ids": ["{}"]},
        ),
        (
            "POST",
            "/v1/sessions",
            staff,
            {
                "kind": "group",
                "title": "Borrowed tutor",
                "host_staff_id": "{}",
                "starts_at": "2026-11-23T10:00:00+00:00",
                "ends_at": "2026-11-23T11:00:00+00:00",
                "password": "open-sesame",
            },
        ),
    ]

    def fill(value: Any, ident: str) -> Any:
        if isinstance(value, dict):
            return {k: fill(v, ident) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, ident) for v in value]
        return ident if value == "{}" else value

    refused_before = len(
        (await ours.admin.get("/v1/audit?kind=request.refused&limit=500")).body["items"]
    )
    for method, template, real, body in probes:
        answers: list[Answer] = []
        for ident in (real, _random_like(real)):
            answers.append(await ours.admin.call(method, template.format(ident), fill(body, ident)))
        theirs, random = answers
        assert (theirs.status, theirs.code) == (404, "not_found"), (method, template, theirs.body)
        assert theirs.body == random.body, (method, template)
        assert real not in str(theirs.body)
    refused = (await ours.admin.get("/v1/audit?kind=request.refused&limit=500")).body["items"]
    assert len(refused) == refused_before + 2 * len(probes)
    assert {e["data"]["code"] for e in refused[refused_before:]} == {"not_found"}
    assert {e["org_id"] for e in refused} == {ours.org_id}

    # Lists and the audit log show only the caller's own records.
    for kind, mine in (
        ("staff", "Olga Own"),
        ("guardians", "Owen Own"),
        ("children", "Ola Own"),
    ):
        listed = (await ours.admin.get(f"/v1/{kind}")).body["items"]
        assert [p["id"] for p in listed] == [ours.ids[mine]]
    for query in (f"person_id={child}", f"session_id={session_id}", "kind=invite.issued"):
        assert (await ours.admin.get(f"/v1/audit?{query}")).body["items"] == []
    our_audit = str((await ours.admin.get("/v1/audit?limit=500")).body)
    for theirs_id in (staff, guardian, child, session_id, invite["id"], other.org_id):
        assert theirs_id not in our_audit

    # Nothing of the other organisation changed.
    assert (await other.admin.get(f"/v1/sessions/{session_id}")).body["ended_at"] is None
    assert (
        len((await other.admin.get(f"/v1/sessions/{session_id}/participants")).body["items"]) == 2
    )
    consent = (await other.admin.get(f"/v1/children/{child}/consent")).body
    assert consent["purposes"]["participation"]["valid"] is True
    assert len(consent["history"]) == 1
    assert len((await other.admin.get("/v1/children")).body["items"]) == 1
    joined = await other.join("Sam Green")
    assert joined.status == 200, joined.body  # the invite still works (not revoked)


async def test_missing_invalid_revoked_and_rotated_keys(gateway: Gateway) -> None:
    org_id, key = await gateway.organisation()
    anonymous = await gateway.client()
    bad_headers = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer sgw_" + "A" * 43},  # the right shape, not a key
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Basic {key}"},
        {"Authorization": f"Bearer {key}x"},
        {"Authorization": key},
    ]
    for headers in bad_headers:
        for method, path in (("GET", "/v1/staff"), ("POST", "/v1/guardians"), ("GET", "/v1/audit")):
            body = {"name": "Gail Green", "contact": "call 0100"} if method == "POST" else None
            answer = await anonymous.call(method, path, body, headers=headers)
            assert (answer.status, answer.code) == (401, "unauthenticated"), (headers, path)
            assert key not in str(answer.body)
    admin = await gateway.client(key)
    assert (await admin.get("/v1/guardians")).body["items"] == []  # no POST got through

    # Rotation: the new key works at once and the old one stops working.
    new_key = await gateway.services.organisations.rotate_key(org_id)
    assert new_key != key
    old = await admin.get("/v1/staff")
    assert (old.status, old.code) == (401, "unauthenticated")
    rotated = await gateway.client(new_key)
    assert (await rotated.get("/v1/staff")).status == 200
    audit = (await rotated.get("/v1/audit")).body["items"]
    assert [e["kind"] for e in audit] == [
        "organisation.created",
        "api_key.rotated",
        "api_key.revoked",
    ]
    assert key not in str(audit) and new_key not in str(audit)

    # Revoking every key locks the organisation out until a new key is issued.
    assert await gateway.services.organisations.revoke_keys(org_id) == 1
    revoked = await rotated.get("/v1/staff")
    assert (revoked.status, revoked.code) == (401, "unauthenticated")
    newest = await gateway.services.organisations.rotate_key(org_id)
    assert (await admin.get("/v1/staff", key=newest)).status == 200

    # Public routes need no key, and a key for one organisation is not a key for another.
    assert (await anonymous.get("/v1/openapi.json")).status == 200
    _, second_key = await gateway.organisation("Second Club")
    assert (await admin.get("/v1/audit", key=second_key)).body["items"][0]["org_id"] != org_id
