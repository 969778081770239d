"""The incident log over real HTTP on SQLite and PostgreSQL (R14, R17)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.incidents import Incident
from gateway.domain.models import PersonKind, Staff
from gateway.http.incidents_api import INCIDENTS
from gateway.services.incidents import IncidentService
from gateway.services.ports import Organisation
from tests.http.world import World, build_world
from tests.incidents.conftest import alerts_hub
from tests.plugins.gateway_server import Gateway

NOTE = "He asked me for my home address"


@dataclass
class Case:
    world: World
    roster: dict[str, dict[str, Any]]  # name -> roster entry (participant view)

    @property
    def service(self) -> IncidentService:
        return self.world.gateway.app[INCIDENTS]

    async def org(self) -> Organisation:
        org = await self.world.gateway.services.store.organisation(self.world.org_id)
        assert org is not None
        return org

    async def staff(self, name: str) -> Staff:
        """The member of staff as the staff pages hand them to the service once signed in."""
        staff = await self.world.gateway.services.store.person(
            self.world.org_id, PersonKind.STAFF, self.world.ids[name]
        )
        assert isinstance(staff, Staff)
        return staff

    async def report(self, name: str = "Sam Green", note: str | None = NOTE) -> Incident:
        entry = self.roster[name]
        return await self.service.report_concern(
            self.world.org_id,
            self.world.session["id"],
            entry["id"],
            entry["masked_identity"],
            entry["display_name"],
            note,
        )


async def build_case(gateway: Gateway) -> Case:
    world = await build_world(gateway)
    await world.staff("Dee Lead", ["dsl"])
    await world.staff("Adam Admin", ["admin"])
    answer = await world.admin.get(f"/v1/sessions/{world.session['id']}/participants")
    by_id = {item["id"]: item for item in answer.body["items"]}
    roster = {name: by_id[pid] for name, pid in world.participants.items()}
    return Case(world, roster)


async def test_reported_concern_is_listed_alerted_and_audited(gateway: Gateway) -> None:
    case = await build_case(gateway)
    world = case.world
    session_id = world.session["id"]
    hub = alerts_hub(gateway.app)
    queue = hub.subscribe(session_id)
    try:
        incident = await case.report()
        alert = await asyncio.wait_for(queue.get(), timeout=2)
    finally:
        hub.unsubscribe(session_id, queue)
    # The host learns that a concern was raised and the DSL is being told, not by whom.
    assert alert["kind"] == "concern"
    assert alert["incident_id"] == incident.id
    assert alert["dsl"] == "being_told"
    assert "display_name" not in alert and "Sam" not in str(alert)
    assert alert["session_id"] == session_id
    assert NOTE not in str(alert)

    listed = await world.admin.get("/v1/incidents")
    assert listed.status == 200
    [item] = listed.body["items"]
    assert item["id"] == incident.id
    assert item["kind"] == "concern" and item["status"] == "open"
    assert item["session_id"] == session_id
    assert item["summary"] == NOTE
    # Queued, never "told" at creation: the outbox says when the DSL was told.
    assert item["what_gateway_did"] == ["dsl_notification_queued"]
    assert item["reported_by"] == {
        "kind": "participant",
        "identity": case.roster["Sam Green"]["masked_identity"],
    }

    # Filters.
    assert len((await world.admin.get("/v1/incidents?status=open")).body["items"]) == 1
    assert (await world.admin.get("/v1/incidents?status=closed")).body["items"] == []
    by_session = await world.admin.get(f"/v1/incidents?session_id={session_id}")
    assert [i["id"] for i in by_session.body["items"]] == [incident.id]
    assert (await world.admin.get("/v1/incidents?session_id=elsewhere")).body["items"] == []

    audit = await world.admin.get("/v1/audit?kind=incident.opened")
    [entry] = audit.body["items"]
    assert entry["session_id"] == session_id
    assert entry["data"]["incident"] == incident.id
    assert entry["data"]["participant"] == case.roster["Sam Green"]["id"]
    for secret in (NOTE, "Sam", "Green", world.ids["Sam Green"]):
        assert secret not in str(entry)
    assert (await gateway.services.store.verify_audit()).intact


async def test_reporter_is_revealed_to_the_dsl_only(gateway: Gateway) -> None:
    """Rights come from the signed-in member of staff (the staff pages); an API key names
    nobody and always gets the masked view."""
    case = await build_case(gateway)
    world = case.world
    incident = await case.report()
    participant_id = case.roster["Sam Green"]["id"]
    org = await case.org()

    for who in ("Tina Tutor", "Oscar Observer", "Adam Admin"):
        viewer = await case.staff(who)
        listed = await case.service.list(org, viewer=viewer)
        assert not listed.rights.reveal_reporter, who
        one = await case.service.get(org, incident.id, viewer)
        assert not one.rights.reveal_reporter, who
    anonymous = await world.admin.get(f"/v1/incidents/{incident.id}")
    assert participant_id not in str(anonymous.body)
    assert "notes" not in anonymous.body
    listed_api = await world.admin.get("/v1/incidents")
    assert participant_id not in str(listed_api.body)

    dsl = await case.staff("Dee Lead")
    assert (await case.service.list(org, viewer=dsl)).rights.reveal_reporter
    one = await case.service.get(org, incident.id, dsl)
    assert one.incident.reporter_participant_id == participant_id
    assert one.notes == []

    # Naming someone in the query is no longer a thing an API key can do.
    named = await world.admin.get(f"/v1/incidents?as_staff={world.ids['Dee Lead']}")
    assert named.status == 400 and named.code == "query_invalid"


async def test_dsl_adds_notes_and_closes_once(gateway: Gateway) -> None:
    case = await build_case(gateway)
    world = case.world
    incident = await case.report()
    org = await case.org()
    dsl = await case.staff("Dee Lead")
    admin = await case.staff("Adam Admin")

    first = await case.service.add_note(org, dsl, incident.id, "Spoke to Sam's guardian.")
    assert first.author_staff_id == dsl.id and first.incident_id == incident.id
    await case.service.add_note(org, admin, incident.id, "Host suspended.")

    closed = await case.service.close(org, dsl, incident.id)
    assert closed.incident.status.value == "closed"
    assert closed.incident.closed_by == dsl.id and closed.incident.closed_at is not None
    assert [n.text for n in closed.notes or ()] == ["Spoke to Sam's guardian.", "Host suspended."]
    assert closed.rights.reveal_reporter

    with pytest.raises(Refusal) as again:
        await case.service.close(org, admin, incident.id)
    assert again.value.code is ErrorCode.CONFLICT

    # Later information is still recorded against a closed incident.
    await case.service.add_note(org, dsl, incident.id, "Police informed.")

    assert (await world.admin.get("/v1/incidents?status=open")).body["items"] == []
    assert len((await world.admin.get("/v1/incidents?status=closed")).body["items"]) == 1
    # Notes are for those who handle incidents: the admin reads them, a tutor does not.
    admin_view = await case.service.get(org, incident.id, admin)
    assert len(admin_view.notes or ()) == 3 and not admin_view.rights.reveal_reporter
    tutor_view = await case.service.get(org, incident.id, await case.staff("Tina Tutor"))
    assert tutor_view.notes is None

    notes = await world.admin.get("/v1/audit?kind=incident.note_added")
    assert len(notes.body["items"]) == 3
    assert {e["person_id"] for e in notes.body["items"]} == {dsl.id, admin.id}
    closes = await world.admin.get("/v1/audit?kind=incident.closed")
    [close_entry] = closes.body["items"]
    assert close_entry["person_id"] == dsl.id and close_entry["data"] == {"incident": incident.id}
    assert close_entry["actor"] == f"staff:{dsl.id}"
    everything = str((await world.admin.get("/v1/audit?limit=500")).body)
    for secret in ("Spoke to", "Host suspended", "Police", NOTE):
        assert secret not in everything
    assert (await gateway.services.store.verify_audit()).intact


async def test_only_the_dsl_or_an_admin_handles_incidents(gateway: Gateway) -> None:
    case = await build_case(gateway)
    world = case.world
    incident = await case.report()
    org = await case.org()
    for who in ("Tina Tutor", "Oscar Observer"):
        staff = await case.staff(who)
        with pytest.raises(Refusal) as close:
            await case.service.close(org, staff, incident.id)
        assert close.value.code is ErrorCode.FORBIDDEN, who
        with pytest.raises(Refusal) as note:
            await case.service.add_note(org, staff, incident.id, "x")
        assert note.value.code is ErrorCode.FORBIDDEN, who
    # The API has no way to act for anyone.
    path = f"/v1/incidents/{incident.id}"
    dsl = world.ids["Dee Lead"]
    assert (await world.admin.post(path + "/close", {"staff_id": dsl})).status == 404
    assert (await world.admin.post(path + "/notes", {"staff_id": dsl, "text": "x"})).status == 404
    still = await world.admin.get(path)
    assert still.body["status"] == "open"


async def test_another_organisations_incident_is_not_found(gateway: Gateway) -> None:
    case = await build_case(gateway)
    incident = await case.report()
    other_org_id, other_key = await gateway.organisation("Other Club")
    other = await gateway.client(other_key)
    other_world = World(gateway, other, other_org_id)
    dsl_id = await other_world.staff("Olga Lead", ["dsl"])
    store = gateway.services.store
    other_dsl = await store.person(other_org_id, PersonKind.STAFF, dsl_id)
    other_org = await store.organisation(other_org_id)
    assert isinstance(other_dsl, Staff) and other_org is not None
    path = f"/v1/incidents/{incident.id}"
    assert (await other.get(path)).status == 404
    for act in (
        case.service.get(other_org, incident.id, other_dsl),
        case.service.add_note(other_org, other_dsl, incident.id, "mine now"),
        case.service.close(other_org, other_dsl, incident.id),
        # ...nor act in this organisation as someone of another one.
        case.service.close(await case.org(), other_dsl, incident.id),
    ):
        with pytest.raises(Refusal) as refused:
            await act
        assert refused.value.code is ErrorCode.NOT_FOUND
    assert (await other.get("/v1/incidents")).body["items"] == []
    assert (await case.world.admin.get(path)).body["status"] == "open"
    unknown = await case.world.admin.get("/v1/incidents/0123456789abcdef")
    assert unknown.status == 404


async def test_bad_requests_are_refused(gateway: Gateway) -> None:
    case = await build_case(gateway)
    world = case.world
    incident = await case.report()
    org = await case.org()
    dsl = await case.staff("Dee Lead")
    path = f"/v1/incidents/{incident.id}"

    with pytest.raises(Refusal) as too_long:
        await case.service.add_note(org, dsl, incident.id, "x" * 4001)
    assert too_long.value.code is ErrorCode.BODY_INVALID and "xxxx" not in too_long.value.message
    await case.service.add_note(org, dsl, incident.id, "y" * 4000)
    for bad_text in ("   ", "", "evil \u202e txet", "bell \x07"):
        with pytest.raises(Refusal) as bad:
            await case.service.add_note(org, dsl, incident.id, bad_text)
        assert bad.value.code is ErrorCode.BODY_INVALID, repr(bad_text)

    for query in ("status=pending", "colour=red", "limit=0", "limit=501", "status=open&status=x"):
        answer = await world.admin.get(f"/v1/incidents?{query}")
        assert answer.status == 400 and answer.code == "query_invalid", query
    assert (await world.admin.get(f"{path}?status=open")).code == "query_invalid"
    unauthenticated = await world.admin.get("/v1/incidents", key="sgw_wrong")
    assert unauthenticated.status == 401
    # Nothing was closed or changed by any of this.
    detail = await case.service.get(org, incident.id, dsl)
    assert detail.incident.status.value == "open" and len(detail.notes or ()) == 1


async def test_system_incidents_are_listed_with_what_the_gateway_did(gateway: Gateway) -> None:
    case = await build_case(gateway)
    world = case.world
    service = case.service
    concern = await case.report(note=None)
    gateway.clock.advance(timedelta(seconds=1))
    breach = await service.record_system_incident(
        world.org_id,
        world.session["id"],
        "supervision_breach",
        "Only one vetted adult present; children held.",
        ["held_children", "alerted_host", "alerted_dsl"],
    )
    listed = await world.admin.get("/v1/incidents")
    ids = [item["id"] for item in listed.body["items"]]
    assert ids == [breach.id, concern.id]  # newest first
    by_id = {item["id"]: item for item in listed.body["items"]}
    assert by_id[concern.id]["summary"] == "A participant reported a concern."
    system = by_id[breach.id]
    assert system["reported_by"] == {"kind": "system", "identity": "gateway"}
    assert system["what_gateway_did"] == [
        "held_children",
        "alerted_host",
        "dsl_notification_queued",
    ]
    assert system["kind"] == "supervision_breach"
    limited = await world.admin.get("/v1/incidents?limit=1")
    assert len(limited.body["items"]) == 1
    opened = await world.admin.get("/v1/audit?kind=incident.opened")
    assert {e["actor"] for e in opened.body["items"]} == {
        "gateway",
        case.roster["Sam Green"]["masked_identity"],
    }


async def test_a_concern_needs_a_participant_of_that_session(gateway: Gateway) -> None:
    case = await build_case(gateway)
    entry = case.roster["Sam Green"]
    with pytest.raises(Refusal) as refused:
        await case.service.report_concern(
            case.world.org_id, "another-session", entry["id"], entry["masked_identity"], "x", None
        )
    assert refused.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(Refusal):
        await case.service.report_concern(
            case.world.org_id, case.world.session["id"], entry["id"], "p_forged", "x", None
        )
    assert (await case.world.admin.get("/v1/incidents")).body["items"] == []


async def test_the_database_keeps_incidents_and_notes(gateway: Gateway) -> None:
    """Append-only notes and close-only incidents are enforced below the application (R14)."""
    case = await build_case(gateway)
    incident = await case.report()
    org = await case.org()
    dsl = await case.staff("Dee Lead")
    await case.service.add_note(org, dsl, incident.id, "n")
    engine: Any = gateway.services.store._db.writer_engine
    forbidden = (
        "UPDATE incident_notes SET text = 'rewritten'",
        "DELETE FROM incident_notes",
        "DELETE FROM incidents",
        "UPDATE incidents SET summary = 'rewritten'",
        "UPDATE incidents SET status = 'closed'",  # closing needs closed_at and closed_by
    )
    for statement in forbidden:
        with pytest.raises(Exception, match=r"append-only|kept|only be closed"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    await case.service.close(org, dsl, incident.id)
    with pytest.raises(Exception, match="only be closed"):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE incidents SET status = 'open', closed_at = NULL"))
    detail = await case.service.get(org, incident.id, dsl)
    assert detail.incident.summary == NOTE and (detail.notes or ())[0].text == "n"
    assert detail.incident.status.value == "closed"


async def test_participant_reports_a_concern_from_the_session(gateway: Gateway) -> None:
    """POST /v1/live/concern: invite token plus the device the invite is bound to (R17)."""
    case = await build_case(gateway)
    world = case.world
    session_id = world.session["id"]
    device = await gateway.client()
    joined = await world.join("Sam Green", device)
    assert joined.body["outcome"] == "hold"  # no adults yet: a child waiting alone can report
    token = world.invites["Sam Green"]["token"]
    hub = alerts_hub(gateway.app)
    queue = hub.subscribe(session_id)
    try:
        answer = await device.post("/v1/live/concern", {"token": token, "note": NOTE})
        assert answer.status == 201, answer.body
        alert = await asyncio.wait_for(queue.get(), timeout=2)
    finally:
        hub.unsubscribe(session_id, queue)
    incident_id = answer.body["incident_id"]
    assert alert["kind"] == "concern" and alert["incident_id"] == incident_id
    listed = await world.admin.get(f"/v1/incidents?session_id={session_id}")
    [item] = listed.body["items"]
    assert item["id"] == incident_id and item["summary"] == NOTE
    assert item["reported_by"]["identity"] == case.roster["Sam Green"]["masked_identity"]

    # Another device holding the same token cannot report as Sam.
    stranger = await gateway.client()
    refused = await stranger.post("/v1/live/concern", {"token": token, "note": "fake"})
    assert refused.status == 403
    assert len((await world.admin.get("/v1/incidents")).body["items"]) == 1
