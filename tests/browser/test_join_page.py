"""The join page in real Chromium against a real gateway and its embedded relay (R4, R8, R17).

Every check reads the page itself: what is on screen, and ``window.sgw`` (the page's state and
the ``framesDecoded`` its peer connection reports), never what the server says it sent.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, ConsoleMessage, Page, Request, expect

from tests.http.world import World, build_world
from tests.plugins.gateway_server import Gateway

PASSWORD = "open-sesame"
SCREENSHOTS = Path("/tmp")
NewContext = Callable[[], Awaitable[BrowserContext]]


@dataclass
class Person:
    name: str
    token: str
    page: Page
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    async def state(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.page.evaluate("window.sgw.state()")
        return result

    async def frames(self) -> int:
        return int(await self.page.evaluate("window.sgw.framesReceived()"))


async def open_invite(world: World, new_context: NewContext, name: str) -> Person:
    context = await new_context()
    page = await context.new_page()
    invite = world.invites[name]
    person = Person(name, invite["token"], page)

    def on_request(request: Request) -> None:
        person.requests.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            person.console.append(message.text)

    page.on("request", on_request)
    page.on("console", on_console)
    await page.goto(invite["link"])
    return person


async def join(world: World, new_context: NewContext, name: str) -> Person:
    """Open the invite, give the password when asked, check the camera, go in."""
    person = await open_invite(world, new_context, name)
    page = person.page
    await expect(page.get_by_role("heading", name="Joining a live session")).to_be_visible()
    await page.get_by_role("button", name="Continue").click()
    password = page.get_by_label("Session password")
    await expect(password).to_be_visible()
    await password.fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Before you go in")).to_be_visible()
    await expect(page.locator("#device-status")).to_have_text(
        "Your camera and microphone are working."
    )
    await page.get_by_role("button", name="Go in").click()
    await eventually(person, lambda s: s["connection"] == "connected", "media connected")
    return person


async def eventually(
    person: Person, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    state = await person.state()
    while not check(state):
        if time.monotonic() > deadline:
            raise AssertionError(f"{person.name}: not {what} after {timeout}s; state: {state}")
        await asyncio.sleep(0.1)
        state = await person.state()
    return state


async def frames_grow(person: Person, by: int, timeout: float = 20.0) -> int:
    start = await person.frames()
    deadline = time.monotonic() + timeout
    while (now := await person.frames()) < start + by:
        if time.monotonic() > deadline:
            raise AssertionError(f"{person.name}: {now - start} video frames in {timeout}s")
        await asyncio.sleep(0.2)
    return now


async def frames_stopped(person: Person, timeout: float = 10.0) -> None:
    """No new decoded frames over one second, within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        before = await person.frames()
        await asyncio.sleep(1.0)
        if await person.frames() == before:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{person.name}: video still arriving after {timeout}s")


