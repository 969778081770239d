"""A recording plays in Chromium: the WebM the recorder writes (decrypted from the vault) is
loaded into a <video> element, which must decode its frames and its audio."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Route, async_playwright

from tests.media._peers import wait_until
from tests.plugins.servers import CHROMIUM_FLAGS

from .conftest import ROOM, Stage

pytestmark = pytest.mark.media

ORIGIN = "http://recording.test"
PAGE = """<!doctype html><html lang="en"><title>playback</title>
<video id="v" src="/recording.webm" muted playsinline></video>
<script>
  const v = document.getElementById("v");
  window.failed = null;
  v.addEventListener("error", () => { window.failed = String(v.error && v.error.code); });
  v.play().catch((e) => { window.failed = String(e); });
</script></html>"""

STATE = """() => {
  const v = document.getElementById("v");
  return {failed: window.failed, width: v.videoWidth, height: v.videoHeight,
          frames: v.getVideoPlaybackQuality().totalVideoFrames,
          audioBytes: v.webkitAudioDecodedByteCount, time: v.currentTime};
}"""


async def test_a_recording_plays_in_chromium(stage: Stage, chromium_path: str) -> None:
    alice, _ = stage.publisher("alice", width=320, height=240)
    await stage.join(alice)
    await wait_until(lambda: stage.relay.stats(ROOM, "alice")["video_frames_in"] >= 5, 20)
    vault = stage.vault()
    writer = vault.writer()
    await stage.recorder.start(
        ROOM, "alice", writer, audio_only=False, on_failure=stage.unexpected.append
    )
    before = stage.relay.stats(ROOM, "alice")["video_frames_in"]
    await wait_until(lambda: stage.relay.stats(ROOM, "alice")["video_frames_in"] >= before + 90, 30)
    await stage.recorder.stop(ROOM, "alice")
    writer.seal()
    webm = vault.plaintext(writer.recording_id)

    async def serve(route: Route) -> None:
        if route.request.url.endswith("/recording.webm"):
            await route.fulfill(status=200, body=webm, content_type="video/webm")
        else:
            await route.fulfill(status=200, body=PAGE, content_type="text/html")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[*CHROMIUM_FLAGS, "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            page = await browser.new_page()
            await page.route(f"{ORIGIN}/**", serve)
            await page.goto(f"{ORIGIN}/")
            state: dict[str, Any] = {}
            for _ in range(100):
                state = await page.evaluate(STATE)
                if state["failed"] or (state["frames"] >= 30 and state["audioBytes"] > 0):
                    break
                await page.wait_for_timeout(100)
        finally:
            await browser.close()
    assert state["failed"] is None
    assert (state["width"], state["height"]) == (320, 240)
    assert state["frames"] >= 30
    assert state["audioBytes"] > 0
