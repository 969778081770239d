"""The join page works for every child (issue 8, point 4), in headless Chromium: focus rings a
keyboard user can see, "Report a concern" in view on a phone, the right thing on refusal
screens, the start time on the too-early screen, camera and microphone choices before going
in, a reload that is not asked the password again, and host alerts that resolve."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.test_axe import audit, axe_source  # noqa: F401 (a fixture)
from tests.browser.test_join_page import PASSWORD, NewContext, eventually, join, open_invite
from tests.http.world import build_world
from tests.plugins.gateway_server import Gateway

# The colour of what a focused control's ring sits on (the nearest ancestor with a background),
# and the ring's colour, as [r, g, b] (the page uses opaque colours only).
RING_AND_BACKGROUND = """(el) => {
    const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const opaque = (c) => !/rgba\\(.*,\\s*0\\)$/.test(c) && c !== "transparent";
    let node = el.parentElement;
    while (node && !opaque(getComputedStyle(node).backgroundColor)) node = node.parentElement;
    const back = node ? getComputedStyle(node).backgroundColor : "rgb(255, 255, 255)";
    const style = getComputedStyle(el);
    return { ring: rgb(style.outlineColor), width: parseFloat(style.outlineWidth),
             outline: style.outlineStyle, back: rgb(back) };
}"""


def _luminance(rgb: list[float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


async def ring_contrast(page: Page, selector: str) -> float:
    """Focus by keyboard (so :focus-visible applies) and measure the ring against its ground."""
    await page.locator(selector).focus()
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == selector.lstrip("#")
    seen: dict[str, Any] = await page.locator(selector).evaluate(RING_AND_BACKGROUND)
    assert seen["outline"] != "none" and seen["width"] >= 2, (selector, seen)
    return contrast(seen["ring"], seen["back"])


async def in_view(page: Page, selector: str) -> bool:
    box = await page.locator(selector).bounding_box()
    height = await page.evaluate("window.innerHeight")
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


async def test_focus_rings_a_sticky_concern_button_and_no_button_where_sending_fails(
    gateway: Gateway, new_context: NewContext
) -> None:
    world = await build_world(gateway)
    # A broken link: no bound device, so no "Report a concern" that would fail; who to tell.
    context = await new_context()
    broken = await context.new_page()
    await broken.set_viewport_size({"width": 320, "height": 640})
    await broken.goto(gateway.base + "/join")
    await expect(broken.get_by_role("heading", name="This link is not complete")).to_be_visible()
    await expect(broken.get_by_role("button", name="Report a concern")).to_have_count(0)
    await expect(broken.locator("#concern-contact")).to_contain_text("Worried about something?")

    child = await open_invite(world, new_context, "Sam Green")
    page = child.page
    await page.set_viewport_size({"width": 320, "height": 640})
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Session password").fill(PASSWORD)
    for selector in ("#continue", "#password"):
        ratio = await ring_contrast(page, selector)
        assert ratio >= 3.0, (selector, ratio)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Before you go in")).to_be_visible()
    ratio = await ring_contrast(page, "#concern-open")  # on the dark top bar
    assert ratio >= 3.0, ("#concern-open", ratio)
    # Who runs it and when, in the facts; the recording line and the contact fit the screen.
    facts = page.locator(".facts")
    await expect(facts).to_contain_text("Tina T. (tutor)")
    assert (await page.locator("#fact-time").inner_text()).strip() != ""
    for fact in ("#fact-recording", "#fact-contact"):
        box = await page.locator(fact).bounding_box()
        assert box is not None and box["x"] + box["width"] <= 320, fact
    # Scrolled to the bottom, "Report a concern" is still in view (sticky) and works.
    await page.get_by_role("button", name="Go in").scroll_into_view_if_needed()
    assert await in_view(page, "#concern-open")
    await page.get_by_role("button", name="Report a concern").click()
    await expect(page.get_by_role("dialog", name="Report a concern")).to_be_visible()
    await page.get_by_role("button", name="Cancel").click()


async def test_camera_off_and_devices_before_going_in_and_a_reload_keeps_the_password(
    gateway: Gateway, new_context: NewContext
) -> None:
    world = await build_world(gateway)
    tutor = await join(world, new_context, "Tina Tutor")
    observer = await join(world, new_context, "Oscar Observer")
    child = await open_invite(world, new_context, "Sam Green")
    page = child.page
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Session password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#device-status")).to_have_text(
        "Your camera and microphone are working."
    )
    # The fake microphone makes a sound: the level meter moves.
    await eventually(child, lambda s: (s["mic_level"] or 0) > 0.01, "microphone level")
    await expect(page.get_by_label("Camera", exact=True)).to_be_visible()
    await expect(page.get_by_label("Microphone", exact=True)).to_be_visible()
    await page.get_by_label("Camera on").uncheck()
    await page.get_by_role("button", name="Go in").click()
    admitted = await eventually(child, lambda s: s["outcome"] == "admit", "admitted")
    assert admitted["cam_on"] is False and admitted["mic_on"] is True
    await expect(page.locator("#self-visibility")).to_have_text(
        "Others can hear you", timeout=15_000
    )
    await expect(page.get_by_role("button", name="Turn camera on")).to_be_visible()
    # On a phone the camera and microphone buttons are in view, above the videos.
    await page.set_viewport_size({"width": 320, "height": 640})
    await page.evaluate("window.scrollTo(0, 0)")
    assert await in_view(page, "#toggle-mic") and await in_view(page, "#toggle-cam")
    await page.set_viewport_size({"width": 1280, "height": 860})

    # The host's alerts: the observer leaves (children held), comes back by reloading on the
    # same device (no password asked), and the warning is marked resolved.
    panel = tutor.page.get_by_role("region", name="Host controls")
    await observer.page.get_by_role("button", name="Leave").click()
    await eventually(child, lambda s: s["outcome"] == "hold", "held")
    warning = panel.locator("#alerts .alert-warning")
    await expect(warning.first).to_contain_text("Fewer adults than needed", timeout=15_000)
    await observer.page.get_by_role("button", name="Join again").click()
    await observer.page.get_by_role("button", name="Continue").click()
    await expect(observer.page.get_by_role("heading", name="Before you go in")).to_be_visible()
    await expect(observer.page.get_by_label("Session password")).to_be_hidden()
    await observer.page.get_by_role("button", name="Go in").click()
    await eventually(child, lambda s: s["outcome"] == "admit", "admitted again")
    await expect(panel.locator("#alerts .alert-resolved").first).to_contain_text(
        "(resolved)", timeout=15_000
    )
    await expect(panel.locator("#alerts [data-kind=supervision]").last).to_contain_text(
        "Enough adults are present"
    )

    # A concern stands out from the other alerts, and the log only ever grew.
    count = await panel.locator("#alerts p").count()
    await page.get_by_role("button", name="Report a concern").click()
    await page.get_by_role("button", name="Send to a safeguarding adult").click()
    concern = panel.locator("#alerts .alert-concern")
    await expect(concern).to_contain_text("Concern", timeout=15_000)
    assert await panel.locator("#alerts p").count() == count + 1
    assert await panel.locator("#alerts").get_attribute("aria-live") == "polite"


async def test_the_too_early_screen_gives_the_start_time(
    gateway: Gateway,
    new_context: NewContext,
    axe_source: str,  # noqa: F811 (the fixture imported above)
) -> None:
    world = await build_world(gateway)
    start = gateway.clock.now() + timedelta(hours=3)
    answer = await world.admin.post(
        "/v1/sessions",
        {
            "kind": "group",
            "title": "Art club",
            "host_staff_id": world.ids["Tina Tutor"],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "password": PASSWORD,
        },
    )
    assert answer.status == 201, answer.body
    world.session = answer.body
    assert (await world.enrol("Sam Green", "child", "child")).status == 201
    await world.invite("Sam Green")
    child = await open_invite(world, new_context, "Sam Green")
    page = child.page
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Session password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    heading = page.get_by_role("heading", name="You can't join this session right now")
    await expect(heading).to_be_visible()
    reasons = await page.locator("#end-reasons").inner_text()
    assert "It starts" in reasons, reasons
    local = await page.evaluate(
        "(iso) => new Date(iso).toLocaleTimeString(undefined, "
        "{hour: 'numeric', minute: '2-digit'})",
        start.isoformat(),
    )
    assert local in reasons, (local, reasons)
    # A refusal: no "Report a concern" that cannot be sent; who to tell instead.
    await expect(page.get_by_role("button", name="Report a concern")).to_have_count(0)
    await expect(page.locator("#concern-contact")).to_contain_text("our safeguarding lead")
    await audit(page, axe_source, "too early")


async def test_the_recording_notice_is_in_plain_words(
    gateway: Gateway, new_context: NewContext
) -> None:
    world = await build_world(gateway)
    start = gateway.clock.now() - timedelta(minutes=5)
    answer = await world.admin.post(
        "/v1/sessions",
        {
            "kind": "group",
            "title": "Recorded club",
            "host_staff_id": world.ids["Tina Tutor"],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "password": PASSWORD,
            "recording_purpose": "lesson_review",
        },
    )
    assert answer.status == 201, answer.body
    world.session = answer.body
    roster = await world.admin.get(f"/v1/sessions/{world.session['id']}/participants")
    world.participants["Tina Tutor"] = roster.body["items"][0]["id"]
    await world.invite("Tina Tutor")
    tutor = await open_invite(world, new_context, "Tina Tutor")
    page = tutor.page
    await page.set_viewport_size({"width": 320, "height": 640})
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Session password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Before you go in")).to_be_visible()
    words = await page.locator("#fact-recording").inner_text()
    # A session with a recording purpose: it may be recorded, only with everyone's yes, why,
    # and what a child can do about it (domain/recording_status.py, R8).
    assert words.startswith("This session may be recorded, but only if everyone has said yes."), (
        words
    )
    assert "Letting the tutor and the child's family look back at a lesson" in words
    box = await page.locator("#fact-recording").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 320
