"""A gateway recording a session whose heartbeat stops (its database takes no writes, so its
registration cannot be renewed): before the registration can lapse, it stops its recordings by
itself, the host is told why, and not one more byte reaches the recordings' files; once the
database answers again, the recordings are sealed as incomplete, and the session went on."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.retention import RecordingState
from gateway.http.live_api import LIVE
from tests.live_media._session import People, stream
from tests.live_recording.test_recording_live import catalogue, consent, everyone_in, start
from tests.media._peers import wait_until

pytestmark = pytest.mark.media

HEARTBEAT = 2.0  # GATEWAY_LIVE_HEARTBEAT_SECONDS here: a registration lapses this long unrenewed


@pytest.fixture
def gateway_settings(gateway_settings: dict[str, Any]) -> dict[str, Any]:
    return {**gateway_settings, "live_heartbeat_seconds": HEARTBEAT}


def sizes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in directory.iterdir()}


async def test_a_stopped_heartbeat_stops_the_recording_before_it_can_be_sealed_elsewhere(
    people: People,
) -> None:
    await consent(people, "Tina Tutor", "Oscar Observer", "Sam Green")
    await everyone_in(people, "Sam Green")
    host_events: list[dict[str, Any]] = []
    host = people.arrived["Tina Tutor"]
    watching = asyncio.create_task(stream(host.device, people.token("Tina Tutor"), host_events))
    settings = people.gateway.settings
    folder = Path(settings.recordings_dir)
    database = settings.database_url.split("///", 1)[1]
    try:
        assert (await start(people)).status == 200
        await wait_until(lambda: sum(sizes(folder).values()) > 0, timeout=10)

        # The heartbeat stops: the database takes no writes (as when it is unreachable).
        blocker = sqlite3.connect(database, isolation_level=None, timeout=30)
        blocker.execute("BEGIN IMMEDIATE")
        blocked_at = asyncio.get_running_loop().time()
        try:
            await wait_until(
                lambda: any(
                    e.get("type") == "alert"
                    and e.get("state") == "stopped"
                    and e.get("reason") == "registration_lapsed"
                    for e in host_events
                ),
                timeout=HEARTBEAT + 3,
            )
            # Told before the registration could have lapsed (one lease after the last renewal).
            assert asyncio.get_running_loop().time() - blocked_at < HEARTBEAT + 1
            assert any(e.get("type") == "recording" and e["active"] is False for e in host_events)
            stopped = sizes(folder)
            await asyncio.sleep(HEARTBEAT)  # well past the lapse: nothing more is written
            assert sizes(folder) == stopped
            assert people.gateway.app[LIVE].recording.recorder.recording(people.session_id) == (
                frozenset()
            )
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        async def sealed() -> bool:
            entries = await catalogue(people)
            return bool(entries) and all(e.state is RecordingState.INCOMPLETE for e in entries)

        async with asyncio.timeout(30):
            while not await sealed():
                await asyncio.sleep(0.2)
        assert len(await catalogue(people)) == 3
        assert people.admitted(people.arrived["Sam Green"].identity)  # the session went on
        # And it can be recorded again, now that the registration is renewed.
        again = await start(people)
        assert again.status == 200, again.body
    finally:
        watching.cancel()
