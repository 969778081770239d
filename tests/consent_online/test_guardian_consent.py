"""A guardian's consent online over real HTTP: the admin sends the link (outbox, SMTP), the
guardian consents per child and purpose with an e-signature, the child's own assent is asked
from the policy's age, the consent checks count it, and one press withdraws it."""

from __future__ import annotations

from typing import Any

from gateway.adapters.sql.schema import consent_records, outbox
from tests.consent_online.conftest import (
    LESSONS,
    PAT,
    family,
    form_for,
    forms,
    links,
    open_link,
    rows,
    sha256,
    shown_texts,
    signatures,
)
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Mailbox, audited, new_browser


async def test_a_guardian_consents_per_child_and_purpose_and_withdraws_in_one_step(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    ids = fam.world.ids
    link = await fam.send_link("Pat Parker", PAT)

    # The e-mail came through the outbox; the token is in neither the outbox nor the links
    # table (only its SHA-256), and the URL carries no personal data.
    token = link.rsplit("token=", 1)[1]
    [stored] = await links(staff_gateway)
    assert stored["token_hash"] == sha256(token) and stored["guardian_id"] == ids["Pat Parker"]
    assert all(token not in str(row) for row in await rows(staff_gateway, outbox))
    assert "Pat" not in link and "parker" not in link.lower() and PAT not in link
    [sent] = await audited(staff_gateway, "consent_link.sent")
    assert sent.actor == f"staff:{ids['Ann Admin']}" and sent.person_id == ids["Pat Parker"]

    guardian = await new_browser(staff_gateway)
    used = await open_link(guardian, link)
    assert used.status == 303 and used.location == "/consent"
    cookie = next(c for c in used.cookies if c.key == "gw_consent")
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/consent"
    page = await guardian.get("/consent")
    assert page.status == 200, page.text
    # Only Pat's own children; every purpose the policy lists, explained in plain words.
    assert "Kim Parker" in page.text and "Lee Parker" in page.text
    assert "Sam Green" not in page.text and "Ada Hill" not in page.text
    for words in ("What is recorded:", "Who may see it:", "How long it is kept:", "30 days"):
        assert words in page.text
    assert "How to withdraw:" in page.text
    # The child's own assent is asked from the policy's age (12): Kim (14), not Lee (8).
    kim, lee = ids["Kim Parker"], ids["Lee Parker"]
    assert form_for(page, "/consent/give", child=kim, purpose=LESSONS, signer="child")
    assert not [
        f for f in forms(page, "/consent/give") if f["child"] == lee and f["signer"] == "child"
    ]
    assert "Can I change my mind?" in page.text

    # Pat signs for Kim: not valid yet (Kim has not agreed), then Kim signs her own.
    shown_on_page = shown_texts(page)
    give = form_for(page, "/consent/give", child=kim, purpose=LESSONS, signer="guardian")
    done = await guardian.post("/consent/give", {**give, "typed_name": "Pat Parker"})
    assert done.status == 303, done.text
    lessons = _purpose((await fam.world.admin.get(f"/v1/children/{kim}/consent")).body, LESSONS)
    assert lessons["valid"] is False and "no_child_assent" in lessons["reasons"]
    page = await guardian.get("/consent")
    assert "waiting for Kim's own agreement" in page.text
    assent = form_for(page, "/consent/give", child=kim, purpose=LESSONS, signer="child")
    assert (await guardian.post("/consent/give", {**assent, "typed_name": "Kim"})).status == 303

    lessons = _purpose((await fam.world.admin.get(f"/v1/children/{kim}/consent")).body, LESSONS)
    assert lessons["valid"] is True, lessons
    assert set(lessons["reasons"]) == {"guardian_consent", "child_assent"}

    # Each signature: the typed name, the exact words shown and their SHA-256, the policy's
    # version; the consent record's evidence is an e-signature naming it.
    signed = {s["signer_kind"]: s for s in await signatures(staff_gateway)}
    assert signed["guardian"]["typed_name"] == "Pat Parker"
    assert signed["child"]["typed_name"] == "Kim"
    for kind, posted in (("guardian", give), ("child", assent)):
        row = signed[kind]
        assert row["shown_sha256"] == sha256(row["shown_text"]) == posted["shown"]
        assert shown_on_page[posted["shown"]] == row["shown_text"]
        assert row["policy_version"] == "2026-11-21" and len(row["policy_digest"]) == 64
        assert "Policy version: 2026-11-21@" in row["shown_text"]
    assert "Your voice and your face." in signed["child"]["shown_text"]
    records = {r["id"]: r for r in await rows(staff_gateway, consent_records)}
    for row in signed.values():
        record = records[row["consent_record_id"]]
        assert record["evidence_method"] == "e_signature"
        assert record["evidence_reference"] == f"e-signature {row['id']}"
    given = [e for e in await audited(staff_gateway, "consent.given") if e.person_id == kim]
    assert len(given) == 2 and {e.actor for e in given} == {f"guardian:{ids['Pat Parker']}"}

    # Lee (8): the guardian's consent alone is enough.
    page = await guardian.get("/consent")
    give_lee = form_for(
        page, "/consent/give", child=lee, purpose="participation", signer="guardian"
    )
    assert (
        await guardian.post("/consent/give", {**give_lee, "typed_name": "Pat Parker"})
    ).status == 303
    assert _purpose(
        (await fam.world.admin.get(f"/v1/children/{lee}/consent")).body, "participation"
    )["valid"]
    # Asking Lee for her own assent is refused: it is not asked at her age.
    refused = await guardian.post(
        "/consent/give", {**give_lee, "signer": "child", "typed_name": "Lee"}
    )
    assert refused.status == 400 and 'data-code="body_invalid"' in refused.text

    # The page shows what was agreed, and withdraws it in one step.
    page = await guardian.get("/consent")
    assert "Signed by <strong>Pat Parker</strong>" in page.text
    withdraw = form_for(page, "/consent/withdraw", child=kim, purpose=LESSONS)
    assert set(withdraw) == {"csrf", "child", "purpose"}  # nothing to type, nothing to sign
    assert (await guardian.post("/consent/withdraw", withdraw)).status == 303
    lessons = _purpose((await fam.world.admin.get(f"/v1/children/{kim}/consent")).body, LESSONS)
    assert lessons["valid"] is False and "withdrawn" in lessons["reasons"]
    page = await guardian.get("/consent")
    assert form_for(page, "/consent/give", child=kim, purpose=LESSONS, signer="guardian")
    [withdrawn] = await audited(staff_gateway, "consent.withdrawn")
    assert withdrawn.actor == f"guardian:{ids['Pat Parker']}" and withdrawn.person_id == kim


def _purpose(body: object, purpose: str) -> dict[str, Any]:
    assert isinstance(body, dict)
    found = body["purposes"][purpose]
    assert isinstance(found, dict)
    return found


async def test_consent_given_online_is_what_admission_checks(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    """Lee has no participation consent: her join is denied. Pat signs online: she is let in
    (held until two adults are there). Pat withdraws online: denied again at once."""
    fam = await family(staff_gateway, mailbox)
    world, lee = fam.world, fam.world.ids["Lee Parker"]
    assert (await world.enrol("Lee Parker", "child", "child")).status == 201
    await world.invite("Lee Parker")
    device = await staff_gateway.client()
    denied = await world.join("Lee Parker", device)
    assert denied.body["outcome"] == "deny"
    assert "no_participation_consent" in denied.body["reasons"]

    pat = await new_browser(staff_gateway)
    assert (await open_link(pat, await fam.send_link("Pat Parker", PAT))).status == 303
    page = await pat.get("/consent")
    give = form_for(page, "/consent/give", child=lee, purpose="participation", signer="guardian")
    assert (await pat.post("/consent/give", {**give, "typed_name": "Pat Parker"})).status == 303
    let_in = await world.join("Lee Parker", device)
    assert let_in.body["outcome"] == "hold", let_in.body  # waiting for two vetted adults
    assert "no_participation_consent" not in let_in.body["reasons"]

    page = await pat.get("/consent")
    withdraw = form_for(page, "/consent/withdraw", child=lee, purpose="participation")
    assert (await pat.post("/consent/withdraw", withdraw)).status == 303
    again = await world.join("Lee Parker", device)
    assert again.body["outcome"] == "deny"


async def test_a_guardian_signs_and_withdraws_their_own_recording_consent(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    gid = fam.world.ids["Pat Parker"]
    pat = await new_browser(staff_gateway)
    assert (await open_link(pat, await fam.send_link("Pat Parker", PAT))).status == 303
    page = await pat.get("/consent")
    assert {f["purpose"] for f in forms(page, "/consent/own/give")} == {
        LESSONS,
        "recording:safeguarding_review",
    }
    own = form_for(page, "/consent/own/give", purpose=LESSONS)
    assert "I, Pat, agree to be recorded for lesson review" in shown_texts(page)[own["shown"]]
    assert (await pat.post("/consent/own/give", {**own, "typed_name": "Pat Parker"})).status == 303
    state = (await fam.world.admin.get(f"/v1/guardians/{gid}/consent")).body
    assert _purpose(state, LESSONS)["valid"] is True
    assert _purpose(state, LESSONS)["reasons"] == ["own_consent"]
    [row] = [s for s in await signatures(staff_gateway) if s["signer_kind"] == "guardian"]
    assert row["signer_id"] == gid and row["shown_sha256"] == sha256(row["shown_text"])
    assert row["link_id"] == (await links(staff_gateway))[0]["id"]

    withdraw = form_for(await pat.get("/consent"), "/consent/own/withdraw", purpose=LESSONS)
    assert (await pat.post("/consent/own/withdraw", withdraw)).status == 303
    state = (await fam.world.admin.get(f"/v1/guardians/{gid}/consent")).body
    assert _purpose(state, LESSONS)["valid"] is False
