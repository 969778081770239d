"""Headless Chromium: a guardian opens the e-mailed link and gives consent through the page,
for a child too young to be asked and for one who signs her own assent, then withdraws with one
press; the page passes axe-core and does not scroll sideways on a phone."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import browser, new_context  # noqa: F401 (fixtures)
from tests.browser.test_axe import AXE, audit
from tests.consent_online.conftest import LESSONS, PAT, family
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Mailbox


def _purpose(page: Any, child: str, heading: str) -> Any:
    """One purpose's block in one child's section of the page."""
    return (
        page.get_by_role("region", name=child)
        .locator("div.purpose")
        .filter(has=page.get_by_role("heading", name=heading, exact=True))
    )


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Browser tests run once, on SQLite (the HTTP tests cover both databases)."""
    return sqlite_url


async def test_a_guardian_gives_and_withdraws_consent_in_chromium(
    staff_gateway: Gateway,
    mailbox: Mailbox,
    new_context: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    fam = await family(staff_gateway, mailbox)
    ids = fam.world.ids
    link = await fam.send_link("Pat Parker", PAT)

    context = await new_context()
    page = await context.new_page()
    await page.goto(link)
    await page.get_by_role("button", name="Continue to the consent page").click()
    await expect(page.get_by_role("heading", name="Consent for Test Club")).to_be_visible()
    if AXE.is_file():
        await audit(page, AXE.read_text(encoding="utf-8"), "guardian consent page")

    # Lee (8): Pat's signature alone.
    lessons = _purpose(page, "Lee Parker", "Recording for lesson review")
    await lessons.get_by_label("Type your full name to sign").fill("Pat Parker")
    await lessons.get_by_role("button", name="I agree and sign").click()
    await expect(lessons.locator("p.status")).to_have_text("Agreed.")
    state = await fam.world.admin.get(f"/v1/children/{ids['Lee Parker']}/consent")
    assert state.body["purposes"][LESSONS]["valid"] is True

    # Kim (14): Pat signs, then Kim types her own name under the words for her.
    def kims() -> Any:
        return _purpose(page, "Kim Parker", "Recording for lesson review")

    await kims().get_by_label("Type your full name to sign").fill("Pat Parker")
    await kims().get_by_role("button", name="I agree and sign").click()
    await expect(kims().locator("p.status")).to_have_text(
        "You have agreed; waiting for Kim's own agreement."
    )
    await expect(kims().get_by_text("Your voice and your face.")).to_be_visible()
    await kims().get_by_label("Kim, if you are happy, type your name here").fill("Kim")
    await kims().get_by_role("button", name="Yes, I agree").click()
    await expect(kims().locator("p.status")).to_have_text("Agreed.")
    state = await fam.world.admin.get(f"/v1/children/{ids['Kim Parker']}/consent")
    assert state.body["purposes"][LESSONS]["valid"] is True
    await expect(kims().get_by_text("Agreed by Kim")).to_be_visible()

    # One press withdraws.
    await kims().get_by_role("button", name="Withdraw: recording for lesson review for Kim").click()
    await expect(kims().locator("p.status")).to_have_text("Not agreed.")
    state = await fam.world.admin.get(f"/v1/children/{ids['Kim Parker']}/consent")
    assert state.body["purposes"][LESSONS]["valid"] is False
    assert "withdrawn" in state.body["purposes"][LESSONS]["reasons"]


async def test_staff_sign_their_own_consent_and_send_links_in_chromium(
    staff_gateway: Gateway,
    mailbox: Mailbox,
    new_context: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    fam = await family(staff_gateway, mailbox)
    context = await new_context()
    session = fam.admin.cookie("gw_staff")
    assert session is not None
    await context.add_cookies([{"name": "gw_staff", "value": session, "url": staff_gateway.base}])
    page = await context.new_page()
    axe = AXE.read_text(encoding="utf-8") if AXE.is_file() else None

    await page.goto(staff_gateway.base + "/staff")
    await page.get_by_role("link", name="Send consent links to guardians").click()
    if axe:
        await audit(page, axe, "consent links")
    await page.get_by_label("Guardian").select_option(label="Pat Parker")
    await page.get_by_role("button", name="Send the consent link").click()
    await expect(page.locator("#sent")).to_contain_text("Pat Parker")

    await page.goto(staff_gateway.base + "/staff/consent")
    if axe:
        await audit(page, axe, "staff consent")
    block = page.locator("div.purpose").filter(
        has=page.get_by_role("heading", name="Recording for safeguarding review")
    )
    await block.get_by_label("Type your full name to sign").fill("Ann Admin")
    await block.get_by_role("button", name="I agree and sign").click()
    await expect(block.locator("p.status")).to_have_text("You have agreed.")
    admin_id = fam.world.ids["Ann Admin"]
    state = await fam.world.admin.get(f"/v1/staff/{admin_id}/consent")
    assert state.body["purposes"]["recording:safeguarding_review"]["valid"] is True
