"""Headless Chromium at 320 px: a DSL signs in, opens the desk, sees a concern arrive without
reloading, opens the incident and its session's timeline, closes it, checks the audit log and
opens the report."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import browser, new_context  # noqa: F401 (fixtures)
from tests.incidents.test_incidents_http import build_case
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Mailbox, email_of, new_browser

PASSWORD = "correct horse battery staple"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Browser tests run once, on SQLite (the HTTP tests cover both databases)."""
    return sqlite_url


async def _no_horizontal_scroll(page: Any) -> None:
    wide = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not wide, page.url


async def test_a_dsl_sees_a_concern_arrive_on_the_desk_and_closes_it(
    staff_gateway: Gateway,
    mailbox: Mailbox,
    new_context: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    case = await build_case(staff_gateway)
    assert (await case.world.join("Tina Tutor")).status == 200
    assert (await case.world.join("Sam Green")).body["outcome"] == "hold"
    setter = await new_browser(staff_gateway)
    await setter.sign_in_with_link(mailbox, email_of("Dee Lead"))
    form = await setter.get("/staff/password")
    done = await setter.post(
        "/staff/password", {"csrf": form.csrf, "password": PASSWORD, "confirmation": PASSWORD}
    )
    assert done.status == 200

    context = await new_context()
    page = await context.new_page()
    refused_by_csp: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused_by_csp.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    await page.set_viewport_size({"width": 320, "height": 640})
    await page.goto(staff_gateway.base + "/staff/sign-in")
    section = page.get_by_role("region", name="Sign in with your password")
    await section.get_by_label("E-mail address").fill(email_of("Dee Lead"))
    await section.get_by_label("Password").fill(PASSWORD)
    await section.get_by_role("button", name="Sign in").click()
    await page.get_by_role("link", name="Safeguarding desk").click()
    await page.get_by_role("heading", name="Open concerns and breaches").wait_for()
    assert await page.locator("#open-list li").count() == 0
    await _no_horizontal_scroll(page)

    incident = await case.report("Sam Green")  # the child reports; the DSL does not reload
    arrivals = page.get_by_role("log")
    await arrivals.get_by_text("Concern reported").wait_for(timeout=10_000)
    await page.locator("#open-list").get_by_role("link", name="Concern").click()
    await page.wait_for_url(f"**/staff/incidents/{incident.id}")
    await page.get_by_role("link", name="The session's timeline").click()
    await page.get_by_role("heading", name="Session timeline").wait_for()
    await _no_horizontal_scroll(page)
    sam = case.roster["Sam Green"]["display_name"]
    table = page.get_by_role("table", name="Events in this session, in order")
    await table.get_by_role("cell", name="concern reported").wait_for()
    assert await table.get_by_role("cell", name=f"{sam} (Child)").count() >= 2
    assert await page.locator("svg.timeline [data-kind=concern]").count() == 1

    await page.go_back()
    await page.get_by_label("Outcome").select_option("no_further_action")
    await page.get_by_label("Reason").fill("Spoke with Sam and the guardian; resolved.")
    await page.get_by_role("button", name="Close incident").click()
    status = page.locator("#incident-status")
    await status.wait_for()
    assert (await status.inner_text()) == "closed"

    # The audit log: the check runs in the background and its result appears by polling.
    await page.goto(staff_gateway.base + "/staff/audit")
    await _no_horizontal_scroll(page)
    await page.get_by_role("button", name="Check the whole log now").click()
    await page.locator("#verify-status [data-result=intact]").wait_for(timeout=15_000)
    assert await page.locator("#verify-progress").is_hidden()
    report = staff_gateway.base + f"/staff/incidents/{incident.id}/report"
    await page.goto(report)
    await _no_horizontal_scroll(page)
    assert await page.locator("#report-verification[data-result=intact]").count() == 1
    assert refused_by_csp == []
