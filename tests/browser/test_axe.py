"""axe-core on every page a participant or staff member can reach, in headless Chromium, with
zero violations; and no horizontal scroll at 320, 390 and 1280 px on each (WCAG 1.4.10).

axe-core comes from npm, installed by the project's setup (scripts/_bootstrap.sh) into
.cache/axe (not committed). Missing, the test skips locally and fails in CI (CI=true).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.test_join_page import PASSWORD, NewContext, eventually, join, open_invite
from tests.http.world import build_world
from tests.incidents.test_incidents_http import build_case
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Mailbox, email_of, mailbox, new_browser, staff_gateway

__all__ = ["mailbox", "staff_gateway"]

AXE_DIR = Path(
    os.environ.get("GATEWAY_AXE_DIR") or Path(__file__).resolve().parents[2] / ".cache/axe"
)
AXE = AXE_DIR / "node_modules/axe-core/axe.min.js"
WIDTHS = (320, 390, 1280)
STAFF_PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"axe-core is not installed at {AXE}: scripts/_bootstrap.sh installs it")
        pytest.skip("axe-core is not installed (run scripts/test or scripts/check once)")
    return AXE.read_text(encoding="utf-8")


async def audit(page: Page, axe: str, what: str) -> None:
    """Zero axe violations on what is on screen now, and no horizontal scroll at each width."""
    # evaluate() runs outside the page's Content-Security-Policy, which refuses inline scripts.
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(axe)
    violations: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const result = await window.axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" ")),
            }));
        }"""
    )
    assert violations == [], f"{what}: {violations}"
    size = page.viewport_size or {"width": 1280, "height": 860}
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 700})
        wide = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert wide <= 0, f"{what}: {wide}px of horizontal scroll at {width}px"
    await page.set_viewport_size(size)


async def test_every_join_page_screen_passes_axe(
    gateway: Gateway, new_context: NewContext, axe_source: str
) -> None:
    world = await build_world(gateway)

    # A link without its token: the refusal screen.
    context = await new_context()
    broken = await context.new_page()
    await broken.goto(gateway.base + "/join")
    await expect(broken.get_by_role("heading", name="This link is not complete")).to_be_visible()
    await audit(broken, axe_source, "link not complete")

    # The start screen, then the password, then "Before you go in".
    child = await open_invite(world, new_context, "Sam Green")
    page = child.page
    await expect(page.get_by_role("heading", name="Joining a live session")).to_be_visible()
    await audit(page, axe_source, "start")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_label("Session password")).to_be_visible()
    await audit(page, axe_source, "password")
    await page.get_by_label("Session password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Before you go in")).to_be_visible()
    await audit(page, axe_source, "before you go in")
    await page.get_by_role("button", name="Go in").click()
    await eventually(child, lambda s: s["outcome"] == "hold", "held")
    await expect(page.get_by_role("heading", name="Please wait a moment")).to_be_visible()
    await audit(page, axe_source, "waiting (held)")

    # The host's panel, with the roster and an alert.
    tutor = await join(world, new_context, "Tina Tutor")
    await eventually(tutor, lambda s: len(s["roster"]) >= 2, "roster")
    await audit(tutor.page, axe_source, "host panel")

    # The concern dialog, open over the waiting screen.
    await page.get_by_role("button", name="Report a concern").click()
    await expect(page.get_by_role("dialog", name="Report a concern")).to_be_visible()
    await audit(page, axe_source, "concern dialog")
    await page.get_by_role("button", name="Cancel").click()

    # The end screen.
    await page.get_by_role("button", name="Leave").click()
    await expect(page.get_by_role("heading", name="You have left the session")).to_be_visible()
    await audit(page, axe_source, "left")


async def test_every_staff_page_passes_axe(
    staff_gateway: Gateway, mailbox: Mailbox, new_context: NewContext, axe_source: str
) -> None:
    case = await build_case(staff_gateway)
    assert (await case.world.join("Tina Tutor")).status == 200
    assert (await case.world.join("Sam Green")).body["outcome"] == "hold"
    incident = await case.report("Sam Green")
    setter = await new_browser(staff_gateway)
    await setter.sign_in_with_link(mailbox, email_of("Dee Lead"))
    form = await setter.get("/staff/password")
    done = await setter.post(
        "/staff/password",
        {"csrf": form.csrf, "password": STAFF_PASSWORD, "confirmation": STAFF_PASSWORD},
    )
    assert done.status == 200

    context = await new_context()
    page = await context.new_page()
    await page.goto(staff_gateway.base + "/staff/sign-in")
    await audit(page, axe_source, "staff sign-in")
    section = page.get_by_role("region", name="Sign in with your password")
    await section.get_by_label("E-mail address").fill(email_of("Dee Lead"))
    await section.get_by_label("Password").fill(STAFF_PASSWORD)
    await section.get_by_role("button", name="Sign in").click()
    await page.get_by_role("link", name="Safeguarding desk").wait_for()
    await audit(page, axe_source, "staff home")
    pages = (
        "/staff/desk",
        "/staff/incidents",
        f"/staff/incidents/{incident.id}",
        f"/staff/sessions/{incident.session_id}/timeline",
        "/staff/audit",
        f"/staff/incidents/{incident.id}/report",
        "/staff/password",
    )
    for path in pages:
        answer = await page.goto(staff_gateway.base + path)
        assert answer is not None and answer.status == 200, path
        await audit(page, axe_source, path)
