"""The DSL's desk over real HTTP on SQLite and PostgreSQL: open concerns and breaches, a
session's timeline, the audit log with its verification in the background, the report for
referral; who may see them, and every view audited (R13, R14, R15)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.adapters.audit_witness import FileWitness, witnesses_for
from gateway.domain.audit import AuditEvent, WitnessedHead
from gateway.domain.incidents import KIND_SUPERVISION_BREACH
from gateway.services.desk import AUDIT_PAGE_SIZE
from tests.audit.conftest import AuditDb
from tests.incidents.test_incidents_http import Case, build_case
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import (
    Browser,
    Mailbox,
    Page,
    audited,
    email_of,
    new_browser,
    serve_gateway,
)

SECRETS = ("Green", "Hill", "2016-04-02", "2017-09-12", "@example.org")


async def _signed_in(gateway: Gateway, mailbox: Mailbox, name: str) -> Browser:
    browser = await new_browser(gateway)
    used = await browser.sign_in_with_link(mailbox, email_of(name))
    assert used.status == 303, used.text
    return browser


async def _json(browser: Browser, path: str) -> Any:
    page = await browser.get(path)
    assert page.status == 200, page.text
    assert page.headers["Content-Type"].startswith("application/json")
    return json.loads(page.text)


async def _live_session(case: Case) -> None:
    """A session with a hold, a release, a breach, a concern and a removal.

    The joins go through the real join API (the admission writes "join.decision", the live
    service holds and releases); what the live service writes while media flows
    (tests/live_media drive it with aiortc peers) is recorded here as services/live.py
    records it, on the gateway's own audited store.
    """
    world, gateway = case.world, case.world.gateway
    session_id = world.session["id"]
    roster = case.roster
    assert (await world.join("Tina Tutor")).body["outcome"] == "admit"
    assert (await world.join("Sam Green")).body["outcome"] == "hold"
    assert (await world.join("Oscar Observer")).body["outcome"] == "admit"

    def seat(name: str, kind: str, **data: object) -> AuditEvent:
        entry = roster[name]
        return AuditEvent(
            kind,
            entry["masked_identity"],
            world.org_id,
            session_id=session_id,
            data={"participant": entry["id"], **data},
        )

    store = gateway.services.store
    # Both adults' media connects (adults count once connected), which releases Sam (the live
    # service evaluates supervision on every presence change); the observer's media then drops.
    gateway.clock.advance(timedelta(minutes=1))
    await store.record(
        [
            seat("Tina Tutor", "media.connected"),
            seat("Oscar Observer", "media.connected"),
            seat("Sam Green", "supervision.release", state="supervised"),
        ]
    )
    gateway.clock.advance(timedelta(minutes=5))
    await store.record([seat("Oscar Observer", "media.disconnected")])
    gateway.clock.advance(timedelta(minutes=1))
    await store.record(
        [
            seat("Sam Green", "supervision.hold", state="breach"),
            AuditEvent("supervision.breach", "gateway", world.org_id, session_id, data={}),
        ]
    )
    await case.service.record_system_incident(
        world.org_id, session_id, KIND_SUPERVISION_BREACH, "Children held.", ["held_children"]
    )
    gateway.clock.advance(timedelta(minutes=1))
    await case.report("Sam Green")  # the real "report a concern"
    gateway.clock.advance(timedelta(minutes=2))
    await store.record(
        [
            AuditEvent(
                "participant.removed",
                roster["Tina Tutor"]["masked_identity"],
                world.org_id,
                session_id=session_id,
                data={"participant": roster["Oscar Observer"]["id"]},
            )
        ]
    )


async def _verified(browser: Browser, timeout: float = 20.0) -> dict[str, Any]:
    for _ in range(int(timeout / 0.05)):
        run = (await _json(browser, "/staff/audit/verify.json"))["run"]
        assert run is not None
        if run["result"] != "running":
            return dict(run)
        await asyncio.sleep(0.05)
    raise AssertionError("the verification did not finish")


async def test_a_dsl_sees_open_concerns_and_breaches_first_and_new_ones_arrive(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    case = await build_case(staff_gateway)
    world = case.world
    other = await case.service.record_system_incident(
        world.org_id, world.session["id"], "other_device", "Invite used elsewhere.", []
    )
    staff_gateway.clock.advance(timedelta(minutes=1))
    breach = await case.service.record_system_incident(
        world.org_id, world.session["id"], KIND_SUPERVISION_BREACH, "Held.", ["held_children"]
    )
    dsl = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    home = await dsl.get("/staff")
    assert 'href="/staff/desk"' in home.text
    desk = await dsl.get("/staff/desk")
    assert desk.status == 200
    assert desk.text.index(breach.id) < desk.text.index(other.id)
    assert 'role="log" aria-live="polite"' in desk.text
    assert '<script src="/staff/desk/desk.js"' in desk.text and "<script>" not in desk.text
    assert "script-src 'self'" in desk.headers["Content-Security-Policy"]
    script = await dsl.get("/staff/desk/desk.js")
    assert script.status == 200 and "open.json" not in script.text  # the URL is in the page
    assert script.headers["Content-Type"].startswith("text/javascript")

    staff_gateway.clock.advance(timedelta(minutes=1))
    concern = await case.report("Sam Green")
    items = (await _json(dsl, "/staff/desk/open.json"))["items"]
    assert [i["id"] for i in items] == [concern.id, breach.id, other.id]
    assert items[0]["kind"] == "concern" and items[0]["url"] == f"/staff/incidents/{concern.id}"
    assert items[0]["reported_by"] == f"{case.roster['Sam Green']['display_name']} (Child)"
    assert items[1]["reported_by"] == "the gateway"
    assert items[0]["timeline"] == f"/staff/sessions/{world.session['id']}/timeline"
    for secret in SECRETS:
        assert secret not in json.dumps(items)
    [viewed] = await audited(staff_gateway, "desk.viewed")  # the page, not its polls
    assert viewed.actor == f"staff:{world.ids['Dee Lead']}" and viewed.data == {"open": 2}


async def test_the_timeline_draws_who_was_there_holds_removals_and_concerns_by_masked_name(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    case = await build_case(staff_gateway)
    await _live_session(case)
    session_id = case.world.session["id"]
    dsl = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    listing = await case.service.list(await case.org())
    [concern] = [i for i in listing.items if i.kind == "concern"]
    incident = await dsl.get(f"/staff/incidents/{concern.id}")
    assert f'href="/staff/sessions/{session_id}/timeline"' in incident.text

    page = await dsl.get(f"/staff/sessions/{session_id}/timeline")
    assert page.status == 200, page.text
    svg = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    names = {n: case.roster[n]["display_name"] for n in ("Tina Tutor", "Sam Green")}
    lanes = re.findall(r'<g class="lane lane-(\w+)" data-label="([^"]+)"', svg)
    assert lanes == [
        ("band", "Supervision"),
        ("host", f"{names['Tina Tutor']} (Host)"),
        ("observer", f"{case.roster['Oscar Observer']['display_name']} (Observer)"),
        ("child", f"{names['Sam Green']} (Child)"),
    ]
    child_lane = svg[svg.index('data-label="' + names["Sam Green"]) :]
    assert 'data-kind="held"' in child_lane and 'data-kind="concern"' in child_lane
    observer_lane = svg[svg.index("lane-observer") : svg.index("lane-child")]
    assert 'data-kind="removed"' in observer_lane
    band = svg[svg.index("lane-band") : svg.index("lane-host")]
    for kind in ("supervised", "held", "breach"):
        assert f'data-kind="{kind}"' in band
    for secret in SECRETS:
        assert secret not in page.text

    # The text alternative lists the same events.
    table = page.text[page.text.index('<table class="events">') :]
    rows = re.findall(r"<tr><td>([\d:]+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", table)
    sam = f"{names['Sam Green']} (Child)"
    whats = [(who, what) for _, who, what in rows]
    for expected in [
        (sam, "joined and held until enough adults are present"),
        (sam, "released (supervised again)"),
        (sam, "held (cannot see, hear or be seen)"),
        ("Session", "supervision breach: fewer vetted adults than required"),
        (sam, "concern reported"),
        (f"{case.roster['Oscar Observer']['display_name']} (Observer)", "removed by the host"),
    ]:
        assert expected in whats
    assert len(rows) == 12  # three joins, two media connected, release, media lost, hold,
    # breach (two), concern, removal

    [viewed] = await audited(staff_gateway, "timeline.viewed")
    assert viewed.actor == f"staff:{case.world.ids['Dee Lead']}"
    assert viewed.session_id == session_id and viewed.org_id == case.world.org_id


async def test_tutors_and_observers_get_403_and_another_organisations_dsl_404(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    case = await build_case(staff_gateway)
    incident = await case.report()
    session_id = case.world.session["id"]
    paths = [
        "/staff/desk",
        "/staff/desk/open.json",
        f"/staff/sessions/{session_id}/timeline",
        "/staff/audit",
        "/staff/audit/verify.json",
        f"/staff/incidents/{incident.id}/report",
        f"/staff/incidents/{incident.id}/report.pdf",
    ]
    for name in ("Tina Tutor", "Oscar Observer"):
        browser = await _signed_in(staff_gateway, mailbox, name)
        home = await browser.get("/staff")
        assert "/staff/desk" not in home.text and "/staff/audit" not in home.text
        assert [(await browser.get(p)).status for p in paths] == [403] * len(paths)
        verify = await browser.post("/staff/audit/verify", {"csrf": home.csrf})
        assert verify.status == 403
    _, other_key = await staff_gateway.organisation("Other Club")
    other_admin = await staff_gateway.client(other_key)
    made = await other_admin.post(
        "/v1/staff", {"name": "Olive Other", "email": "olive.other@example.org", "roles": ["dsl"]}
    )
    assert made.status == 201, made.body
    stranger = await _signed_in(staff_gateway, mailbox, "Olive Other")
    assert (await stranger.get(f"/staff/sessions/{session_id}/timeline")).status == 404
    assert (await stranger.get(f"/staff/incidents/{incident.id}/report")).status == 404
    assert (await stranger.get(f"/staff/incidents/{incident.id}/report.pdf")).status == 404
    desk = await _json(stranger, "/staff/desk/open.json")
    assert desk["items"] == []
    audit = await stranger.get(f"/staff/audit?session={session_id}")
    assert audit.status == 200 and "No entries match." in audit.text
    # Nothing of theirs was shown, and no view of this organisation's session was audited.
    assert await audited(staff_gateway, "timeline.viewed") == []
    assert await audited(staff_gateway, "incident.report_generated") == []
    refused = [e.data["code"] for e in await audited(staff_gateway, "request.refused")]
    assert refused.count("forbidden") == 2 * (len(paths) + 1)


async def test_the_audit_page_filters_and_pages_and_every_view_is_audited(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    case = await build_case(staff_gateway)
    await _live_session(case)
    session_id = case.world.session["id"]
    dsl = await _signed_in(staff_gateway, mailbox, "Dee Lead")

    def seqs(page: Page) -> list[int]:
        return [int(s) for s in re.findall(r'<tr data-seq="(\d+)">', page.text)]

    def kinds(page: Page) -> set[str]:
        return set(
            re.findall(r'<tr data-seq="\d+"><td>\d+</td><td>[^<]+</td><td>([^<]+)</td>', page.text)
        )

    for _ in range(AUDIT_PAGE_SIZE - 20):  # each view is an entry: enough for two pages
        assert (await dsl.get(f"/staff/sessions/{session_id}/timeline")).status == 200
    first = await dsl.get("/staff/audit")
    assert first.status == 200 and len(seqs(first)) == AUDIT_PAGE_SIZE
    found = re.search(r'href="/staff/audit\?(after=[0-9%A-F]+)" rel="next"', first.text)
    assert found
    second = await dsl.get("/staff/audit?" + found.group(1))
    assert min(seqs(second)) > max(seqs(first))

    by_kind = await dsl.get("/staff/audit?kind=supervision.hold")
    assert kinds(by_kind) == {"supervision.hold"} and len(seqs(by_kind)) == 1
    by_session = await dsl.get(f"/staff/audit?session={session_id}&kind=join.decision")
    assert len(seqs(by_session)) == 3
    sam = case.world.ids["Sam Green"]
    by_person = await dsl.get(f"/staff/audit?person={sam}&kind=join.decision")
    assert len(seqs(by_person)) == 1
    now = staff_gateway.clock.now()
    since = (now - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S")
    recent = await dsl.get(f"/staff/audit?session={session_id}&since={since}")
    assert "participant.removed" in kinds(recent) and "join.decision" not in kinds(recent)
    until = (now - timedelta(minutes=9)).strftime("%Y-%m-%dT%H:%M")
    early = await dsl.get(f"/staff/audit?session={session_id}&until={until}")
    assert "join.decision" in kinds(early) and "participant.removed" not in kinds(early)
    bad = await dsl.get("/staff/audit?since=yesterday")
    assert bad.status == 400 and "date and time" in bad.text
    backwards = await dsl.get(f"/staff/audit?since={since}&until={until}")
    assert backwards.status == 400

    views = await audited(staff_gateway, "audit.viewed")
    assert len(views) == 7  # every page shown; the refused ones are audited as refusals
    refused = [e.data["code"] for e in await audited(staff_gateway, "request.refused")]
    assert refused == ["query_invalid", "query_invalid"]
    assert {v.actor for v in views} == {f"staff:{case.world.ids['Dee Lead']}"}
    assert views[2].data["filters"]["kind"] == "supervision.hold"  # type: ignore[index]


async def test_verification_runs_in_the_background_and_names_an_edited_entry(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    case = await build_case(staff_gateway)
    incident = await case.report()
    dsl = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    page = await dsl.get("/staff/audit")
    assert "Not checked yet." in page.text
    started = await dsl.post("/staff/audit/verify", {"csrf": page.csrf})
    assert started.status == 303 and started.location == "/staff/audit#verification"
    run = await _verified(dsl)
    assert run["result"] == "intact" and run["percent"] == 100
    assert run["checked"] == run["total"] > 20
    page = await dsl.get("/staff/audit")
    assert 'data-result="intact"' in page.text and "<progress" in page.text

    report = await dsl.get(f"/staff/incidents/{incident.id}/report")
    assert 'id="report-verification" data-result="intact"' in report.text

    # A database admin edits an entry (as tests/audit do); the next check names it.
    store = staff_gateway.services.store
    db = AuditDb("", store._db, store.writer, staff_gateway.clock)
    [opened] = await audited(staff_gateway, "incident.opened")
    entry, _ = await db.entry(opened.seq)
    edited = entry.replace(b"concern", b"nothing")
    await db.tamper(
        ("UPDATE audit_log SET entry = :e WHERE seq = :s", {"e": edited, "s": opened.seq})
    )
    again = await dsl.post("/staff/audit/verify", {"csrf": page.csrf})
    assert again.status == 303
    run = await _verified(dsl)
    assert run["result"] == "tampered"
    assert run["problem"] == f"entry {opened.seq} was edited"
    page = await dsl.get("/staff/audit")
    assert 'data-result="tampered"' in page.text and f"entry {opened.seq} was edited" in page.text

    results = [e.data["result"] for e in await audited(staff_gateway, "audit.verified")]
    assert results == ["intact", "tampered"]
    report = await dsl.get(f"/staff/incidents/{incident.id}/report")
    assert 'data-result="tampered"' in report.text
    assert f"entry {opened.seq} was edited" in report.text
    pdf = await dsl.http.get(f"{dsl.base}/staff/incidents/{incident.id}/report.pdf")
    body = await pdf.read()
    assert b"/Subject (Audit log verification: not intact " in body
    assert f"entry {opened.seq} was edited".encode() in body


async def test_the_report_for_referral_has_the_incident_notes_timeline_and_verification(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    case = await build_case(staff_gateway)
    await _live_session(case)
    dsl = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    listing = await case.service.list(await case.org())
    [concern] = [i for i in listing.items if i.kind == "concern"]
    path = f"/staff/incidents/{concern.id}"
    page = await dsl.get(path)
    assert f'href="{path}/report"' in page.text
    await dsl.post(path + "/notes", {"csrf": page.csrf, "text": "Rang the guardian at 10:20."})

    before = await dsl.get(path + "/report")
    assert before.status == 200
    assert 'data-result="not_checked"' in before.text
    assert "Rang the guardian at 10:20." in before.text
    assert f"UTC by {case.roster['Sam Green']['display_name']} (Child)</dd>" in before.text
    assert "<svg" in before.text and 'data-kind="concern"' in before.text
    assert "@media print" in (await dsl.get("/staff/staff.css")).text
    for secret in SECRETS:
        assert secret not in before.text

    audit = await dsl.get("/staff/audit")
    await dsl.post("/staff/audit/verify", {"csrf": audit.csrf})
    assert (await _verified(dsl))["result"] == "intact"
    after = await dsl.get(path + "/report")
    assert 'data-result="intact"' in after.text

    pdf = await dsl.http.get(dsl.base + path + "/report.pdf")
    body = await pdf.read()
    assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert body.startswith(b"%PDF-") and len(body) > 1000
    assert b"/Subject (Audit log verification: intact)" in body
    assert pdf.headers["Content-Disposition"] == f'attachment; filename="incident-{concern.id}.pdf"'

    made = await audited(staff_gateway, "incident.report_generated")
    assert [(e.data["format"], e.data["verification"]) for e in made] == [
        ("html", "not_checked"),
        ("html", "intact"),
        ("pdf", "intact"),
    ]
    assert {e.actor for e in made} == {f"staff:{case.world.ids['Dee Lead']}"}


async def test_a_cut_covered_up_in_the_database_is_caught_by_the_head_recorded_outside(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    """The desk's check includes the head the gateway recorded outside the database (the
    audit witness file): a log that no longer reaches it was cut."""
    await build_case(staff_gateway)
    dsl = await _signed_in(staff_gateway, mailbox, "Dee Lead")
    settings = staff_gateway.settings
    [file_witness] = witnesses_for(None, settings.keys_dir, b"").values()
    head = await staff_gateway.services.store.verify_audit()
    assert isinstance(file_witness, FileWitness)
    # As if the witness had recorded a head 100 entries further on, before they were cut.
    far = WitnessedHead(head.head_seq + 100, bytes(32))
    await file_witness.record((far,), staff_gateway.clock.now())  # every chain's: one here
    page = await dsl.get("/staff/audit")
    await dsl.post("/staff/audit/verify", {"csrf": page.csrf})
    run = await _verified(dsl)
    assert run["result"] == "tampered" and run["witnessed"] == 1
    assert f"its head was at entry {far.seq} when recorded outside the database" in run["problem"]


async def test_after_a_restart_the_page_shows_the_last_result_from_the_log(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    async with serve_gateway(database_url, tmp_path, mailbox.port) as first:
        await build_case(first)
        dsl = await _signed_in(first, mailbox, "Dee Lead")
        page = await dsl.get("/staff/audit")
        await dsl.post("/staff/audit/verify", {"csrf": page.csrf})
        checked = (await _verified(dsl))["checked"]
    async with serve_gateway(database_url, tmp_path, mailbox.port) as second:
        dsl = await _signed_in(second, mailbox, "Dee Lead")
        page = await dsl.get("/staff/audit")
        assert 'data-result="intact"' in page.text
        assert f"Intact: {checked} entries checked" in page.text