async def test_child_waits_for_two_adults_is_held_when_one_leaves_and_can_report(
    gateway: Gateway, new_context: NewContext
) -> None:
    world = await build_world(gateway)
    tutor = await join(world, new_context, "Tina Tutor")
    child = await join(world, new_context, "Sam Green")

    # Held: the waiting screen, nothing sent, nothing shown, no remote video at all.
    page = child.page
    waiting = page.get_by_role("region", name="Please wait a moment")
    await expect(waiting).to_be_visible()
    await expect(waiting).to_contain_text(
        "We are waiting for a second adult to join. You can't see or hear anyone yet, and "
        "nobody can see or hear you."
    )
    await expect(page.get_by_role("button", name="Report a concern")).to_be_visible()
    # Focus is on the waiting message and it is announced; the password is no longer talked of.
    assert await page.evaluate("document.activeElement.id") == "waiting"
    await expect(page.locator("#announcer")).to_contain_text("Please wait a moment")
    statuses = " ".join(await page.get_by_role("status").all_text_contents())
    assert "password" not in statuses
    await expect(page.locator("#self-visibility")).to_have_text("Nobody can see or hear you")
    held = await child.state()
    assert held["outcome"] == "hold"
    assert held["sending_tracks"] == [] and held["visible_tiles"] == []
    await asyncio.sleep(1.5)
    assert await child.frames() == 0
    await page.screenshot(path=str(SCREENSHOTS / "sgw-waiting.png"), full_page=True)

    # The observer arrives: the child is released and tutor's video reaches the child's page.
    observer = await join(world, new_context, "Oscar Observer")
    admitted = await eventually(child, lambda s: s["outcome"] == "admit", "admitted")
    assert admitted["grants"]["can_publish"] and admitted["grants"]["can_subscribe"]
    await expect(waiting).to_be_hidden()
    await eventually(child, lambda s: len(s["visible_tiles"]) == 2, "showing two adults")
    await frames_grow(child, by=30)
    # The child is seen too: the tutor decodes video from two others (observer and child).
    await frames_grow(tutor, by=30)
    shown = (await child.state())["visible_tiles"]
    assert sorted(shown) == ["Oscar O.", "Tina T."], shown  # masked names only (R3)
    assert await page.locator(".tile-name").all_text_contents() != []
    # No captions exist yet, so the page does not promise any.
    await expect(page.get_by_role("region", name="Captions")).to_have_count(0)
    assert "captions" not in (await page.content()).lower()
    await page.screenshot(path=str(SCREENSHOTS / "sgw-session.png"), full_page=True)

    # The observer leaves: the child is held at once.
    await observer.page.get_by_role("button", name="Leave").click()
    await expect(
        observer.page.get_by_role("heading", name="You have left the session")
    ).to_be_visible()
    assert (await observer.state())["connection"] is None
    # Leaving on purpose is not a dropped connection: the child is held at once (no grace).
    held_again = await eventually(child, lambda s: s["outcome"] == "hold", "held", timeout=5)
    assert held_again["visible_tiles"] == [] and held_again["sending_tracks"] == []
    await expect(waiting).to_be_visible()
    await frames_stopped(child)

    # The child reports a concern from the waiting screen; the page confirms it.
    await page.get_by_role("button", name="Report a concern").click()
    dialog = page.get_by_role("dialog", name="Report a concern")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("What is wrong? (optional)").fill("The video stopped and I'm worried")
    await dialog.get_by_role("button", name="Send to a safeguarding adult").click()
    confirmation = page.locator("#concern-confirmation")
    await expect(confirmation).to_be_visible()
    await expect(confirmation).to_contain_text("the safeguarding lead is being told")
    await page.screenshot(path=str(SCREENSHOTS / "sgw-concern.png"), full_page=True)
    concerns = (await child.state())["concerns"]
    assert len(concerns) == 1 and concerns[0]["incident_id"]

    incidents = await world.admin.get(f"/v1/incidents?session_id={world.session['id']}")
    assert incidents.status == 200, incidents.body
    assert concerns[0]["incident_id"] in [item["id"] for item in incidents.body["items"]]

    # The token never travelled in a URL, and the pages broke no security policy.
    for person in (tutor, child, observer):
        assert not any(person.token in url for url in person.requests), person.name
        assert not [m for m in person.console if "Content Security Policy" in m], person.console
        assert "#" not in person.page.url


async def test_wrong_password_is_explained_and_the_token_leaves_the_address_bar(
    gateway: Gateway, new_context: NewContext
) -> None:
    world = await build_world(gateway)
    person = await open_invite(world, new_context, "Sam Green")
    page = person.page
    assert page.url.endswith("/join")  # the fragment is gone at once
    await page.get_by_role("button", name="Continue").click()
    password = page.get_by_label("Session password")
    await password.fill("not-it")
    await password.press("Enter")  # the keyboard works as well as the mouse
    await expect(page.get_by_role("alert").first).to_have_text(
        "That password is not right. Please check it and try again."
    )
    await password.fill(PASSWORD)
    await password.press("Enter")
    await expect(page.get_by_role("heading", name="Before you go in")).to_be_visible()
    facts = page.locator(".facts")
    await expect(facts).to_contain_text("Maths club")
    await expect(facts).to_contain_text("Sam G.")
    await expect(facts).to_contain_text("our safeguarding lead, Alex")
    await expect(page.locator("#check-hold-note")).to_be_visible()  # no adults yet
    await expect(page.locator("#device-status")).to_have_text(
        "Your camera and microphone are working."
    )
    await page.screenshot(path=str(SCREENSHOTS / "sgw-check.png"), full_page=True)
    assert not any(person.token in url for url in person.requests)


