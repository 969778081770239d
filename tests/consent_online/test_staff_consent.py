"""Staff give their own recording consent on the staff pages, with the same e-signature; only
an admin sends guardians their links; and a guardian's withdrawal meeting a database that does
not answer in time is answered 503 with Retry-After and a page that sends it again."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.consent_online.conftest import (
    LESSONS,
    PAT,
    SAFEGUARDING,
    family,
    form_for,
    forms,
    open_link,
    sha256,
    shown_texts,
    signatures,
)
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Mailbox, email_of, new_browser, serve_gateway, staff_world


def _purpose(body: Any, purpose: str) -> dict[str, Any]:
    found = body["purposes"][purpose]
    assert isinstance(found, dict)
    return found


async def test_staff_sign_their_own_recording_consent_and_withdraw_it(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    world = await staff_world(staff_gateway)
    tutor = world.ids["Tina Tutor"]
    signed_out = await new_browser(staff_gateway)
    assert (await signed_out.get("/staff/consent")).location == "/staff/sign-in"

    browser = await new_browser(staff_gateway)
    await browser.sign_in_with_link(mailbox, email_of("Tina Tutor"))
    home = await browser.get("/staff")
    assert 'href="/staff/consent"' in home.text and "/staff/consent-links" not in home.text
    page = await browser.get("/staff/consent")
    assert page.status == 200, page.text
    # Recording purposes only: staff take part in sessions as part of their work.
    assert {f["purpose"] for f in forms(page, "/staff/consent/give")} == {LESSONS, SAFEGUARDING}
    give = form_for(page, "/staff/consent/give", purpose=LESSONS)
    assert (
        await browser.post("/staff/consent/give", {**give, "typed_name": "Tina Tutor"})
    ).status == 303

    state = (await world.admin.get(f"/v1/staff/{tutor}/consent")).body
    assert _purpose(state, LESSONS)["valid"] is True
    assert _purpose(state, LESSONS)["reasons"] == ["own_consent"]
    assert _purpose(state, SAFEGUARDING)["valid"] is False  # the policy requires staff consent
    [signature] = await signatures(staff_gateway)
    assert signature["signer_kind"] == "staff" and signature["signer_id"] == tutor
    assert signature["typed_name"] == "Tina Tutor" and signature["link_id"] is None
    assert signature["shown_sha256"] == sha256(signature["shown_text"]) == give["shown"]
    assert shown_texts(page)[give["shown"]] == signature["shown_text"]
    assert "I, Tina, agree to be recorded for lesson review" in signature["shown_text"]

    page = await browser.get("/staff/consent")
    assert "Signed by <strong>Tina Tutor</strong>" in page.text
    withdraw = form_for(page, "/staff/consent/withdraw", purpose=LESSONS)
    assert (await browser.post("/staff/consent/withdraw", withdraw)).status == 303
    lessons = _purpose((await world.admin.get(f"/v1/staff/{tutor}/consent")).body, LESSONS)
    assert lessons["valid"] is False and "withdrawn" in lessons["reasons"]
    # Someone else's form (no CSRF token of this session) changes nothing.
    stale = await browser.post("/staff/consent/give", {**give, "csrf": "x", "typed_name": "T"})
    assert stale.status == 403 and 'data-code="csrf_refused"' in stale.text


async def test_only_an_admin_sends_links_and_only_to_an_e_mail_address(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    tutor = await new_browser(staff_gateway)
    await tutor.sign_in_with_link(mailbox, email_of("Tina Tutor"))
    assert (await tutor.get("/staff/consent-links")).status == 403
    csrf = (await tutor.get("/staff")).csrf
    refused = await tutor.post(
        "/staff/consent-links", {"csrf": csrf, "guardian": fam.world.ids["Pat Parker"]}
    )
    assert refused.status == 403 and 'data-code="forbidden"' in refused.text

    page = await fam.admin.get("/staff/consent-links")
    assert "Gail Green (no e-mail address)" in page.text  # contact "call 0100" on the registry
    no_address = await fam.admin.post(
        "/staff/consent-links", {"csrf": page.csrf, "guardian": fam.world.ids["Gail Green"]}
    )
    assert no_address.status == 400 and 'data-code="body_invalid"' in no_address.text
    nobody = await fam.admin.post("/staff/consent-links", {"csrf": page.csrf, "guardian": "f" * 32})
    assert nobody.status == 404
    assert not [m for m in mailbox.messages if m["To"] == PAT]

    # Without an e-mail channel no link can go out: the page says so, and sending is refused.
    await fam.world.admin.call("PUT", "/v1/notification-channels", {})
    page = await fam.admin.get("/staff/consent-links")
    assert 'id="no-email"' in page.text
    unsendable = await fam.admin.post(
        "/staff/consent-links", {"csrf": page.csrf, "guardian": fam.world.ids["Pat Parker"]}
    )
    assert unsendable.status == 409 and 'data-code="conflict"' in unsendable.text


async def test_a_withdrawal_meeting_a_stuck_database_is_retried_never_lost(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    async with serve_gateway(
        sqlite_url, tmp_path, mailbox.port, sql_timeout_seconds=1.0
    ) as gateway:
        fam = await family(gateway, mailbox)
        kim = fam.world.ids["Kim Parker"]
        pat = await new_browser(gateway)
        assert (await open_link(pat, await fam.send_link("Pat Parker", PAT))).status == 303
        page = await pat.get("/consent")
        give = form_for(page, "/consent/give", child=kim, purpose=LESSONS, signer="guardian")
        assert (await pat.post("/consent/give", {**give, "typed_name": "Pat Parker"})).status == 303
        withdraw = form_for(await pat.get("/consent"), "/consent/withdraw", child=kim)

        # Another writer holds the database: the withdrawal cannot be stored in time.
        blocker = sqlite3.connect(sqlite_url.split(":///", 1)[1], timeout=0.1)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            stuck = await pat.post("/consent/withdraw", withdraw)
            assert stuck.status == 503, stuck.text
            assert int(stuck.headers["Retry-After"]) >= 1
            retry = form_for(stuck, "/consent/withdraw")
            assert retry == withdraw  # the same withdrawal, ready to send again
        finally:
            blocker.rollback()
            blocker.close()
        assert (await pat.post("/consent/withdraw", retry)).status == 303
        state = (await fam.world.admin.get(f"/v1/children/{kim}/consent")).body
        lessons = _purpose(state, LESSONS)
        assert lessons["valid"] is False and "withdrawn" in lessons["reasons"]
