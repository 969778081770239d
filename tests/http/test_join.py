"""Joining a session over real HTTP: admit, hold, deny, and the invite's rules (R1-R4, R6)."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.http.live_api import LIVE
from tests.http.audit_rows import entries_without_org
from tests.http.world import build_world
from tests.live_media._session import People
from tests.plugins.gateway_server import Gateway


async def test_child_is_held_until_two_vetted_adults_are_present(gateway: Gateway) -> None:
    world = await build_world(gateway)
    early = await world.join("Sam Green")
    assert early.status == 200
    assert early.body["outcome"] == "hold"
    assert "awaiting_supervision" in early.body["reasons"]
    assert early.body["grants"] == {"can_publish": False, "can_subscribe": False, "hidden": False}

    tutor = await world.join("Tina Tutor")
    assert tutor.body["outcome"] == "admit"
    assert (await world.join("Ada Hill")).body["outcome"] == "hold"  # one adult is not enough

    observer = await world.join("Oscar Observer")
    assert observer.body["outcome"] == "admit"
    ada = await world.join("Ada Hill", device=None)
    # Ada's invite is bound to the device that first used it; a fresh client is another device.
    assert ada.status == 403 and ada.code == "invite_other_device"


async def test_admitted_child_sees_only_masked_identities(gateway: Gateway) -> None:
    world = await build_world(gateway)
    people = People(world)
    try:  # adults count once their media is connected
        await people.arrive("Tina Tutor")
        await people.arrive("Oscar Observer")
        child = await world.join("Sam Green")
    finally:
        await people.close()
    assert child.body["outcome"] == "admit"
    assert child.body["grants"]["can_publish"] and child.body["grants"]["can_subscribe"]
    text = str(child.body)
    assert child.body["participant"]["display_name"] == "Sam G."
    for secret in ("Green", "2016-04-02", world.ids["Sam Green"], "tina.tutor@"):
        assert secret not in text
    assert child.body["participant"]["identity"].startswith("p_")


async def test_child_without_participation_consent_is_denied(gateway: Gateway) -> None:
    world = await build_world(gateway)
    await world.guardian("Nia North")
    await world.child("Ned North", "2015-01-01", "Nia North", consent=False)
    await world.enrol("Ned North", "child", "child")
    await world.invite("Ned North")
    people = People(world)
    try:  # adults count once their media is connected
        await people.arrive("Tina Tutor")
        await people.arrive("Oscar Observer")
        answer = await world.join("Ned North")
        assert answer.body["outcome"] == "deny"
        assert "no_participation_consent" in answer.body["reasons"]

        # Consent, once given, admits; withdrawn, it denies again at once (R9).
        await world.consent("Ned North", "participation", "Nia North", "guardian")
        device = await gateway.client()
        assert (await world.join("Ned North", device)).body["outcome"] == "admit"
    finally:
        await people.close()
    withdrawn = await world.consent(
        "Ned North", "participation", "Nia North", "guardian", "withdraw"
    )
    assert withdrawn.status == 201
    assert (await world.join("Ned North", device)).body["outcome"] == "deny"


async def test_same_device_may_rejoin_other_device_is_refused_and_host_told(
    gateway: Gateway,
) -> None:
    world = await build_world(gateway)
    laptop = await gateway.client()
    assert (await world.join("Tina Tutor", laptop)).body["outcome"] == "admit"
    assert (await world.join("Tina Tutor", laptop)).body["outcome"] == "admit"
    stranger = await gateway.client()
    replay = await world.join("Tina Tutor", stranger)
    assert replay.status == 403 and replay.code == "invite_other_device"
    audit = await world.admin.get("/v1/audit?kind=invite.other_device")
    assert len(audit.body["items"]) == 1
    assert audit.body["items"][0]["session_id"] == world.session["id"]
    alerts = await gateway.app[LIVE]._alerts.recent_alerts(world.session["id"])
    told = [a for a in alerts if a["kind"] == "invite_other_device"]
    assert len(told) == 1 and told[0]["display_name"] == "Tina T."
    assert "Tutor" not in str(told)  # the host hears the masked name only


async def test_revoked_and_expired_invites_are_refused(gateway: Gateway) -> None:
    world = await build_world(gateway)
    revoked = await world.admin.post(f"/v1/invites/{world.invites['Ada Hill']['id']}/revoke")
    assert revoked.status == 200 and revoked.body["revoked"] is True
    answer = await world.join("Ada Hill")
    # one answer for every bad invite (tests/abuse/test_uniform_refusal.py); the audit says why
    assert answer.status == 403 and answer.code == "invite_invalid"

    gateway.clock.advance(timedelta(hours=3))  # past the session's end, so past the invite's
    answer = await world.join("Sam Green")
    assert answer.status == 403 and answer.code == "invite_invalid"


async def test_forged_and_garbage_tokens_are_refused_and_audited(gateway: Gateway) -> None:
    world = await build_world(gateway)
    token = world.invites["Sam Green"]["token"]
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    device = await gateway.client()
    for bad in (forged, "not-a-token", token + "x"):
        answer = await device.post("/v1/join", {"token": bad, "password": "open-sesame"})
        assert answer.status == 403 and answer.code == "invite_invalid"
        assert bad not in str(answer.body)
    # A forged token names no organisation it can be trusted for: the refusals are audited as
    # anonymous ones, each with its code and route, and none under the organisation.
    anonymous = await entries_without_org(gateway, "request.refused")
    assert [(e.actor, e.data["code"], e.data["route"]) for e in anonymous] == [
        ("anonymous", "invite_invalid", "/v1/join")
    ] * 3
    assert token not in str([e.data for e in anonymous])
    filed = await world.admin.get("/v1/audit?kind=request.refused")
    assert filed.status == 200 and filed.body["items"] == []
    report = await gateway.services.store.verify_audit()
    assert report.intact


async def test_password_is_required_and_guessing_is_limited(gateway: Gateway) -> None:
    world = await build_world(gateway)
    device = await gateway.client()
    missing = await world.join("Tina Tutor", device, password=None)
    assert missing.status == 401 and missing.code == "password_required"
    for _ in range(4):
        wrong = await world.join("Tina Tutor", device, password="guess-guess")
        assert wrong.status == 401 and wrong.code == "password_wrong"
    locking = await world.join("Tina Tutor", device, password="guess-guess")  # the fifth locks
    assert locking.status == 429 and locking.code == "too_many_attempts"
    limited = await world.join("Tina Tutor", device, password="open-sesame")
    assert limited.status == 429 and limited.code == "too_many_attempts"
    assert int(limited.headers["Retry-After"]) > 0
    gateway.clock.advance(timedelta(minutes=16))
    assert (await world.join("Tina Tutor", device)).body["outcome"] == "admit"


async def test_viewer_is_subscribe_only_in_a_livestream(gateway: Gateway) -> None:
    world = await build_world(gateway)
    await world.new_session("Tina Tutor", kind="livestream")
    await world.enrol("Oscar Observer", "observer", "staff")
    await world.guardian("Vera Viewer")
    assert (await world.enrol("Vera Viewer", "viewer", "guardian")).status == 201
    for name in ("Tina Tutor", "Oscar Observer", "Vera Viewer"):
        await world.invite(name)
    await world.join("Tina Tutor")
    viewer = await world.join("Vera Viewer")
    assert viewer.body["outcome"] == "admit"
    assert viewer.body["grants"]["can_publish"] is False
    assert viewer.body["grants"]["can_subscribe"] is True
    assert viewer.body["participant"]["display_name"] == "Viewer 1"


async def test_observer_with_expired_vetting_cannot_observe(gateway: Gateway) -> None:
    world = await build_world(gateway)
    await world.staff(
        "Lapsed Larry",
        ["observer"],
        {"kind": "dbs_enhanced", "checked_on": "2023-01-01", "expires_on": "2026-01-01"},
    )
    # Refused when the roster is written, with the reason, not only when Larry comes to join.
    refused = await world.enrol("Lapsed Larry", "observer", "staff")
    assert (refused.status, refused.code) == (422, "vetting_expired"), refused.body
    assert "dbs_enhanced" in refused.body["error"]["message"]  # the accepted vetting kinds
    roster = await world.admin.get(f"/v1/sessions/{world.session['id']}/participants")
    assert world.ids["Lapsed Larry"] not in {p["person_id"] for p in roster.body["items"]}

    # Vetting that lapses after the roster was written still counts for nothing at join time.
    await world.staff("Owen Observer", ["observer"])
    assert (await world.enrol("Owen Observer", "observer", "staff")).status == 201
    await world.invite("Owen Observer")
    lapsed = {"kind": "dbs_enhanced", "checked_on": "2023-01-01", "expires_on": "2026-01-01"}
    renewed = await world.admin.call(
        "PATCH", f"/v1/staff/{world.ids['Owen Observer']}", {"vetting": lapsed}
    )
    assert renewed.status == 200, renewed.body
    assert renewed.body["vetting"]["expired"] is True
    answer = await world.join("Owen Observer")
    assert answer.body["outcome"] == "deny"
    assert "vetting_expired" in answer.body["reasons"]


async def test_a_reload_on_the_bound_device_is_not_asked_the_password_again(
    gateway: Gateway,
) -> None:
    world = await build_world(gateway)
    laptop = await gateway.client()
    first = await world.join("Tina Tutor", laptop)
    assert first.body["outcome"] == "admit"
    # The same device, no password: the device cookie proved it at the first join.
    again = await world.join("Tina Tutor", laptop, password=None)
    assert again.status == 200 and again.body["outcome"] == "admit"
    # A device that never proved it is still asked; a wrong password from it still counts.
    fresh = await world.join("Oscar Observer", await gateway.client(), password=None)
    assert fresh.status == 401 and fresh.code == "password_required"
    # The join answer names who runs the session (masked) and when it starts.
    session = first.body["session"]
    assert session["host_display_name"] == "Tina T."
    starts = datetime.fromisoformat(session["starts_at"])
    assert starts == gateway.clock.now() - timedelta(minutes=5)
    assert "Tutor" not in str(session["host_display_name"])
