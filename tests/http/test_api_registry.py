"""What an integrator builds on: updating people (PATCH), listing sessions, refusals that name
the accepted values, and a roster that refuses an adult who may not supervise."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.http.world import VETTING, World, build_world
from tests.plugins.gateway_server import Gateway

LAPSED = {"kind": "dbs_enhanced", "checked_on": "2023-01-01", "expires_on": "2026-01-01"}


async def _audit(world: World, kind: str) -> list[dict[str, Any]]:
    answer = await world.admin.get(f"/v1/audit?kind={kind}")
    assert answer.status == 200, answer.body
    return list(answer.body["items"])


async def test_staff_are_updated_renewed_and_every_change_is_audited(gateway: Gateway) -> None:
    world = await build_world(gateway)
    tina = world.ids["Tina Tutor"]
    path = f"/v1/staff/{tina}"

    renewed = {"kind": "dbs_enhanced", "checked_on": "2026-11-01", "expires_on": "2029-11-01"}
    answer = await world.admin.call("PATCH", path, {"vetting": renewed, "name": "Tina Turner"})
    assert answer.status == 200, answer.body
    assert answer.body["name"] == "Tina Turner"
    assert answer.body["vetting"] == {**renewed, "expired": False}
    assert answer.body["email"] == "tina.tutor@example.org"  # left out: unchanged
    assert (await world.admin.get(path)).body == answer.body

    # A field left out stays; roles change as a whole.
    answer = await world.admin.call("PATCH", path, {"roles": ["tutor", "dsl"]})
    assert answer.body["roles"] == ["dsl", "tutor"]
    assert answer.body["name"] == "Tina Turner"

    updates = await _audit(world, "staff.updated")
    assert [entry["data"]["fields"] for entry in updates] == [["name", "vetting"], ["roles"]]
    assert updates[0]["data"]["vetting"] == {"kind": "dbs_enhanced", "expires_on": "2029-11-01"}
    assert "Tina" not in str(updates)  # which fields changed, never the names themselves
    assert all(entry["person_id"] == tina for entry in updates)

    # Nothing to change: nothing written, nothing audited.
    assert (await world.admin.call("PATCH", path, {})).status == 200
    assert len(await _audit(world, "staff.updated")) == 2


async def test_staff_updates_are_checked_as_registrations_are(gateway: Gateway) -> None:
    world = await build_world(gateway)
    path = f"/v1/staff/{world.ids['Tina Tutor']}"
    before = (await world.admin.get(path)).body
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"email": "tina@gmail.com"}, 422, "email_domain_not_allowed"),
        ({"email": "oscar.observer@example.org"}, 409, "conflict"),
        ({"name": "Host"}, 422, "name_invalid"),
        ({"vetting": {**VETTING, "kind": "a_chat"}}, 422, "vetting_kind_not_accepted"),
        ({"vetting": {**VETTING, "checked_on": "2030-01-01"}}, 422, "date_invalid"),
        ({"roles": []}, 400, "body_invalid"),
        ({"superuser": True}, 400, "body_unknown_field"),
    ]
    for body, status, code in cases:
        answer = await world.admin.call("PATCH", path, body)
        assert (answer.status, answer.code) == (status, code), (body, answer.body)
    assert (await world.admin.get(path)).body == before
    missing = await world.admin.call("PATCH", "/v1/staff/nobody", {"name": "Ann Other"})
    assert (missing.status, missing.code) == (404, "not_found")


async def test_children_and_guardians_are_updated(gateway: Gateway) -> None:
    world = await build_world(gateway)
    child = await world.admin.call(
        "PATCH", f"/v1/children/{world.ids['Sam Green']}", {"name": "Samuel Green"}
    )
    assert child.status == 200, child.body
    assert child.body["name"] == "Samuel Green"
    assert child.body["guardian_ids"] == [world.ids["Gail Green"]]
    future = await world.admin.call(
        "PATCH", f"/v1/children/{world.ids['Sam Green']}", {"date_of_birth": "2030-01-01"}
    )
    assert (future.status, future.code) == (422, "date_of_birth_in_future")

    guardian = await world.admin.call(
        "PATCH", f"/v1/guardians/{world.ids['Gail Green']}", {"contact": "call 0200"}
    )
    assert guardian.status == 200, guardian.body
    assert guardian.body["contact"] == "call 0200"
    assert guardian.body["name"] == "Gail Green"
    # A child is not a guardian: the kind in the path is the kind changed.
    wrong = await world.admin.call(
        "PATCH", f"/v1/guardians/{world.ids['Sam Green']}", {"contact": "call 0300"}
    )
    assert (wrong.status, wrong.code) == (404, "not_found")
    assert [e["data"]["fields"] for e in await _audit(world, "child.updated")] == [["name"]]
    assert [e["data"]["fields"] for e in await _audit(world, "guardian.updated")] == [["contact"]]


async def test_sessions_are_listed_by_status_time_and_page(gateway: Gateway) -> None:
    world = await build_world(gateway)  # one live session, started five minutes ago
    live = world.session["id"]
    now = gateway.clock.now()

    async def session(starts_in: timedelta) -> str:
        start = now + starts_in
        body = {
            "kind": "group",
            "title": "Chess club",
            "host_staff_id": world.ids["Tina Tutor"],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "password": "open-sesame",
        }
        answer = await world.admin.post("/v1/sessions", body)
        assert answer.status == 201, answer.body
        return str(answer.body["id"])

    later = await session(timedelta(hours=3))
    ended = await session(timedelta(minutes=-1))
    assert (await world.admin.post(f"/v1/sessions/{ended}/end")).status == 200

    async def ids(query: str) -> list[str]:
        answer = await world.admin.get(f"/v1/sessions?{query}")
        assert answer.status == 200, (query, answer.body)
        return [item["id"] for item in answer.body["items"]]

    assert await ids("") == [live, ended, later]  # by start time
    assert await ids("status=live") == [live]
    assert await ids("status=upcoming") == [later]
    assert await ids("status=ended") == [ended]
    listed = (await world.admin.get("/v1/sessions?status=upcoming")).body["items"][0]
    assert listed["status"] == "upcoming"
    assert listed["title"] == "Chess club"
    assert "password" not in listed
    start = (now + timedelta(hours=1)).isoformat().replace("+", "%2B")
    assert await ids(f"from={start}") == [later]
    assert await ids(f"to={start}") == [live, ended]

    # A page at a time: the cursor picks up where the last page stopped.
    seen: list[str] = []
    cursor = None
    while True:
        page = await world.admin.get(
            "/v1/sessions?limit=1" + (f"&cursor={cursor}" if cursor else "")
        )
        seen += [item["id"] for item in page.body["items"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert seen == [live, ended, later]

    for query in ("status=over", "limit=0", "limit=201", "cursor=abc", "from=2026-11-23"):
        answer = await world.admin.get(f"/v1/sessions?{query}")
        assert (answer.status, answer.code) == (400, "query_invalid"), query

    # Another organisation sees none of them.
    _, other_key = await gateway.organisation("Other Club")
    other = await gateway.client(other_key)
    assert (await other.get("/v1/sessions")).body == {"items": [], "next_cursor": None}


async def test_refusals_name_the_accepted_values(gateway: Gateway) -> None:
    world = await build_world(gateway)
    staff = {"name": "Gus Guest", "roles": ["tutor"], "vetting": VETTING}
    answer = await world.admin.post("/v1/staff", {**staff, "email": "gus@gmail.com"})
    assert (answer.status, answer.code) == (422, "email_domain_not_allowed")
    assert "email domain must be one of: example.org" in answer.body["error"]["message"]

    answer = await world.admin.post(
        "/v1/staff",
        {**staff, "email": "gus@example.org", "vetting": {**VETTING, "kind": "reference"}},
    )
    assert (answer.status, answer.code) == (422, "vetting_kind_not_accepted")
    assert "one of: dbs_enhanced, dbs_enhanced_barred" in answer.body["error"]["message"]

    answer = await world.consent("Sam Green", "marketing", "Gail Green", "guardian")
    assert (answer.status, answer.code) == (422, "purpose_unknown")
    message = answer.body["error"]["message"]
    assert "participation" in message and "recording:lesson_review" in message

    start = gateway.clock.now()
    answer = await world.admin.post(
        "/v1/sessions",
        {
            "kind": "group",
            "title": "Maths club",
            "host_staff_id": world.ids["Tina Tutor"],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "recording_purpose": "memories",
        },
    )
    assert (answer.status, answer.code) == (422, "purpose_unknown")
    assert "lesson_review, safeguarding_review" in answer.body["error"]["message"]


async def test_an_adult_who_may_not_supervise_is_refused_onto_the_roster(
    gateway: Gateway,
) -> None:
    world = await build_world(gateway)
    await world.staff("Una Unvetted", ["observer"], vetting=None)
    await world.staff("Lapsed Larry", ["observer"], LAPSED)
    await world.staff("Ada Admin", ["admin"])
    for name, code, says in (
        ("Una Unvetted", "vetting_expired", "vetting_missing"),
        ("Lapsed Larry", "vetting_expired", "vetting_expired"),
        ("Ada Admin", "role_not_allowed", "one of: dsl, observer, tutor"),
    ):
        answer = await world.enrol(name, "observer", "staff")
        assert (answer.status, answer.code) == (422, code), (name, answer.body)
        assert says in answer.body["error"]["message"]
    # A child cannot be rostered as an adult, and the refusal says who can.
    answer = await world.enrol("Sam Green", "observer", "child")
    assert (answer.status, answer.code) == (422, "role_not_allowed")
    assert "member of staff" in answer.body["error"]["message"]

    # Vetting that lapses before a session ends does not cover it: Vic may observe today's
    # session, not Wednesday's.
    await world.staff(
        "Vic Observer",
        ["observer"],
        {"kind": "dbs_enhanced", "checked_on": "2024-01-01", "expires_on": "2026-11-24"},
    )
    assert (await world.enrol("Vic Observer", "observer", "staff")).status == 201
    wednesday = gateway.clock.now() + timedelta(days=2)
    later = await world.admin.post(
        "/v1/sessions",
        {
            "kind": "group",
            "title": "Maths club",
            "host_staff_id": world.ids["Tina Tutor"],
            "starts_at": wednesday.isoformat(),
            "ends_at": (wednesday + timedelta(hours=1)).isoformat(),
            "password": "open-sesame",
        },
    )
    assert later.status == 201, later.body
    answer = await world.admin.post(
        f"/v1/sessions/{later.body['id']}/participants",
        {"person_kind": "staff", "person_id": world.ids["Vic Observer"], "role": "observer"},
    )
    assert (answer.status, answer.code) == (422, "vetting_expired"), answer.body
    # Nor can an unvetted member of staff host.
    start = gateway.clock.now()
    await world.staff("Tom Tutor", ["tutor"], vetting=None)
    answer = await world.admin.post(
        "/v1/sessions",
        {
            "kind": "group",
            "title": "Art club",
            "host_staff_id": world.ids["Tom Tutor"],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "password": "open-sesame",
        },
    )
    assert (answer.status, answer.code) == (422, "vetting_expired"), answer.body
    roster = await world.admin.get(f"/v1/sessions/{world.session['id']}/participants")
    assert {p["person_id"] for p in roster.body["items"]} == {
        world.ids[name] for name in world.participants
    }
