"""Staff sessions (timeouts, sign out everywhere, CSRF) and the DSL's incident pages, over real
HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from gateway.domain.incidents import IncidentStatus
from gateway.domain.staff_session import SESSION_COOKIE
from tests.incidents.test_incidents_http import build_case
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Browser, Mailbox, audited, email_of, new_browser, staff_world


async def _signed_in(gateway: Gateway, mailbox: Mailbox, name: str) -> Browser:
    browser = await new_browser(gateway)
    used = await browser.sign_in_with_link(mailbox, email_of(name))
    assert used.status == 303, used.text
    return browser


async def test_idle_and_absolute_timeouts_end_a_session(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    await staff_world(staff_gateway)
    clock = staff_gateway.clock
    idle = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    clock.advance(timedelta(minutes=29))
    assert (await idle.get("/staff")).status == 200  # active: the idle deadline moves on
    clock.advance(timedelta(minutes=29))
    assert (await idle.get("/staff")).status == 200
    clock.advance(timedelta(minutes=30, seconds=1))
    ended = await idle.get("/staff")
    assert ended.status == 303 and ended.location == "/staff/sign-in"

    busy = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    for _ in range(8 * 3 - 1):  # a request every 20 minutes for nearly 8 hours
        clock.advance(timedelta(minutes=20))
        assert (await busy.get("/staff")).status == 200
    clock.advance(timedelta(minutes=20))  # 8 hours since sign-in, however busy
    assert (await busy.get("/staff")).location == "/staff/sign-in"


async def test_sign_out_everywhere_ends_every_session_of_that_person_only(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    await staff_world(staff_gateway)
    laptop = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    phone = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    tutor = await _signed_in(staff_gateway, mailbox, "Tina Tutor")
    old_cookie = phone.cookie(SESSION_COOKIE)
    home = await laptop.get("/staff")
    out = await laptop.post("/staff/sign-out-everywhere", {"csrf": home.csrf})
    assert out.status == 303 and out.location == "/staff/sign-in"
    assert laptop.cookie(SESSION_COOKIE) in (None, "")
    assert (await phone.get("/staff")).location == "/staff/sign-in"
    replay = await new_browser(staff_gateway)
    replay.set_cookie(SESSION_COOKIE, old_cookie or "")
    assert (await replay.get("/staff")).location == "/staff/sign-in"
    assert (await replay.get("/staff/incidents")).location == "/staff/sign-in"
    assert (await tutor.get("/staff")).status == 200  # someone else's sessions stay
    [entry] = await audited(staff_gateway, "staff.signed_out_everywhere")
    assert entry.data["sessions"] == 2


async def test_sign_out_ends_this_browser_only(staff_gateway: Gateway, mailbox: Mailbox) -> None:
    await staff_world(staff_gateway)
    laptop = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    phone = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    home = await laptop.get("/staff")
    assert (await laptop.post("/staff/sign-out", {"csrf": home.csrf})).status == 303
    assert (await laptop.get("/staff")).location == "/staff/sign-in"
    assert (await phone.get("/staff")).status == 200


async def test_forms_without_the_csrf_token_or_from_elsewhere_are_refused_and_audited(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    case = await build_case(staff_gateway)
    incident = await case.report()
    dsl = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    path = f"/staff/incidents/{incident.id}"
    page = await dsl.get(path)
    attempts = [
        await dsl.post(path + "/notes", {"text": "no token"}),
        await dsl.post(path + "/notes", {"text": "wrong", "csrf": "x" * 43}),
        await dsl.post(
            path + "/notes",
            {"text": "other site", "csrf": page.csrf},
            origin="https://evil.example",
        ),
        await dsl.post(path + "/notes", {"text": "no origin", "csrf": page.csrf}, origin=None),
        await dsl.post("/staff/sign-out-everywhere", {}),
    ]
    assert [a.status for a in attempts] == [403] * 5
    anonymous = await new_browser(staff_gateway)
    await anonymous.get("/staff/sign-in")
    no_token = await anonymous.post(
        "/staff/sign-in/password", {"email": email_of("Dee Lead"), "password": "x" * 12}
    )
    assert no_token.status == 403
    org = await staff_gateway.services.store.organisation(case.world.org_id)
    assert org is not None
    detail = await case.service.get(org, incident.id)
    assert detail.incident.status is IncidentStatus.OPEN and detail.notes is None
    codes = [e.data["code"] for e in await audited(staff_gateway, "request.refused")]
    assert codes.count("csrf_refused") == 6
    assert (await dsl.get("/staff")).status == 200  # still signed in: nothing happened


async def test_a_dsl_adds_a_note_and_closes_an_incident_through_the_pages(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    case = await build_case(staff_gateway)
    incident = await case.report()
    dsl = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    listing = await dsl.get("/staff/incidents")
    assert listing.status == 200 and f"/staff/incidents/{incident.id}" in listing.text
    path = f"/staff/incidents/{incident.id}"
    page = await dsl.get(path)
    assert page.status == 200
    assert incident.reporter_participant_id in page.text  # the DSL sees who reported
    noted = await dsl.post(path + "/notes", {"csrf": page.csrf, "text": "Called Sam's guardian."})
    assert noted.status == 303 and noted.location == path
    page = await dsl.get(path)
    assert "Called Sam&#39;s guardian." in page.text
    # Closing needs an outcome from the list and a reason.
    no_reason = await dsl.post(
        path + "/close", {"csrf": page.csrf, "outcome": "referred_police", "reason": "  "}
    )
    no_outcome = await dsl.post(path + "/close", {"csrf": page.csrf, "outcome": "", "reason": "r"})
    assert no_reason.status == no_outcome.status == 400
    assert "Choose an outcome" in no_outcome.text
    closed = await dsl.post(
        path + "/close",
        {"csrf": page.csrf, "outcome": "referred_police", "reason": "Police asked for it."},
    )
    assert closed.status == 303
    page = await dsl.get(path)
    assert 'id="incident-status">closed' in page.text
    assert "Outcome: Referred to the police." in page.text
    assert "Reason: Police asked for it." in page.text
    again = await dsl.post(
        path + "/close", {"csrf": page.csrf, "outcome": "referred_police", "reason": "again"}
    )
    assert again.status == 409
    [entry] = await audited(staff_gateway, "incident.closed")
    assert entry.actor == f"staff:{case.world.ids['Dee Lead']}"
    # The integration API sees the same incident closed, still masked.
    seen = await case.world.admin.get(f"/v1/incidents/{incident.id}")
    assert seen.body["status"] == "closed" and "notes" not in seen.body


async def test_a_tutor_or_observer_cannot_open_the_dsls_pages(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    case = await build_case(staff_gateway)
    incident = await case.report()
    for name in ("Tina Tutor", "Oscar Observer"):
        browser = await _signed_in(staff_gateway, mailbox, name)
        home = await browser.get("/staff")
        assert home.status == 200 and "/staff/incidents" not in home.text
        assert (await browser.get("/staff/incidents")).status == 403
        assert (await browser.get(f"/staff/incidents/{incident.id}")).status == 403
        note = await browser.post(
            f"/staff/incidents/{incident.id}/notes", {"csrf": home.csrf, "text": "mine"}
        )
        close = await browser.post(
            f"/staff/incidents/{incident.id}/close",
            {"csrf": home.csrf, "outcome": "no_further_action", "reason": "mine"},
        )
        assert note.status == close.status == 403
    assert len(await audited(staff_gateway, "incident.note_added")) == 0


async def test_a_dsl_of_another_organisation_sees_nothing_of_this_one(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    case = await build_case(staff_gateway)
    incident = await case.report()
    _, other_key = await staff_gateway.organisation("Other Club")
    other_admin = await staff_gateway.client(other_key)
    made = await other_admin.post(
        "/v1/staff",
        {"name": "Olive Other", "email": "olive.other@example.org", "roles": ["dsl"]},
    )
    assert made.status == 201, made.body
    stranger = await _signed_in(staff_gateway, mailbox, "Olive Other")
    listing = await stranger.get("/staff/incidents?status=all")
    assert listing.status == 200 and incident.id not in listing.text
    path = f"/staff/incidents/{incident.id}"
    assert (await stranger.get(path)).status == 404
    home = await stranger.get("/staff")
    note = await stranger.post(path + "/notes", {"csrf": home.csrf, "text": "mine now"})
    close = await stranger.post(
        path + "/close", {"csrf": home.csrf, "outcome": "no_further_action", "reason": "mine"}
    )
    assert note.status == close.status == 404


async def test_api_keys_name_nobody(staff_gateway: Gateway, mailbox: Mailbox) -> None:
    case = await build_case(staff_gateway)
    incident = await case.report()
    admin = case.world.admin
    dsl = case.world.ids["Dee Lead"]
    listed = await admin.get(f"/v1/incidents?as_staff={dsl}")
    one = await admin.get(f"/v1/incidents/{incident.id}?as_staff={dsl}")
    assert listed.status == one.status == 400
    assert listed.code == one.code == "query_invalid"
    note = await admin.post(f"/v1/incidents/{incident.id}/notes", {"staff_id": dsl, "text": "x"})
    close = await admin.post(f"/v1/incidents/{incident.id}/close", {"staff_id": dsl})
    assert note.status == close.status == 404
    masked = await admin.get(f"/v1/incidents/{incident.id}")
    assert "participant_id" not in masked.body["reported_by"] and "notes" not in masked.body
