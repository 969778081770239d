"""Builds a realistic organisation through the public API, for the HTTP tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tests.plugins.gateway_server import Client, Gateway

VETTING = {"kind": "dbs_enhanced", "checked_on": "2026-01-10", "expires_on": "2028-01-10"}
EVIDENCE = {"method": "signed_form", "reference": "form-17", "dated": "2026-11-01"}


@dataclass
class World:
    gateway: Gateway
    admin: Client
    org_id: str
    ids: dict[str, str] = field(default_factory=dict)
    session: dict[str, Any] = field(default_factory=dict)
    participants: dict[str, str] = field(default_factory=dict)  # name -> participant id
    invites: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> invite answer

    async def staff(
        self, name: str, roles: list[str], vetting: dict[str, str] | None = VETTING
    ) -> str:
        email = name.lower().replace(" ", ".") + "@example.org"
        answer = await self.admin.post(
            "/v1/staff", {"name": name, "email": email, "roles": roles, "vetting": vetting}
        )
        assert answer.status == 201, answer.body
        self.ids[name] = answer.body["id"]
        return str(answer.body["id"])

    async def guardian(self, name: str) -> str:
        answer = await self.admin.post("/v1/guardians", {"name": name, "contact": "call 0100"})
        assert answer.status == 201, answer.body
        self.ids[name] = answer.body["id"]
        return str(answer.body["id"])

    async def child(self, name: str, born: str, guardian: str, consent: bool = True) -> str:
        answer = await self.admin.post(
            "/v1/children",
            {"name": name, "date_of_birth": born, "guardian_ids": [self.ids[guardian]]},
        )
        assert answer.status == 201, answer.body
        self.ids[name] = answer.body["id"]
        if consent:
            await self.consent(name, "participation", guardian, "guardian")
        return str(answer.body["id"])

    async def consent(
        self,
        subject: str,
        purpose: str,
        by: str,
        by_kind: str,
        action: str = "give",
        subject_kind: str = "child",
    ) -> Any:
        answer = await self.admin.post(
            "/v1/consents",
            {
                "subject_kind": subject_kind,
                "subject_id": self.ids[subject],
                "purpose": purpose,
                "action": action,
                "given_by_kind": by_kind,
                "given_by_id": self.ids[by],
                **({"evidence": EVIDENCE} if action == "give" else {}),
            },
        )
        return answer

    async def new_session(
        self,
        host: str,
        kind: str = "group",
        password: str | None = "open-sesame",
        hours: int = 2,
    ) -> str:
        start = self.gateway.clock.now() - timedelta(minutes=5)
        body: dict[str, Any] = {
            "kind": kind,
            "title": "Maths club",
            "host_staff_id": self.ids[host],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=hours)).isoformat(),
        }
        if password:
            body["password"] = password
        answer = await self.admin.post("/v1/sessions", body)
        assert answer.status == 201, answer.body
        self.session = answer.body
        roster = await self.admin.get(f"/v1/sessions/{self.session['id']}/participants")
        self.participants[host] = roster.body["items"][0]["id"]
        return str(answer.body["id"])

    async def enrol(self, name: str, role: str, kind: str) -> Any:
        answer = await self.admin.post(
            f"/v1/sessions/{self.session['id']}/participants",
            {"person_kind": kind, "person_id": self.ids[name], "role": role},
        )
        if answer.status == 201:
            self.participants[name] = answer.body["id"]
        return answer

    async def invite(self, name: str) -> dict[str, Any]:
        answer = await self.admin.post(
            f"/v1/sessions/{self.session['id']}/participants/{self.participants[name]}/invite"
        )
        assert answer.status == 201, answer.body
        self.invites[name] = answer.body
        return dict(answer.body)

    async def join(
        self, name: str, device: Client | None = None, password: str | None = "open-sesame"
    ) -> Any:
        device = device or await self.gateway.client()
        body: dict[str, Any] = {"token": self.invites[name]["token"]}
        if password is not None:
            body["password"] = password
        return await device.post("/v1/join", body)


async def build_world(gateway: Gateway) -> World:
    """Tutor and observer (vetted), two children with guardians and participation consent."""
    org_id, key = await gateway.organisation()
    world = World(gateway, await gateway.client(key), org_id)
    await world.staff("Tina Tutor", ["tutor"])
    await world.staff("Oscar Observer", ["observer"])
    await world.guardian("Gail Green")
    await world.child("Sam Green", "2016-04-02", "Gail Green")
    await world.guardian("Harry Hill")
    await world.child("Ada Hill", "2017-09-12", "Harry Hill")
    await world.new_session("Tina Tutor")
    for name, role, kind in (
        ("Oscar Observer", "observer", "staff"),
        ("Sam Green", "child", "child"),
        ("Ada Hill", "child", "child"),
    ):
        answer = await world.enrol(name, role, kind)
        assert answer.status == 201, answer.body
    for name in ("Tina Tutor", "Oscar Observer", "Sam Green", "Ada Hill"):
        await world.invite(name)
    return world
