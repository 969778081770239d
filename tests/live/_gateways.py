"""Helpers for tests that run `gateway serve` processes on one Redis: the environment, starting
and stopping processes, and one supervised session (tutor, observer, child) set up over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.plugins.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
VETTING = {"kind": "dbs_enhanced", "checked_on": "2026-01-01", "expires_on": "2030-01-01"}
PASSWORD = "open-sesame"


def environment(
    tmp_path: Path,
    redis_url: str,
    grace_seconds: int = 60,
    database_url: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """Environment for gateway processes sharing one database (SQLite unless `database_url`,
    e.g. PostgreSQL) and one Redis. The policy admits out of hours with the DSL's approval, so
    the tests run at any time of day."""
    policy = (ROOT / "policies" / "default.toml").read_text()
    policy = policy.replace('out_of_hours = "refuse"', 'out_of_hours = "dsl_approval"')
    policy = re.sub(r"grace_seconds = \d+", f"grace_seconds = {grace_seconds}", policy)
    (tmp_path / "policy.toml").write_text(policy)
    return {
        **os.environ,
        "GATEWAY_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "GATEWAY_KEYS_DIR": str(tmp_path / "keys"),
        "GATEWAY_POLICY": str(tmp_path / "policy.toml"),
        "GATEWAY_REDIS_URL": redis_url,
        **extra,
    }


def create_org(env: dict[str, str], name: str = "Twin Club") -> str:
    """Create an organisation with the CLI (migrating the database); its API key."""
    created = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "org", "create", name],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    key = re.search(r"(sgw_\S+)", created.stdout)
    assert key is not None
    return key.group(1)


async def new_org(env: dict[str, str], name: str = "Twin Club") -> str:
    """Create an organisation in this process on the (migrated) database of `env`, as
    `gateway org create` does; its API key. For tests that share running gateway processes and
    give each test its own organisation: no process to start."""
    from gateway.app import build_runtime
    from gateway.settings import Settings

    runtime = await build_runtime(Settings.from_env(env))
    try:
        _, key = await runtime.services.organisations.create(name)
        return key
    finally:
        await runtime.close()


@dataclass
class Served:
    base: str
    process: subprocess.Popen[bytes]


@contextmanager
def serving(env: dict[str, str], count: int = 1) -> Iterator[list[Served]]:
    """Start `count` gateway processes; terminate (or reap, if a test killed one) them all."""
    started: list[Served] = []
    try:
        for _ in range(count):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
                env={**env, "GATEWAY_PROCESS_URL": f"http://127.0.0.1:{port}"},
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started.append(Served(f"http://127.0.0.1:{port}", process))
        yield started
    finally:
        for served in started:
            if served.process.poll() is None:
                served.process.terminate()
        for served in started:
            served.process.wait(timeout=20)


async def ready(http: aiohttp.ClientSession, *bases: str, timeout: float = 90.0) -> None:
    """Every process answers /healthz. A gateway starts in a second or two; on a loaded 2-core
    machine (CI's, or several test runs at once) it was seen taking 21 s: 90 s by default."""
    async with asyncio.timeout(timeout):
        for base in bases:
            while True:
                try:
                    async with http.get(base + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)


async def post(http: aiohttp.ClientSession, url: str, body: Any, key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with http.post(url, json=body, headers=headers) as response:
        answer = await response.json()
        assert response.status in (200, 201), answer
        return answer


def join_body(token: str) -> dict[str, str]:
    return {"token": token, "password": PASSWORD}


@dataclass
class SupervisedSession:
    id: str
    participants: dict[str, str]  # role -> participant id
    tokens: dict[str, str]  # role -> invite token


async def supervised_session(
    admin: aiohttp.ClientSession, base: str, key: str
) -> SupervisedSession:
    """A group session hosted by a vetted tutor (also the DSL), with a vetted observer and a
    child whose guardian gave consent; one invite each."""
    tutor = await post(
        admin,
        base + "/v1/staff",
        {
            "name": "Tia Tutor",
            "email": "tia@example.org",
            "roles": ["tutor", "dsl"],
            "vetting": VETTING,
        },
        key,
    )
    observer = await post(
        admin,
        base + "/v1/staff",
        {
            "name": "Obi Watch",
            "email": "obi@example.org",
            "roles": ["observer"],
            "vetting": VETTING,
        },
        key,
    )
    guardian = await post(
        admin, base + "/v1/guardians", {"name": "Gus Parent", "contact": "0100"}, key
    )
    child = await post(
        admin,
        base + "/v1/children",
        {"name": "Kit Parent", "date_of_birth": "2017-05-05", "guardian_ids": [guardian["id"]]},
        key,
    )
    await post(
        admin,
        base + "/v1/consents",
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
    session = await post(
        admin,
        base + "/v1/sessions",
        {
            "kind": "group",
            "title": "Twin maths",
            "host_staff_id": tutor["id"],
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
            "password": PASSWORD,
            "out_of_hours_approved_by": tutor["id"],
        },
        key,
    )
    sid = session["id"]
    participants: dict[str, str] = {}
    for person_kind, person, role in (("staff", observer, "observer"), ("child", child, "child")):
        added = await post(
            admin,
            base + f"/v1/sessions/{sid}/participants",
            {"person_kind": person_kind, "person_id": person["id"], "role": role},
            key,
        )
        participants[role] = added["id"]
    async with admin.get(
        base + f"/v1/sessions/{sid}/participants", headers={"Authorization": f"Bearer {key}"}
    ) as response:
        listed = (await response.json())["items"]
    participants["host"] = next(p["id"] for p in listed if p["role"] == "host")
    tokens = {}
    for role, participant in participants.items():
        invite = await post(
            admin, base + f"/v1/sessions/{sid}/participants/{participant}/invite", {}, key
        )
        tokens[role] = invite["token"]
    return SupervisedSession(sid, participants, tokens)


async def events(
    device: aiohttp.ClientSession, base: str, token: str
) -> AsyncIterator[dict[str, Any]]:
    """A participant's live event stream, one event at a time (the device must have joined).
    Use it inside `contextlib.aclosing` when leaving the loop early."""
    async with device.post(base + "/v1/live/events", json={"token": token}) as response:
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data: "):
                yield json.loads(line[6:])


@dataclass
class Attendee:
    """One person's browser against gateway processes: its own cookie jar, and the aiortc
    peer standing in for its camera once media is connected (to the process it joined)."""

    role: str
    device: aiohttp.ClientSession
    token: str
    joined: dict[str, Any] | None = None
    joined_at: str = ""  # the base URL of the process it joined through
    peer: Any = None

    @property
    def identity(self) -> str:
        assert self.joined is not None
        return str(self.joined["participant"]["identity"])

    async def join(self, base: str) -> dict[str, Any]:
        self.joined = await post(self.device, base + "/v1/join", join_body(self.token))
        self.joined_at = base
        return self.joined

    async def connect(self) -> None:
        """Connect media to the process this attendee joined through."""
        from tests.media._peers import Client as Peer

        assert self.joined is not None
        self.peer = Peer(self.role, slots=2)
        offer = {"credential": self.joined["media"]["credential"], "sdp": await self.peer.offer()}
        answer = await post(self.device, self.joined_at + "/v1/media/offer", offer)
        await self.peer.accept(answer["sdp"])

    async def arrive(self, base: str, admin: Admin) -> dict[str, Any]:
        """Join through `base`, connect media there, and wait until the gateway has it."""
        joined = await self.join(base)
        await self.connect()
        await admin.until_audited("media.connected", self.identity)
        return joined

    async def hang_up(self) -> None:
        if self.peer is not None:
            await self.peer.close()
            self.peer = None


@dataclass
class Admin:
    http: aiohttp.ClientSession
    base: str
    key: str

    async def audit(self, kind: str | None = None) -> list[dict[str, Any]]:
        query = "?limit=500" + (f"&kind={kind}" if kind else "")
        async with self.http.get(
            self.base + "/v1/audit" + query, headers={"Authorization": f"Bearer {self.key}"}
        ) as response:
            return list((await response.json())["items"])

    async def get(self, path: str) -> Any:
        async with self.http.get(
            self.base + path, headers={"Authorization": f"Bearer {self.key}"}
        ) as response:
            return await response.json()

    async def until_audited(self, kind: str, actor: str, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not any(e["actor"] == actor for e in await self.audit(kind)):
                await asyncio.sleep(0.1)

    async def incidents(self, at_least: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while True:
                items = list((await self.get("/v1/incidents"))["items"])
                if len(items) >= at_least:
                    return items
                await asyncio.sleep(0.1)


class Watch:
    """A participant's live event stream read in the background."""

    def __init__(self, device: aiohttp.ClientSession, base: str, token: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read(device, base, token))

    async def _read(self, device: aiohttp.ClientSession, base: str, token: str) -> None:
        async for event in events(device, base, token):
            self.events.append(event)

    def mark(self) -> int:
        return len(self.events)

    async def until(self, wanted: Any, timeout: float, after: int = 0) -> dict[str, Any]:
        """The first event from index `after` on for which `wanted(event)` holds."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events[after:]:
                    if wanted(event):
                        return event
                if self.task.done():
                    raise AssertionError(f"stream closed: {self.events[-3:]}")
                await asyncio.sleep(0.05)

    def states(self) -> list[str]:
        return [str(e["outcome"]) for e in self.events if e["type"] == "state"]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
