"""A child completes a session on a 320 px screen by keyboard alone (issue 8, "Done when"):
open the link, give the password, go in, see the tutor, report a concern, leave. Every control
is reached with Tab and used with Enter or Space; the mouse is never used, and the page never
scrolls sideways."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.test_join_page import (
    PASSWORD,
    NewContext,
    eventually,
    frames_grow,
    join,
    open_invite,
)
from tests.http.world import build_world
from tests.plugins.gateway_server import Gateway

FOCUSED_NAME = """() => {
    const el = document.activeElement;
    if (!el) return "";
    const label = el.labels && el.labels.length ? el.labels[0].textContent : "";
    return (el.getAttribute("aria-label") || label || el.textContent || "").trim();
}"""
SIDEWAYS = "document.documentElement.scrollWidth > document.documentElement.clientWidth"


async def tab_to(page: Page, name: str, presses: int = 40) -> None:
    """Press Tab until the focused control's accessible name starts with `name`."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if (await page.evaluate(FOCUSED_NAME)).startswith(name):
            return
    raise AssertionError(f"{name!r} cannot be reached with Tab")


async def test_a_child_completes_a_session_by_keyboard_alone_on_a_320px_screen(
    gateway: Gateway, new_context: NewContext
) -> None:
    world = await build_world(gateway)
    await join(world, new_context, "Tina Tutor")
    await join(world, new_context, "Oscar Observer")
    child = await open_invite(world, new_context, "Sam Green")
    page = child.page
    await page.set_viewport_size({"width": 320, "height": 640})

    await expect(page.get_by_role("heading", name="Joining a live session")).to_be_visible()
    await tab_to(page, "Continue")
    await page.keyboard.press("Enter")
    password = page.get_by_label("Session password")
    await expect(password).to_be_visible()
    await tab_to(page, "Session password")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Before you go in")).to_be_visible()
    assert not await page.evaluate(SIDEWAYS)
    await tab_to(page, "Go in")
    await page.keyboard.press("Enter")

    await eventually(child, lambda s: s["connection"] == "connected", "media connected")
    await eventually(child, lambda s: s["outcome"] == "admit", "admitted with two adults")
    await frames_grow(child, by=10)  # the tutor's video really plays
    assert not await page.evaluate(SIDEWAYS)

    await tab_to(page, "Report a concern")
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Report a concern")
    await expect(dialog).to_be_visible()
    await tab_to(page, "What is wrong?")
    await page.keyboard.type("Someone said something unkind")
    await tab_to(page, "Send")
    await page.keyboard.press("Enter")
    confirmation = page.locator("#concern-confirmation")
    await expect(confirmation).to_contain_text("the safeguarding lead is being told")
    assert len((await child.state())["concerns"]) == 1

    await tab_to(page, "Leave")
    await page.keyboard.press("Enter")
    await eventually(child, lambda s: s["connection"] != "connected", "left")
    assert not await page.evaluate(SIDEWAYS)
