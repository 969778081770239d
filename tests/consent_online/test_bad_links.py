"""Consent links that must not work: replayed from another browser, expired, altered, forged,
another guardian's; a child who is not the guardian's; forms from elsewhere. Each gets a clear
refusal page that says nothing about why, and the audit log keeps the reason."""

from __future__ import annotations

from datetime import timedelta

from tests.consent_online.conftest import (
    LESSONS,
    PAT,
    QUINN,
    family,
    form_for,
    open_link,
)
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Mailbox, audited, new_browser

REFUSED = 'data-code="consent_link_invalid"'


async def _reasons(gateway: Gateway) -> list[str]:
    return [str(e.data["reason"]) for e in await audited(gateway, "consent_link.refused")]


async def test_replayed_altered_forged_and_expired_links_are_refused_and_audited(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    link = await fam.send_link("Pat Parker", PAT)
    token = link.rsplit("token=", 1)[1]
    pat = await new_browser(staff_gateway)
    assert (await open_link(pat, link)).status == 303

    # The same browser may come back through its link; any other browser is a replay.
    assert (await open_link(pat, link)).location == "/consent"
    stranger = await new_browser(staff_gateway)
    replay = await open_link(stranger, link)
    assert replay.status == 403 and REFUSED in replay.text
    assert "gw_consent" not in {c.key for c in replay.cookies}
    assert (await stranger.get("/consent")).status == 401
    assert await _reasons(staff_gateway) == ["used_elsewhere"]

    # Altered (one character of the MAC, or the link id), forged, truncated, junk.
    link_id, mac = token.split(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    other_id = ("0" if link_id[0] != "0" else "1") + link_id[1:]
    for bad in (f"{link_id}.{flipped}", f"{other_id}.{mac}", token[:-3], "../../etc/passwd"):
        answer = await stranger.post("/consent/link/use", {"token": bad})
        assert answer.status == 403 and REFUSED in answer.text, bad
        assert "Pat" not in answer.text
        # Every token shaped like ours (real or not) is offered a new link alike; the form
        # carries back nothing else (escaped hex and base64url only).
        shaped = bad.count(".") == 1 and len(bad) == 76
        assert ('action="/consent/link/renew"' in answer.text) is shaped, bad
        assert (bad in answer.text) is shaped, bad
    # Tokens naming a real link are audited with the reason under its guardian; the others
    # name nobody and are audited like every anonymous refusal (request_audit.py).
    assert await _reasons(staff_gateway) == ["used_elsewhere", "altered"]
    anonymous = [
        e
        for e in await audited(staff_gateway, "request.refused")
        if e.data.get("code") == "consent_link_invalid" and e.actor == "anonymous"
    ]
    assert len(anonymous) == 5  # the replay, and the four altered or forged tokens
    [refusal] = [
        e
        for e in await audited(staff_gateway, "consent_link.refused")
        if e.data["reason"] == "altered"
    ]
    assert refusal.person_id == fam.world.ids["Pat Parker"]  # whose link someone tampered with
    # The button page itself never echoes a token that is not one of ours.
    opened = await stranger.get("/consent/link?token=%3Cscript%3E")
    assert (
        opened.status == 200 and "<script>" not in opened.text and 'name="token"' not in opened.text
    )

    # Expired: an unused link, and the page of a browser already bound to one.
    fresh = await fam.send_link("Pat Parker", PAT)
    staff_gateway.clock.advance(timedelta(days=7, seconds=1))
    late = await new_browser(staff_gateway)
    expired = await open_link(late, fresh)
    assert expired.status == 403 and REFUSED in expired.text
    # The bound browser keeps a withdraw-only page for a while (R9), then that too expires.
    withdraw_only = await pat.get("/consent")
    assert withdraw_only.status == 200 and 'id="withdraw-only"' in withdraw_only.text
    staff_gateway.clock.advance(timedelta(days=30))
    gone = await pat.get("/consent")
    assert gone.status == 403 and REFUSED in gone.text
    assert (await _reasons(staff_gateway))[-2:] == ["expired", "expired"]


async def test_another_guardians_link_and_another_guardians_child_are_refused(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    ids = fam.world.ids
    await fam.guardian("Quinn Quill", QUINN)
    await fam.world.child("Ros Quill", "2015-03-03", "Quinn Quill", consent=False)
    pat, quinn = await new_browser(staff_gateway), await new_browser(staff_gateway)
    assert (await open_link(pat, await fam.send_link("Pat Parker", PAT))).status == 303
    quinns_link = await fam.send_link("Quinn Quill", QUINN)
    assert (await open_link(quinn, quinns_link)).status == 303

    # Pat's browser (holding Pat's own link) cannot take over Quinn's.
    taken = await open_link(pat, quinns_link)
    assert taken.status == 403 and REFUSED in taken.text
    page = await pat.get("/consent")
    assert "Ros Quill" not in page.text and "Kim Parker" in page.text

    # Quinn's page signs only for Quinn's child: Pat's child (or an id that is nobody) is
    # refused with one answer, audited under Quinn.
    quinn_page = await quinn.get("/consent")
    form = form_for(
        quinn_page, "/consent/give", child=ids["Ros Quill"], purpose=LESSONS, signer="guardian"
    )
    for child in (ids["Kim Parker"], "f" * 32, "../x"):
        for action, extra in (
            ("/consent/give", {"typed_name": "Quinn Quill"}),
            ("/consent/withdraw", {}),
        ):
            answer = await quinn.post(action, {**form, "child": child, **extra})
            assert answer.status == 422 and 'data-code="not_a_guardian"' in answer.text
            assert "Kim" not in answer.text
    kim = await fam.world.admin.get(f"/v1/children/{ids['Kim Parker']}/consent")
    assert kim.body["history"] == []
    refused = [
        e
        for e in await audited(staff_gateway, "request.refused")
        if e.data.get("code") == "not_a_guardian"
    ]
    assert len(refused) == 6 and {e.actor for e in refused} == {f"guardian:{ids['Quinn Quill']}"}
    assert (await quinn.post("/consent/give", {**form, "typed_name": "Quinn Quill"})).status == 303


async def test_forms_from_elsewhere_or_without_their_token_or_signature_are_refused(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    kim = fam.world.ids["Kim Parker"]
    pat = await new_browser(staff_gateway)
    assert (await open_link(pat, await fam.send_link("Pat Parker", PAT))).status == 303
    page = await pat.get("/consent")
    form = {
        **form_for(page, "/consent/give", child=kim, purpose=LESSONS, signer="guardian"),
        "typed_name": "Pat Parker",
    }
    cases = [
        ({**form, "csrf": "x" * 64}, "same", 403, "csrf_refused"),
        (form, "https://evil.example", 403, "csrf_refused"),
        ({**form, "typed_name": "   "}, "same", 400, "body_invalid"),
        ({**form, "shown": "0" * 64}, "same", 409, "conflict"),  # words not the ones shown
        ({**form, "purpose": "recording:marketing"}, "same", 422, "purpose_unknown"),
        ({**form, "signer": "staff"}, "same", 400, "body_invalid"),
    ]
    for sent, origin, status, code in cases:
        answer = await pat.post("/consent/give", sent, origin=origin)
        assert answer.status == status and f'data-code="{code}"' in answer.text, (sent, answer.text)
    history = await fam.world.admin.get(f"/v1/children/{kim}/consent")
    assert history.body["history"] == []
    assert (await pat.post("/consent/give", form)).status == 303
