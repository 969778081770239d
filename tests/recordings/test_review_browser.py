"""Headless Chromium: the DSL signs in, finds a recording on the desk, states a reason, and the
video really plays in the page (frames decoded, time advancing). The recording is a real WebM
(VP8 + Opus, made with PyAV) written through the real vault writer."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.http.recording_pages import RECORDINGS
from tests.browser.conftest import browser, new_context  # noqa: F401 (fixtures)
from tests.incidents.test_incidents_http import build_case
from tests.plugins.gateway_server import Gateway
from tests.recordings.test_hold_pages import recording_gateway
from tests.recordings.test_review_http import record
from tests.recordings.webm import live_webm
from tests.staff.conftest import Mailbox, email_of, mailbox, new_browser

__all__ = ["mailbox", "recording_gateway"]

PASSWORD = "correct horse battery staple"
REASON = "Concern reported about this lesson; checking what happened"

PLAYS = """async (video) => {
  video.muted = true;  // autoplay rules: a muted video may start without a gesture
  await video.play();
  const frame = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no frame decoded")), 10000);
    video.requestVideoFrameCallback((now, meta) => { clearTimeout(timer); resolve(meta); });
  });
  const started = video.currentTime;
  await new Promise((resolve) => setTimeout(resolve, 700));
  const advanced = video.currentTime - started;
  // Written live, the recording is remuxed for playback: the player knows its length.
  const duration = video.duration;
  return {
    duration,
    width: frame.width,
    height: frame.height,
    advanced,
    decoded: video.getVideoPlaybackQuality().totalVideoFrames,
    error: video.error ? video.error.code : null,
  };
}"""


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Browser tests run once, on SQLite (the HTTP tests cover both databases)."""
    return sqlite_url


async def test_the_dsl_watches_a_recording_in_the_browser(
    recording_gateway: Gateway,
    mailbox: Mailbox,
    new_context: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    gateway = recording_gateway
    case = await build_case(gateway)
    org = await case.org()
    rid = await record(gateway.app[RECORDINGS], org, case, live_webm(4.0), [])
    setter = await new_browser(gateway)
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
    await page.goto(gateway.base + "/staff/sign-in")
    section = page.get_by_role("region", name="Sign in with your password")
    await section.get_by_label("E-mail address").fill(email_of("Dee Lead"))
    await section.get_by_label("Password").fill(PASSWORD)
    await section.get_by_role("button", name="Sign in").click()
    await page.get_by_role("link", name="Safeguarding desk").click()
    await page.get_by_role("link", name="Recordings").click()
    await page.locator(f'tr[data-id="{rid}"] a').click()
    await page.wait_for_url(f"**/staff/recordings/{rid}")
    await page.get_by_label("Why are you opening this recording?").fill(REASON)
    await page.get_by_role("button", name="Watch").click()
    await page.get_by_role("heading", name="Watching a recording").wait_for()

    result = await page.locator("video#player").evaluate(PLAYS)
    assert result["error"] is None, result
    assert (result["width"], result["height"]) == (320, 240), result
    assert result["decoded"] > 0, result
    assert result["advanced"] > 0.2, result
    assert result["duration"] == pytest.approx(4.0, abs=0.3), result
    assert not refused_by_csp
