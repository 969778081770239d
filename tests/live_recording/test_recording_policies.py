"""The policy's `recording.child_declines = "block"` and a gateway without a master key, over
real HTTP with aiortc peers: a child who says no today blocks the start; someone without
consent joining stops the recording; without a key nothing starts, with one clear error."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from tests.live_media._session import People
from tests.live_recording.test_recording_live import (
    catalogue,
    consent,
    everyone_in,
    recording_now,
    start,
    today,
)
from tests.media._peers import wait_until
from tests.plugins.gateway_server import ROOT

pytestmark = pytest.mark.media


@pytest.fixture
def gateway_settings(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    text = (ROOT / "policies" / "default.toml").read_text(encoding="utf-8")
    policy = tmp_path / "block.toml"
    policy.write_text(
        text.replace('child_declines = "exclude"', 'child_declines = "block"'), encoding="utf-8"
    )
    settings: dict[str, Any] = {
        "policy_path": policy,
        "recordings_dir": tmp_path / "recordings",
        "retention_seconds": 0.2,
    }
    if "no_key" not in request.node.name:
        key = tmp_path / "master.key"
        key.write_bytes(os.urandom(32))
        key.chmod(0o600)
        settings["recording_master_key_file"] = key
    return settings


async def test_a_child_saying_no_today_blocks_the_start(people: People) -> None:
    await consent(people, "Tina Tutor", "Oscar Observer", "Sam Green")
    await people.arrive("Tina Tutor")
    await people.arrive("Oscar Observer")
    await people.arrive("Sam Green")
    assert (await today(people, "Sam Green", "no")).status == 200
    refused = await start(people)
    assert refused.status == 409 and refused.code == "recording_consent_missing"
    assert refused.body["error"]["lacking"] == [
        {
            "identity": people.arrived["Sam Green"].identity,
            "display_name": "Sam G.",
            "missing": ["declined_today"],
            "says": "Sam G.: said no to being recorded today",
        }
    ]
    assert await catalogue(people) == []


async def test_someone_without_consent_joining_stops_the_recording(people: People) -> None:
    await consent(people, "Tina Tutor", "Oscar Observer", "Sam Green")  # not Ada
    await everyone_in(people, "Sam Green")
    assert (await start(people)).status == 200
    assert len(recording_now(people)) == 3
    await people.arrive("Ada Hill")
    await wait_until(lambda: recording_now(people) == frozenset(), timeout=5)
    deadline = asyncio.get_running_loop().time() + 5
    while any(e.state.value == "recording" for e in await catalogue(people)):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    entries = await catalogue(people)
    assert len(entries) == 3 and all(e.state.value == "complete" for e in entries)
    deadline = asyncio.get_running_loop().time() + 5
    while not (stopped := await people.audit("recording.run_stopped")):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    assert stopped and stopped[0]["data"]["reason"] in ("guardian_consent", "not_asked_today")
    await asyncio.sleep(0.2)
    assert len(await catalogue(people)) == 3  # nothing of Ada's, and nothing restarted


async def test_without_a_master_key_no_key_nothing_starts(people: People) -> None:
    await consent(people, "Tina Tutor", "Oscar Observer", "Sam Green")
    await everyone_in(people, "Sam Green")
    refused = await start(people)
    assert refused.status == 503 and refused.code == "recording_unavailable", refused.body
    assert "Retry-After" in refused.headers
    assert await catalogue(people) == [] and recording_now(people) == frozenset()
