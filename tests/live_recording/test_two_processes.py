"""Two gateway processes sharing one Redis and one database: a session's recording runs on its
one authority (where the relay carries its media). Starts sent to both processes at once make
exactly one run: the other process sends the caller to the owner (421), a second start at the
owner is refused (409), and exactly one run is audited. A stream served by the other process
shows the run (read from SQL), and a stop sent there is sent to the owner."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.live._gateways import (
    Admin,
    Attendee,
    create_org,
    environment,
    events,
    post,
    ready,
    serving,
    supervised_session,
)

pytestmark = [pytest.mark.slow, pytest.mark.media]
PURPOSE = "recording:lesson_review"
EVIDENCE = {"method": "signed_form", "reference": "f2", "dated": "2026-11-01"}


@pytest.fixture
def gateways(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, str, str]]:
    key_file = tmp_path / "master.key"
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o600)
    env = environment(
        tmp_path,
        redis_url,
        GATEWAY_RECORDING_MASTER_KEY_FILE=str(key_file),
        GATEWAY_RECORDINGS_DIR=str(tmp_path / "recordings"),
    )
    key = create_org(env)
    with serving(env, 2) as (a, b):
        yield key, a.base, b.base


async def _consent_everyone(admin: aiohttp.ClientSession, base: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}

    async def listed(path: str) -> list[dict[str, Any]]:
        async with admin.get(base + path, headers=headers) as response:
            return list((await response.json())["items"])

    for staff in await listed("/v1/staff"):
        await post(
            admin,
            base + "/v1/consents",
            {
                "subject_kind": "staff",
                "subject_id": staff["id"],
                "purpose": PURPOSE,
                "action": "give",
                "given_by_kind": "staff",
                "given_by_id": staff["id"],
                "evidence": EVIDENCE,
            },
            key,
        )
    for child in await listed("/v1/children"):
        await post(
            admin,
            base + "/v1/consents",
            {
                "subject_kind": "child",
                "subject_id": child["id"],
                "purpose": PURPOSE,
                "action": "give",
                "given_by_kind": "guardian",
                "given_by_id": child["guardian_ids"][0],
                "evidence": EVIDENCE,
            },
            key,
        )


async def test_starts_at_both_processes_make_exactly_one_run(
    gateways: tuple[str, str, str], devices: list[aiohttp.ClientSession]
) -> None:
    key, a, b = gateways
    admin, host_device, observer_device, child_device, _ = devices
    await ready(admin, a)
    await ready(admin, b)
    session = await supervised_session(admin, a, key)
    await _consent_everyone(admin, a, key)
    admin_view = Admin(admin, a, key)
    people = [
        Attendee("host", host_device, session.tokens["host"]),
        Attendee("observer", observer_device, session.tokens["observer"]),
        Attendee("child", child_device, session.tokens["child"]),
    ]
    try:
        for attendee in people:
            await attendee.arrive(a, admin_view)  # A owns the session: its media is there
        await post(
            child_device,
            a + "/v1/live/recording/today",
            {"token": session.tokens["child"], "answer": "yes"},
        )
        headers = {"Authorization": f"Bearer {key}"}

        async def start(base: str) -> tuple[int, dict[str, Any]]:
            async with admin.post(
                f"{base}/v1/sessions/{session.id}/recording/start",
                json={"purpose": "lesson_review"},
                headers=headers,
            ) as response:
                return response.status, await response.json()

        answers = await asyncio.gather(start(a), start(b), start(a), start(b))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 409, 421, 421], answers
        for status, body in answers:
            if status == 421:
                assert body["error"]["code"] == "session_elsewhere" and body["location"] == a
        started = next(body for status, body in answers if status == 200)
        assert len(started["recorded"]) == 3
        assert len(await admin_view.audit("recording.run_started")) == 1

        # A page's stream served by B (not the authority) never says "not recording": it
        # reads the run from SQL; who is in it is not known there.
        async with (
            asyncio.timeout(20),
            contextlib.aclosing(events(child_device, b, session.tokens["child"])) as seen,
        ):
            async for event in seen:
                if event["type"] == "recording":
                    assert event["active"] is True, event
                    assert event["purpose"] == "lesson_review" and event["you"] == "unknown"
                    break
        # A stop sent to B goes to the authority (421), never "this session is not recorded".
        async with admin.post(
            f"{b}/v1/sessions/{session.id}/recording/stop", json={}, headers=headers
        ) as elsewhere:
            assert elsewhere.status == 421 and (await elsewhere.json())["location"] == a
        async with admin.post(
            f"{a}/v1/sessions/{session.id}/recording/stop", json={}, headers=headers
        ) as stopped:
            assert stopped.status == 200
    finally:
        for attendee in people:
            await attendee.hang_up()
