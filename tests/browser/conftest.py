"""Headless Chromium driven by Playwright, against a real gateway on loopback.

Browser tests run on SQLite only: what they check is the page and the media path, which do not
depend on the database (the HTTP and service tests cover both databases).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from tests.plugins.servers import CHROMIUM_FLAGS

#: Fake camera and microphone, and no permission prompt.
MEDIA_FLAGS = (
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Overrides the two-database fixture: browser tests run once, on SQLite."""
    return sqlite_url


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    """One Chromium process (Playwright gives it a fresh user-data-dir); one context per person."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[*CHROMIUM_FLAGS, *MEDIA_FLAGS],
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def new_context(browser: Browser) -> AsyncIterator[Any]:
    """``await new_context()``: an isolated browser profile (own cookies: one device each)."""
    contexts: list[BrowserContext] = []

    async def make() -> BrowserContext:
        context = await browser.new_context(
            permissions=["camera", "microphone"],
            viewport={"width": 1280, "height": 860},
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    try:
        yield make
    finally:
        for context in contexts:
            await context.close()
