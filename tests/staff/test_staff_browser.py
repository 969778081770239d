"""Headless Chromium: a DSL signs in with a password and closes an incident on the pages, on a
phone-sized screen too (no horizontal scroll at 320 px)."""

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


async def test_a_dsl_signs_in_with_a_password_and_closes_an_incident(
    staff_gateway: Gateway,
    mailbox: Mailbox,
    new_context: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    case = await build_case(staff_gateway)
    incident = await case.report()
    setter = await new_browser(staff_gateway)
    await setter.sign_in_with_link(mailbox, email_of("Dee Lead"))
    form = await setter.get("/staff/password")
    done = await setter.post(
        "/staff/password", {"csrf": form.csrf, "password": PASSWORD, "confirmation": PASSWORD}
    )
    assert done.status == 200

    context = await new_context()
    page = await context.new_page()
    await page.set_viewport_size({"width": 320, "height": 640})
    await page.goto(staff_gateway.base + "/staff/sign-in")
    await _no_horizontal_scroll(page)
    section = page.get_by_role("region", name="Sign in with your password")
    await section.get_by_label("E-mail address").fill(email_of("Dee Lead"))
    await section.get_by_label("Password").fill(PASSWORD)
    await section.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Welcome, Dee Lead").wait_for()
    await _no_horizontal_scroll(page)
    await page.get_by_role("link", name="Incidents").click()
    await page.get_by_role("link", name="Concern").click()
    await page.get_by_label("Outcome").select_option("referred_children_services")
    await page.get_by_label("Reason").fill("Guardian and school informed; social care involved.")
    await _no_horizontal_scroll(page)
    await page.get_by_role("button", name="Close incident").click()
    status = page.locator("#incident-status")
    await status.wait_for()
    assert (await status.inner_text()) == "closed"
    assert "Referred to children's social care" in await page.content()
    api = await case.world.admin.get(f"/v1/incidents/{incident.id}")
    assert api.body["status"] == "closed"
    assert api.body["closed_by"] == case.world.ids["Dee Lead"]
    # Keyboard users see where they are: the focus ring is drawn.
    await page.keyboard.press("Tab")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
