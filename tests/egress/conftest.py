"""A gateway whose organisations run on LiveKit and can record: LiveKit here is the wire-level
DOUBLE (tests/livekit_double), since LiveKit Egress (GStreamer and Chrome) is not built in
the tests; the double's egress uploads a made-up file the way egress does when it ends."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from gateway.domain.retention import CatalogueEntry
from gateway.http.live_api import LIVE
from gateway.http.livekit_webhooks_api import WEBHOOK_PATH
from gateway.http.recording_pages import RECORDINGS
from tests.http.world import World, build_world
from tests.livekit_double import LiveKitDouble, running_double
from tests.media._peers import wait_until
from tests.plugins.gateway_server import Client, Gateway

PURPOSE = "lesson_review"
WITHIN = 5.0  # seconds: a change of scope or a failure takes effect within this
GUARDIANS = {"Sam Green": "Gail Green", "Ada Hill": "Harry Hill"}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
async def double() -> AsyncIterator[LiveKitDouble]:
    async with running_double() as started:
        yield started


@pytest.fixture
def gateway_settings(double: LiveKitDouble, tmp_path: Path) -> dict[str, Any]:
    secret = tmp_path / "livekit.secret"
    secret.write_text(double.secret + "\n")
    secret.chmod(0o600)
    key = tmp_path / "master.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    return {
        "livekit_url": double.url,
        "livekit_api_key": double.api_key,
        "livekit_api_secret_file": secret,
        "livekit_organisations": ("*",),
        "livekit_timeout_seconds": 1.0,
        "livekit_egress_poll_seconds": 0.3,
        "livekit_egress_finish_seconds": 3.0,
        "recordings_dir": tmp_path / "recordings",
        "recording_master_key_file": key,
        "retention_seconds": 0.2,
    }


@dataclass
class Person:
    name: str
    device: Client
    body: dict[str, Any]
    platform_identity: str
    room: str

    @property
    def identity(self) -> str:
        return str(self.body["participant"]["identity"])


@dataclass
class OnLiveKit:
    """People joining through the gateway and connecting to LiveKit (the double) with the
    platform identity of the token the join gave them."""

    world: World
    double: LiveKitDouble
    arrived: dict[str, Person] = field(default_factory=dict)

    @property
    def gateway(self) -> Gateway:
        return self.world.gateway

    @property
    def session_id(self) -> str:
        return str(self.world.session["id"])

    def token(self, name: str) -> str:
        return str(self.world.invites[name]["token"])

    async def arrive(self, name: str) -> Person:
        device = await self.gateway.client()
        answer = await self.world.join(name, device)
        assert answer.status == 200, answer.body
        claims = jwt.decode(answer.body["media"]["token"], options={"verify_signature": False})
        person = Person(name, device, answer.body, claims["sub"], claims["video"]["room"])
        self.arrived[name] = person
        await self.double.join(person.room, person.platform_identity)
        live = self.gateway.app[LIVE]
        await wait_until(
            lambda: (seat := live._registry.seat(person.identity)) is not None and seat.connected,
            timeout=WITHIN,
        )
        return person

    async def consent(self, *names: str) -> None:
        for name in names:
            if name in GUARDIANS:
                answer = await self.world.consent(
                    name, f"recording:{PURPOSE}", GUARDIANS[name], "guardian"
                )
            else:
                answer = await self.world.consent(
                    name, f"recording:{PURPOSE}", name, "staff", subject_kind="staff"
                )
            assert answer.status == 201, answer.body

    async def withdraw(self, child: str) -> None:
        answer = await self.world.consent(
            child, f"recording:{PURPOSE}", GUARDIANS[child], "guardian", action="withdraw"
        )
        assert answer.status == 201, answer.body

    async def today(self, name: str, answer: str = "yes") -> None:
        said = await self.arrived[name].device.post(
            "/v1/live/recording/today", {"token": self.token(name), "answer": answer}
        )
        assert said.status == 200, said.body

    async def start(self, name: str = "Tina Tutor") -> Any:
        return await self.arrived[name].device.post(
            "/v1/live/recording/start", {"token": self.token(name), "purpose": PURPOSE}
        )

    async def stop(self, name: str = "Tina Tutor") -> Any:
        return await self.arrived[name].device.post(
            "/v1/live/recording/stop", {"token": self.token(name)}
        )

    def recording_now(self) -> frozenset[str]:
        recorder = self.gateway.app[LIVE].recording.recorder
        assert recorder is not None
        return recorder.recording(self.session_id)

    def egress_of(self, name: str) -> list[Any]:
        """Every egress LiveKit was asked for that names this person's platform identity."""
        person = self.arrived[name]
        return [
            e
            for e in self.double.egresses.values()
            if e.participant.identity == person.platform_identity
        ]

    async def catalogue(self) -> list[CatalogueEntry]:
        recordings = self.gateway.app[RECORDINGS]
        return list(await recordings._catalogue.in_session(self.world.org_id, self.session_id))

    async def entries_of(self, name: str) -> list[CatalogueEntry]:
        kind = "child" if name in GUARDIANS else "staff"
        return [e for e in await self.catalogue() if (kind, self.world.ids[name]) in e.participants]

    async def read_back(self, recording_id: str) -> bytes:
        recordings = self.gateway.app[RECORDINGS]
        org = await self.gateway.services.store.organisation(self.world.org_id)
        assert org is not None
        return b"".join(await recordings.read(org, recording_id))

    async def settle(self) -> None:
        await asyncio.sleep(0)


@pytest.fixture
async def lk(gateway: Gateway, double: LiveKitDouble) -> OnLiveKit:
    double.webhook_url = gateway.base + WEBHOOK_PATH
    return OnLiveKit(await build_world(gateway), double)
