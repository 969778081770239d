"""Reading the audit log over HTTP: keyset paging, filters, tenancy, and an intact chain."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.domain.audit_cursor import AuditCursor
from tests.http.world import World
from tests.plugins.gateway_server import Gateway


async def _org(gateway: Gateway, name: str) -> World:
    org_id, key = await gateway.organisation(name)
    return World(gateway, await gateway.client(key), org_id)


async def _all(world: World, query: str = "") -> list[dict[str, Any]]:
    answer = await world.admin.get(f"/v1/audit?limit=500{'&' if query else ''}{query}")
    assert answer.status == 200, answer.body
    assert answer.body["next_after"] is None
    return list(answer.body["items"])


async def test_audit_log_pages_filters_and_stays_within_the_organisation(
    gateway: Gateway,
) -> None:
    ours = await _org(gateway, "Our Club")
    theirs = await _org(gateway, "Their Club")
    # 10:00 - people, interleaved with another organisation's activity.
    await ours.staff("Tina Tutor", ["tutor"])
    await theirs.staff("Tom Theirs", ["tutor"])
    await ours.guardian("Gail Green")
    await theirs.guardian("Tess Theirs")
    await ours.child("Sam Green", "2016-04-02", "Gail Green")
    await theirs.child("Tia Theirs", "2016-04-02", "Tess Theirs")
    # 11:00 - a session each, with an invite.
    gateway.clock.advance(timedelta(hours=1))
    ours_session = await ours.new_session("Tina Tutor")
    theirs_session = await theirs.new_session("Tom Theirs")
    assert (await ours.enrol("Sam Green", "child", "child")).status == 201
    await ours.invite("Sam Green")
    await theirs.enrol("Tia Theirs", "child", "child")
    await theirs.invite("Tia Theirs")
    # 12:00 - consent withdrawn, a refused request, the session ended.
    gateway.clock.advance(timedelta(hours=1))
    await ours.consent("Sam Green", "participation", "Gail Green", "guardian", "withdraw")
    assert (await ours.admin.get("/v1/staff/nobody")).status == 404
    assert (await ours.admin.post(f"/v1/sessions/{ours_session}/end")).status == 200
    await theirs.consent("Tia Theirs", "participation", "Tess Theirs", "guardian", "withdraw")

    everything = await _all(ours)
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert {e["org_id"] for e in everything} == {ours.org_id}
    kinds = [e["kind"] for e in everything]
    assert kinds[0] == "organisation.created"
    for kind in (
        "staff.registered",
        "child.registered",
        "consent.given",
        "session.created",
        "invite.issued",
        "consent.withdrawn",
        "request.refused",
        "session.ended",
    ):
        assert kind in kinds, kind
    theirs_ids = {theirs.org_id, theirs_session, *theirs.ids.values()}
    assert not any(ident in str(everything) for ident in theirs_ids)

    # Keyset paging: pages of 3 put back together are the whole log, in order, once each.
    paged: list[dict[str, Any]] = []
    after: str | None = None
    pages = 0
    while True:
        query = "limit=3" + (f"&after={after}" if after is not None else "")
        answer = await ours.admin.get(f"/v1/audit?{query}")
        assert answer.status == 200, answer.body
        assert len(answer.body["items"]) <= 3
        paged += answer.body["items"]
        pages += 1
        after = answer.body["next_after"]
        if after is None:
            break
        # One position per chain (several processes commit side by side), as text.
        assert (
            max(seq for _, seq in AuditCursor.parse(after).chains)
            == (answer.body["items"][-1]["seq"])
        )
    assert paged == everything
    assert pages >= len(everything) // 3
    beyond = await ours.admin.get(f"/v1/audit?after={everything[-1]['seq']}")
    assert beyond.body == {"items": [], "next_after": None}
    # `after` counts in the global sequence: another organisation's seq skips nothing of ours.
    theirs_last = (await _all(theirs))[-1]["seq"]
    assert await _all(ours, f"after={theirs_last}") == [
        e for e in everything if e["seq"] > theirs_last
    ]

    # Filters.
    by_session = await _all(ours, f"session_id={ours_session}")
    assert by_session and all(e["session_id"] == ours_session for e in by_session)
    assert {e["kind"] for e in by_session} >= {"session.created", "invite.issued", "session.ended"}
    assert by_session == [e for e in everything if e["session_id"] == ours_session]
    assert await _all(ours, f"session_id={theirs_session}") == []

    sam = ours.ids["Sam Green"]
    by_person = await _all(ours, f"person_id={sam}")
    assert [e["kind"] for e in by_person][:2] == ["child.registered", "consent.given"]
    assert by_person == [e for e in everything if e["person_id"] == sam]
    assert await _all(ours, f"person_id={theirs.ids['Tia Theirs']}") == []

    withdrawn = await _all(ours, "kind=consent.withdrawn")
    assert [e["person_id"] for e in withdrawn] == [sam]
    refused = await _all(ours, "kind=request.refused")
    assert [e["data"]["code"] for e in refused] == ["not_found"]
    assert refused[0]["data"]["route"] == "/v1/staff/{id}"
    assert "nobody" not in str(refused)

    # since is inclusive, until exclusive; combined with the other filters.
    at_11 = "2026-11-23T11:00:00Z"
    at_12 = "2026-11-23T12:00:00%2B00:00"
    before_11 = await _all(ours, f"until={at_11}")
    from_11 = await _all(ours, f"since={at_11}")
    assert before_11 + from_11 == everything
    assert all(e["at"] < "2026-11-23T11:00" for e in before_11)
    assert {e["kind"] for e in before_11} >= {"staff.registered", "child.registered"}
    hour_11 = await _all(ours, f"since={at_11}&until={at_12}")
    assert all(e["at"].startswith("2026-11-23T11:") for e in hour_11)
    assert {e["kind"] for e in hour_11} >= {"session.created", "invite.issued"}
    assert hour_11 == [e for e in from_11 if e["at"] < "2026-11-23T12:"]
    assert await _all(ours, f"since={at_12}&kind=consent.withdrawn&person_id={sam}") == withdrawn
    assert await _all(ours, f"until={at_11}&kind=consent.withdrawn") == []
    assert await _all(ours, "since=2026-11-23T13:00:00Z") == []

    report = await gateway.services.store.verify_audit()
    assert report.intact, report.problem
    assert report.checked >= len(everything) + len(await _all(theirs))