async def test_a_link_without_its_token_says_so(gateway: Gateway, new_context: NewContext) -> None:
    context = await new_context()
    page = await context.new_page()
    await page.goto(gateway.base + "/join")
    await expect(page.get_by_role("heading", name="This link is not complete")).to_be_visible()


async def test_host_sees_roster_supervision_and_can_remove_and_end(
    gateway: Gateway, new_context: NewContext
) -> None:
    world = await build_world(gateway)
    host = await join(world, new_context, "Tina Tutor")
    panel = host.page.get_by_role("region", name="Host controls")
    await expect(panel).to_be_visible()
    observer = await join(world, new_context, "Oscar Observer")
    child = await join(world, new_context, "Sam Green")
    await eventually(child, lambda s: s["outcome"] == "admit", "admitted")
    await expect(panel.locator("#supervision")).to_contain_text("2 of 2 adults present")
    await expect(panel.get_by_role("row", name="Sam G.")).to_be_visible()
    await host.page.screenshot(path=str(SCREENSHOTS / "sgw-host.png"), full_page=True)

    # Tiles say who is who: the child can tell the tutor from the observer.
    await eventually(child, lambda s: len(s["visible_tiles"]) == 2, "showing two adults")
    shown = await child.state()
    assert sorted(zip(shown["visible_tiles"], shown["visible_roles"], strict=True)) == [
        ("Oscar O.", "Observer"),
        ("Tina T.", "Tutor"),
    ]
    # Nobody has left: the host is not told an adult has.
    assert "has left" not in await panel.inner_text()

    # A double-click on "Remove" only opens the question; "No" is where the focus is.
    remove = panel.get_by_role("button", name="Remove Sam G.")
    await remove.dblclick()
    question = host.page.get_by_role("dialog", name="Remove Sam G.?")
    await expect(question).to_be_visible()
    await expect(question).to_contain_text("cannot come back unless you let them back in")
    assert await host.page.evaluate("document.activeElement.id") != "remove-yes"
    await question.get_by_role("button", name="No, keep them").click()
    await expect(question).to_be_hidden()
    assert (await child.state())["finished"] is None
    await remove.click()
    await question.get_by_role("button", name="Remove", exact=True).click()
    await expect(panel.locator("#host-note")).to_contain_text("has been removed")
    await expect(
        child.page.get_by_role("heading", name="You have been removed from the session")
    ).to_be_visible()
    assert (await child.state())["connection"] is None

    # The removed child's row offers "Let back in", behind a confirmation; the new link is
    # shown to copy, and it brings the child back through the normal join.
    await panel.get_by_role("button", name="Let Sam G. back in").click()
    await panel.get_by_role("button", name="No").click()
    await panel.get_by_role("button", name="Let Sam G. back in").click()
    await panel.get_by_role("button", name="Yes, let them back in").click()
    link = panel.get_by_role("textbox", name="New link for Sam G.")
    await expect(link).to_have_value(re.compile(r"/join#.+"))
    await expect(panel.locator("#host-note")).to_contain_text("give them the new link")
    new_link = await link.input_value()
    world.invites["Sam Green"] = {"link": new_link, "token": new_link.split("#", 1)[1]}
    back = await join(world, new_context, "Sam Green")
    await eventually(back, lambda s: s["outcome"] == "admit", "admitted again")
    await expect(panel.get_by_role("button", name="Remove Sam G.")).to_be_visible()

    await panel.get_by_role("button", name="End session for everyone").click()
    await panel.get_by_role("button", name="Yes, end it").click()
    for person in (host, observer):
        await expect(
            person.page.get_by_role("heading", name="The session has ended")
        ).to_be_visible()
