"""Withdrawal is never blocked (R9), even after a link expires: the bound browser keeps a
withdraw-only page; any link of ours that cannot be used any more asks for a new one, sent to
the registry's address only, with one answer whatever happened, limited and audited. A new link
revokes the guardian's older unused ones. A policy that takes no e-signature shows no signing
forms, only withdrawal."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from gateway.domain.consent_links import RENEWAL_ANSWER
from gateway.services.consent_links import RENEWALS_PER_GUARDIAN
from tests.consent_online.conftest import (
    LESSONS,
    PAT,
    QUINN,
    consent_link_for,
    family,
    form_for,
    forms,
    open_link,
)
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Mailbox, audited, new_browser, serve_gateway

REFUSED = 'data-code="consent_link_invalid"'
ROOT = Path(__file__).resolve().parents[2] / "gateway" / "policies"


def _to(box: Mailbox, address: str) -> int:
    return len([m for m in box.messages if m["To"] == address])


async def test_after_expiry_the_bound_browser_withdraws_but_cannot_sign_and_asks_for_a_new_link(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    kim = fam.world.ids["Kim Parker"]
    pat = await new_browser(staff_gateway)
    assert (await open_link(pat, await fam.send_link("Pat Parker", PAT))).status == 303
    page = await pat.get("/consent")
    give = form_for(page, "/consent/give", child=kim, purpose=LESSONS, signer="guardian")
    assert (await pat.post("/consent/give", {**give, "typed_name": "Pat Parker"})).status == 303

    staff_gateway.clock.advance(timedelta(days=7, seconds=1))
    late = await pat.get("/consent")
    # What was agreed is still shown, with its withdrawal; nothing can be signed any more.
    assert late.status == 200 and 'id="withdraw-only"' in late.text
    assert "Signed by <strong>Pat Parker</strong>" in late.text
    assert forms(late, "/consent/give") == [] and forms(late, "/consent/own/give") == []
    refused = await pat.post("/consent/give", {**give, "typed_name": "Pat Parker"})
    assert refused.status == 403 and REFUSED in refused.text
    withdraw = form_for(late, "/consent/withdraw", child=kim, purpose=LESSONS)
    assert (await pat.post("/consent/withdraw", withdraw)).status == 303
    state = (await fam.world.admin.get(f"/v1/children/{kim}/consent")).body
    assert state["purposes"][LESSONS]["valid"] is False
    [withdrawn] = await audited(staff_gateway, "consent.withdrawn")
    assert withdrawn.actor == f"guardian:{fam.world.ids['Pat Parker']}"

    # "Send me a new link" from the withdraw-only page: to the registry's address.
    seen = _to(mailbox, PAT)
    renew = form_for(await pat.get("/consent"), "/consent/link/renew")
    answer = await pat.post("/consent/link/renew", renew)
    assert answer.status == 200 and RENEWAL_ANSWER in answer.text
    fresh = await consent_link_for(mailbox, PAT, seen)
    assert (await open_link(pat, fresh)).status == 303
    signing_again = await pat.get("/consent")
    assert 'id="withdraw-only"' not in signing_again.text
    assert form_for(signing_again, "/consent/give", child=kim, purpose=LESSONS, signer="guardian")
    [requested] = await audited(staff_gateway, "consent_link.renewal_requested")
    assert requested.actor == f"guardian:{fam.world.ids['Pat Parker']}"
    assert str(requested.data["outcome"]).startswith("sent:")


async def test_an_expired_link_asks_for_a_new_one_with_one_answer_limited_and_audited(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    await fam.guardian("Quinn Quill", QUINN)
    old = await fam.send_link("Pat Parker", PAT)
    staff_gateway.clock.advance(timedelta(days=8))
    stranger = await new_browser(staff_gateway)
    expired = await open_link(stranger, old)
    assert expired.status == 403 and REFUSED in expired.text
    renew = form_for(expired, "/consent/link/renew")
    token = old.rsplit("token=", 1)[1]
    assert renew == {"token": token}

    # A genuine expired link: a new one goes to Pat's address on the registry, nowhere else.
    seen, total = _to(mailbox, PAT), len(mailbox.messages)
    answer = await stranger.post("/consent/link/renew", renew)
    assert answer.status == 200 and RENEWAL_ANSWER in answer.text
    fresh = await consent_link_for(mailbox, PAT, seen)
    assert fresh != old and len(mailbox.messages) == total + 1
    assert "Pat" not in answer.text and PAT not in answer.text

    # An altered or made-up token: the same answer, nothing sent, audited as anonymous.
    link_id, mac = token.split(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for bad in (f"{link_id}.{flipped}", "0" * 32 + "." + "A" * 43):
        same = await stranger.post("/consent/link/renew", {"token": bad})
        assert same.status == 200 and same.text == answer.text
    # Up to the guardian's limit, then silently nothing more (the same answer), audited.
    for _ in range(RENEWALS_PER_GUARDIAN + 1):
        again = await stranger.post("/consent/link/renew", renew)
        assert again.status == 200 and RENEWAL_ANSWER in again.text
    await consent_link_for(mailbox, PAT, seen + RENEWALS_PER_GUARDIAN - 1)
    assert _to(mailbox, PAT) == seen + RENEWALS_PER_GUARDIAN
    outcomes = [
        str(e.data["outcome"])
        for e in await audited(staff_gateway, "consent_link.renewal_requested")
    ]
    assert [o.split(":")[0] for o in outcomes] == ["sent"] * RENEWALS_PER_GUARDIAN + [
        "limited",
        "limited",
    ]
    # Each renewal revoked the one before it: only the newest works (mail may arrive in any
    # order, so the newest is the one the last "sent" names).
    newest_id = outcomes[RENEWALS_PER_GUARDIAN - 1].split(":")[1]
    mailed = [await consent_link_for(mailbox, PAT, seen + i) for i in range(RENEWALS_PER_GUARDIAN)]
    [newest] = [m for m in mailed if m.rsplit("token=", 1)[1].startswith(newest_id)]
    for older in [m for m in mailed if m != newest]:
        revoked = await open_link(await new_browser(staff_gateway), older)
        assert revoked.status == 403 and REFUSED in revoked.text
    assert (await open_link(await new_browser(staff_gateway), newest)).status == 303

    # Per source: past the limit, 429 with Retry-After for anyone from here, audited.
    statuses = []
    for _ in range(20):
        statuses.append((await stranger.post("/consent/link/renew", {"token": "x"})).status)
    assert statuses[-1] == 429
    limited = await stranger.post("/consent/link/renew", renew)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    assert await audited(staff_gateway, "consent_link.renewal_limited")


async def test_a_new_link_revokes_older_unused_links_not_used_ones(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    used = await fam.send_link("Pat Parker", PAT)
    pat = await new_browser(staff_gateway)
    assert (await open_link(pat, used)).status == 303
    unused = await fam.send_link("Pat Parker", PAT)
    newest = await fam.send_link("Pat Parker", PAT)
    [revocation] = await audited(staff_gateway, "consent_link.revoked")
    assert revocation.actor == f"staff:{fam.world.ids['Ann Admin']}"
    assert revocation.person_id == fam.world.ids["Pat Parker"]
    assert len(revocation.data["links"]) == 1  # the unused one; the used one stays
    refused = await open_link(await new_browser(staff_gateway), unused)
    assert refused.status == 403 and REFUSED in refused.text
    reasons = [e.data["reason"] for e in await audited(staff_gateway, "consent_link.refused")]
    assert reasons == ["revoked"]
    assert (await pat.get("/consent")).status == 200  # the browser bound to the used link
    assert (await open_link(await new_browser(staff_gateway), newest)).status == 303


async def test_the_api_sends_a_link_with_the_pages_rules_and_audit(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    gid = fam.world.ids["Pat Parker"]
    first = await fam.send_link("Pat Parker", PAT)
    seen = _to(mailbox, PAT)
    sent = await fam.world.admin.post(f"/v1/guardians/{gid}/consent-links", {})
    assert sent.status == 202, sent.body
    assert sent.body["guardian_id"] == gid and sent.body["revoked"] == 1
    assert "token" not in str(sent.body) and PAT not in str(sent.body)
    link = await consent_link_for(mailbox, PAT, seen)
    assert (await open_link(await new_browser(staff_gateway), link)).status == 303
    assert (await open_link(await new_browser(staff_gateway), first)).status == 403
    by_api = [
        e for e in await audited(staff_gateway, "consent_link.sent") if e.actor.startswith("api:")
    ]
    assert len(by_api) == 1 and by_api[0].person_id == gid

    await fam.guardian("Quinn Quill", "phone 0123 456789")
    cases = [
        ("f" * 32, 404, "not_found"),
        (fam.world.ids["Kim Parker"], 404, "not_found"),  # a child is not a guardian
        (fam.world.ids["Quinn Quill"], 400, "body_invalid"),
    ]
    for guardian, status, code in cases:
        answer = await fam.world.admin.post(f"/v1/guardians/{guardian}/consent-links", {})
        assert answer.status == status and answer.body["error"]["code"] == code, answer.body
    unsigned = await (await staff_gateway.client()).call(
        "POST", f"/v1/guardians/{gid}/consent-links", {}
    )
    assert unsigned.status == 401


async def test_a_policy_without_e_signatures_shows_withdrawal_only(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    policy = tmp_path / "paper.toml"
    policy.write_text(
        (ROOT / "default.toml")
        .read_text()
        .replace(
            'accepted_evidence = ["signed_form", "e_signature"]',
            'accepted_evidence = ["signed_form"]',
        )
    )
    async with serve_gateway(sqlite_url, tmp_path, mailbox.port, policy_path=policy) as gateway:
        fam = await family(gateway, mailbox)
        await fam.world.child("Max Parker", "2016-02-02", "Pat Parker", consent=True)
        pat = await new_browser(gateway)
        assert (await open_link(pat, await fam.send_link("Pat Parker", PAT))).status == 303
        page = await pat.get("/consent")
        assert page.status == 200 and 'id="not-online"' in page.text
        assert forms(page, "/consent/give") == [] and forms(page, "/consent/own/give") == []
        max_id = fam.world.ids["Max Parker"]
        withdraw = form_for(page, "/consent/withdraw", child=max_id, purpose="participation")
        assert (await pat.post("/consent/withdraw", withdraw)).status == 303
        state = (await fam.world.admin.get(f"/v1/children/{max_id}/consent")).body
        assert state["purposes"]["participation"]["valid"] is False


async def test_a_withdrawal_after_expiry_meeting_a_stuck_database_is_retried(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    async with serve_gateway(
        sqlite_url, tmp_path, mailbox.port, sql_timeout_seconds=3.0
    ) as gateway:
        fam = await family(gateway, mailbox)
        kim = fam.world.ids["Kim Parker"]
        pat = await new_browser(gateway)
        assert (await open_link(pat, await fam.send_link("Pat Parker", PAT))).status == 303
        page = await pat.get("/consent")
        give = form_for(page, "/consent/give", child=kim, purpose=LESSONS, signer="guardian")
        assert (await pat.post("/consent/give", {**give, "typed_name": "Pat Parker"})).status == 303
        gateway.clock.advance(timedelta(days=10))
        withdraw = form_for(await pat.get("/consent"), "/consent/withdraw", child=kim)
        blocker = sqlite3.connect(sqlite_url.split(":///", 1)[1], timeout=0.1)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            stuck = await pat.post("/consent/withdraw", withdraw)
            assert stuck.status == 503, stuck.text
            assert int(stuck.headers["Retry-After"]) >= 1
            retry = form_for(stuck, "/consent/withdraw")
            assert retry == withdraw
        finally:
            blocker.rollback()
            blocker.close()
        assert (await pat.post("/consent/withdraw", retry)).status == 303
        state = (await fam.world.admin.get(f"/v1/children/{kim}/consent")).body
        assert state["purposes"][LESSONS]["valid"] is False
