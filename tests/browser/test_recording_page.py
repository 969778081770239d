"""Recording on the join page in real Chromium (R7, R8): the child is asked on the day and
can say no; the host's Start lists who has not agreed (masked names) and records nothing; once
everyone has agreed, every page shows the recording indicator, saying whether that person is
in the recording; Stop takes it away."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from gateway.http.live_api import LIVE
from tests.browser.test_join_page import PASSWORD, NewContext, Person, eventually, open_invite
from tests.http.world import World, build_world
from tests.live_recording._recorder import attach_recorder
from tests.plugins.gateway_server import Gateway


@pytest.fixture
def gateway_settings(tmp_path: Path) -> dict[str, Any]:
    key = tmp_path / "master.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    return {"recordings_dir": tmp_path / "recordings", "recording_master_key_file": key}


async def go_in(
    world: World, new_context: NewContext, name: str, today: str | None = None
) -> Person:
    person = await open_invite(world, new_context, name)
    page = person.page
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Session password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Before you go in")).to_be_visible()
    question = page.get_by_role("group", name="Are you happy to be recorded today?")
    if today is None:
        await expect(question).to_be_hidden()
    else:
        await expect(question).to_be_visible()
        choice = "Yes, that is OK" if today == "yes" else "No, please do not record me"
        await question.get_by_label(choice).check()
        await expect(page.locator("#recording-today-note")).to_contain_text("Thank you")
    await page.get_by_role("button", name="Go in").click()
    await eventually(person, lambda s: s["connection"] == "connected", "media connected")
    return person


async def test_host_starts_and_stops_and_everyone_sees_it(
    gateway: Gateway, new_context: NewContext
) -> None:
    attach_recorder(gateway.app[LIVE])
    world = await build_world(gateway)
    tutor = await go_in(world, new_context, "Tina Tutor")
    observer = await go_in(world, new_context, "Oscar Observer")
    sam = await go_in(world, new_context, "Sam Green", today="yes")
    ada = await go_in(world, new_context, "Ada Hill", today="no")
    platform = gateway.app[LIVE]._platform

    async def all_connected() -> None:
        deadline = asyncio.get_running_loop().time() + 30
        while sum(p.connected for p in platform.participants_now(world.session["id"])) < 4:
            assert asyncio.get_running_loop().time() < deadline, "not everyone connected"
            await asyncio.sleep(0.1)

    await all_connected()
    host = tutor.page
    controls = host.get_by_role("region", name="Recording")
    await expect(controls).to_be_visible()
    indicator = "#recording-indicator"
    for person in (tutor, sam):
        await expect(person.page.locator(indicator)).to_be_hidden()

    # Nobody has agreed in writing yet: refused, with who lacks what, by masked name.
    await controls.get_by_label("Why (the purpose)").select_option("lesson_review")
    await controls.get_by_role("button", name="Start recording").click()
    await expect(controls.get_by_role("alert")).to_contain_text("not everyone has agreed")
    refusal = controls.locator("#recording-refusal li")
    await expect(refusal.first).to_be_visible()
    listed = " | ".join(await refusal.all_text_contents())
    assert await refusal.count() == 3, listed  # tutor, observer, Sam (Ada said no: left out)
    assert "Sam G.: a parent's or carer's written consent" in listed, listed
    assert "Green" not in listed and "Ada" not in listed
    await expect(sam.page.locator(indicator)).to_be_hidden()

    for name, by, kind in (
        ("Tina Tutor", "Tina Tutor", "staff"),
        ("Oscar Observer", "Oscar Observer", "staff"),
        ("Sam Green", "Gail Green", "guardian"),
    ):
        answer = await world.consent(
            name,
            "recording:lesson_review",
            by,
            kind,
            subject_kind="child" if kind == "guardian" else "staff",
        )
        assert answer.status == 201, answer.body
    await all_connected()
    await controls.get_by_role("button", name="Start recording").click()
    await expect(controls.locator("#recording-state")).to_have_text(
        "Recording is on (lesson review)."
    )
    await expect(refusal).to_have_count(0)
    await expect(sam.page.locator(indicator)).to_contain_text("you are in it")
    await expect(ada.page.locator(indicator)).to_contain_text("you are not being recorded")
    await expect(observer.page.locator(indicator)).to_be_visible()
    await host.screenshot(path="/tmp/sgw-recording-host.png", full_page=True)
    await sam.page.screenshot(path="/tmp/sgw-recording-child.png", full_page=True)

    await controls.get_by_role("button", name="Stop recording").click()
    await expect(controls.locator("#recording-state")).to_have_text("Recording is off.")
    for person in (sam, ada, observer):
        await expect(person.page.locator(indicator)).to_be_hidden()
