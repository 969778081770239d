"""The join page on LiveKit in real Chromium (issue 10, point 2): an organisation on LiveKit
gets a LiveKit token at the join, the page connects with `livekit-client` served by the
gateway itself, a child sees and hears nobody until the session's authority grants it over
LiveKit's API (two adults connected), and then sees both adults under their masked names.

Every check reads the page itself (``window.sgw``), and every request the page made went to
the gateway or the LiveKit server: nothing fetched from elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.http.vendor import default_livekit_client
from tests.browser.test_join_page import NewContext, eventually, join
from tests.http.world import build_world
from tests.plugins.gateway_server import Gateway
from tests.plugins.livekit_server import LiveKitServer


@pytest.fixture
def livekit(start_livekit: Callable[..., LiveKitServer]) -> LiveKitServer:
    return start_livekit()


@pytest.fixture
def gateway_settings(livekit: LiveKitServer, tmp_path: Path) -> dict[str, Any]:
    if not default_livekit_client().is_file():
        pytest.skip("livekit-client not installed: scripts/test installs it (npm)")
    secret_file = tmp_path / "livekit.secret"
    secret_file.write_text(livekit.api_secret)
    return {
        "livekit_url": livekit.url,
        "livekit_api_key": livekit.api_key,
        "livekit_api_secret_file": secret_file,
        "livekit_organisations": ("*",),
    }


async def test_a_child_on_livekit_sees_nobody_until_supervised_then_both_adults(
    gateway: Gateway, new_context: NewContext, livekit: LiveKitServer
) -> None:
    world = await build_world(gateway)
    tutor = await join(world, new_context, "Tina Tutor")
    child = await join(world, new_context, "Sam Green")

    held = await child.state()
    assert held["outcome"] == "hold"
    assert held["livekit_tiles"] == [] and held["livekit_publishing"] == 0

    observer = await join(world, new_context, "Oscar Observer")
    await eventually(child, lambda s: s["outcome"] == "admit", "admitted")
    shown = await eventually(
        child, lambda s: len(s["livekit_tiles"]) == 2, "showing two adults", timeout=30
    )
    assert sorted(shown["livekit_tiles"]) == ["Oscar O.", "Tina T."]  # masked names only (R3)
    await eventually(child, lambda s: s["livekit_publishing"] > 0, "publishing", timeout=30)
    await eventually(tutor, lambda s: len(s["livekit_tiles"]) == 2, "tutor sees two", timeout=30)

    for person in (tutor, child, observer):
        elsewhere = [
            url
            for url in person.requests
            if not url.startswith((gateway.base, livekit.url, livekit.http_url))
        ]
        assert elsewhere == [], (person.name, elsewhere)
        assert not [m for m in person.console if "Content Security Policy" in m], person.console
        assert not any(person.token in url for url in person.requests)
