"""Two gateway processes sharing one Redis: what one admits, the other counts; alerts raised by
one reach host pages connected to the other."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.plugins.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def environment(tmp_path: Path, redis_url: str) -> dict[str, str]:
    policy = (ROOT / "policies" / "default.toml").read_text()
    policy = policy.replace('out_of_hours = "refuse"', 'out_of_hours = "dsl_approval"')
    (tmp_path / "policy.toml").write_text(policy)
    return {
        **os.environ,
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "GATEWAY_KEYS_DIR": str(tmp_path / "keys"),
        "GATEWAY_POLICY": str(tmp_path / "policy.toml"),
        "GATEWAY_REDIS_URL": redis_url,
    }


@pytest.fixture
def gateways(environment: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    created = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "org", "create", "Twin Club"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    key = re.search(r"(sgw_\S+)", created.stdout)
    assert key is not None
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
            env=environment,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        yield key.group(1), f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


async def _ready(http: aiohttp.ClientSession, base: str) -> None:
    for _ in range(200):
        try:
            async with http.get(base + "/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{base} did not start")


async def _post(http: aiohttp.ClientSession, url: str, body: Any, key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with http.post(url, json=body, headers=headers) as response:
        answer = await response.json()
        assert response.status in (200, 201), answer
        return answer


@pytest.fixture
async def browsers() -> AsyncIterator[list[aiohttp.ClientSession]]:
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(5)]
    yield sessions
    for session in sessions:
        await session.close()


async def test_presence_and_alerts_are_shared_between_gateway_processes(
    gateways: tuple[str, str, str], browsers: list[aiohttp.ClientSession]
) -> None:
    key, a, b = gateways
    admin, host_device, observer_device, child_device, stranger = browsers
    await _ready(admin, a)
    await _ready(admin, b)
    vetting = {"kind": "dbs_enhanced", "checked_on": "2026-01-01", "expires_on": "2030-01-01"}
    tutor = await _post(
        admin,
        a + "/v1/staff",
        {
            "name": "Tia Tutor",
            "email": "tia@example.org",
            "roles": ["tutor", "dsl"],
            "vetting": vetting,
        },
        key,
    )
    observer = await _post(
        admin,
        a + "/v1/staff",
        {
            "name": "Obi Watch",
            "email": "obi@example.org",
            "roles": ["observer"],
            "vetting": vetting,
        },
        key,
    )
    guardian = await _post(
        admin, a + "/v1/guardians", {"name": "Gus Parent", "contact": "0100"}, key
    )
    child = await _post(
        admin,
        a + "/v1/children",
        {"name": "Kit Parent", "date_of_birth": "2017-05-05", "guardian_ids": [guardian["id"]]},
        key,
    )
    await _post(
        admin,
        a + "/v1/consents",
        {
            "subject_kind": "child",
            "subject_id": child["id"],
            "purpose": "participation",
            "action": "give",
            "given_by_kind": "guardian",
            "given_by_id": guardian["id"],
            "evidence": {"method": "signed_form", "reference": "f1", "dated": "2026-11-01"},
        },
        key,
    )
    now = datetime.now(UTC)
    session = await _post(
        admin,
        a + "/v1/sessions",
        {
            "kind": "group",
            "title": "Twin maths",
            "host_staff_id": tutor["id"],
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
            "password": "open-sesame",
            "out_of_hours_approved_by": tutor["id"],
        },
        key,
    )
    sid = session["id"]
    roster = {"host": None}
    for person_kind, person, role in (("staff", observer, "observer"), ("child", child, "child")):
        added = await _post(
            admin,
            a + f"/v1/sessions/{sid}/participants",
            {"person_kind": person_kind, "person_id": person["id"], "role": role},
            key,
        )
        roster[role] = added["id"]
    async with admin.get(
        a + f"/v1/sessions/{sid}/participants", headers={"Authorization": f"Bearer {key}"}
    ) as response:
        roster["host"] = (await response.json())["items"][0]["id"]
    tokens = {}
    for role, participant in roster.items():
        invite = await _post(
            admin, a + f"/v1/sessions/{sid}/participants/{participant}/invite", {}, key
        )
        tokens[role] = invite["token"]

    def join(token: str) -> dict[str, str]:
        return {"token": token, "password": "open-sesame"}

    assert (await _post(host_device, a + "/v1/join", join(tokens["host"])))["outcome"] == "admit"
    assert (await _post(observer_device, a + "/v1/join", join(tokens["observer"])))[
        "outcome"
    ] == "admit"
    # The child joins through the OTHER process, which counts the adults admitted by the first.
    child_join = await _post(child_device, b + "/v1/join", join(tokens["child"]))
    assert child_join["outcome"] == "admit", child_join

    # The host's live stream is on process A; a replayed invite on process B raises an alert.
    received: list[dict[str, Any]] = []

    async def listen() -> None:
        async with host_device.post(
            a + "/v1/live/events", json={"token": tokens["host"]}
        ) as response:
            async for line in response.content:
                if line.startswith(b"data: "):
                    event = json.loads(line[6:])
                    received.append(event)
                    if event.get("type") == "alert" and event.get("kind") == "invite_other_device":
                        return

    listening = asyncio.create_task(listen())
    await asyncio.sleep(1.0)
    async with stranger.post(b + "/v1/join", json=join(tokens["child"])) as response:
        assert response.status == 403
    await asyncio.wait_for(listening, timeout=10)
    alert = received[-1]
    assert alert["kind"] == "invite_other_device" and alert["session_id"] == sid
    assert "Parent" not in json.dumps(alert)  # masked display name only
