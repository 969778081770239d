"""An integrator generates a client from the served OpenAPI document and builds on it.

`openapi-python-client` (a pinned dev dependency) generates a package from
/v1/openapi.json in a temporary directory; the test imports it and runs the registry-to-invite
flow against a real gateway on loopback with nothing but the generated code: staff, guardian,
child, consent, session, roster, invite. Every answer comes back as the generated model, so
the ids a client needs next are typed, not lost. Then the invite's token redeems.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.plugins.gateway_server import Gateway

PACKAGE = "gateway_generated_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The document and the flow do not depend on the database: SQLite keeps this fast."""
    return sqlite_url


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


async def _generate(document: dict[str, Any], into: Path) -> None:
    (into / "openapi.json").write_text(json.dumps(document))
    # No post hooks: the generated code is imported, not formatted.
    (into / "config.yaml").write_text(
        f"post_hooks: []\nproject_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\n"
    )
    process = await asyncio.create_subprocess_exec(
        str(GENERATOR),
        "generate",
        "--path",
        str(into / "openapi.json"),
        "--meta",
        "none",
        "--config",
        str(into / "config.yaml"),
        cwd=into,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    # The generator says when it had to skip part of the document.
    assert "Warning" not in text, text


def _api(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.api.default.{name}")


def _models() -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.models")


async def test_a_generated_client_runs_registry_to_invite(
    gateway: Gateway, generated: Path
) -> None:
    document = (await (await gateway.client()).get("/v1/openapi.json")).body
    await _generate(document, generated)
    m = _models()
    client_module = importlib.import_module(f"{PACKAGE}.client")
    _, key = await gateway.organisation()

    async with client_module.AuthenticatedClient(base_url=gateway.base, token=key) as client:

        async def call(operation: str, expected: int = 200, **kw: Any) -> Any:
            answer = await _api(operation).asyncio_detailed(client=client, **kw)
            assert answer.status_code == expected, (operation, answer.content[:300])
            return answer.parsed

        vetting = m.VettingBody(
            kind="dbs_enhanced",
            checked_on=datetime.date(2026, 1, 10),
            expires_on=datetime.date(2028, 1, 10),
        )
        tina = await call(
            "create_staff",
            201,
            body=m.StaffBody(
                name="Tina Tutor",
                email="tina@example.org",
                roles=[m.StaffBodyRolesItem.TUTOR],
                vetting=vetting,
            ),
        )
        assert isinstance(tina, m.StaffView)
        assert tina.id and tina.vetting.expired is False
        oscar = await call(
            "create_staff",
            201,
            body=m.StaffBody(
                name="Oscar Observer",
                email="oscar@example.org",
                roles=[m.StaffBodyRolesItem.OBSERVER],
                vetting=vetting,
            ),
        )
        gail = await call(
            "create_guardian", 201, body=m.GuardianBody(name="Gail Green", contact="call 0100")
        )
        assert isinstance(gail, m.GuardianView)
        sam = await call(
            "create_child",
            201,
            body=m.ChildBody(
                name="Sam Green", date_of_birth=datetime.date(2015, 4, 2), guardian_ids=[gail.id]
            ),
        )
        assert isinstance(sam, m.ChildView)
        assert sam.guardian_ids == [gail.id]
        consent = await call(
            "record_consent",
            201,
            body=m.ConsentBody(
                subject_kind=m.ConsentBodySubjectKind.CHILD,
                subject_id=sam.id,
                purpose="participation",
                action=m.ConsentBodyAction.GIVE,
                given_by_kind=m.ConsentBodyGivenByKind.GUARDIAN,
                given_by_id=gail.id,
                evidence=m.EvidenceBody(
                    method=m.EvidenceBodyMethod.SIGNED_FORM,
                    reference="form-17",
                    dated=datetime.date(2026, 11, 1),
                ),
            ),
        )
        assert isinstance(consent, m.ConsentRecordView)
        state = await call("get_child_consent", id=sam.id)
        assert state.purposes["participation"].valid is True

        start = gateway.clock.now()
        session = await call(
            "create_session",
            201,
            body=m.SessionBody(
                kind=m.SessionBodyKind.GROUP,
                title="Maths club",
                host_staff_id=tina.id,
                starts_at=start,
                ends_at=start + datetime.timedelta(hours=1),
                password="open-sesame",
            ),
        )
        assert isinstance(session, m.CreatedSessionView)
        assert session.starts_at == start  # a datetime again, not a string
        listed = await call("list_sessions", status=m.ListSessionsStatus.LIVE)
        assert [s.id for s in listed.items] == [session.id]

        for person, kind, role in (
            (oscar, m.ParticipantBodyPersonKind.STAFF, m.ParticipantBodyRole.OBSERVER),
            (sam, m.ParticipantBodyPersonKind.CHILD, m.ParticipantBodyRole.CHILD),
        ):
            added = await call(
                "add_participant",
                201,
                id=session.id,
                body=m.ParticipantBody(person_kind=kind, person_id=person.id, role=role),
            )
            assert isinstance(added, m.ParticipantView)
        roster = await call("list_participants", id=session.id)
        child = next(p for p in roster.items if p.person_id == sam.id)
        invite = await call(
            "issue_invite", 201, id=session.id, participant=child.id, body=m.EmptyBody()
        )
        assert isinstance(invite, m.IssuedInviteView)
        assert invite.participant_id == child.id and invite.token

        # A refusal comes back as the generated Error model with its code.
        refused = await _api("update_staff").asyncio_detailed(
            client=client, id=tina.id, body=m.StaffPatchBody(email="tina@gmail.com")
        )
        assert refused.status_code == 422
        assert refused.parsed.error.code == m.ErrorErrorCode.EMAIL_DOMAIN_NOT_ALLOWED

    # The invite the generated client fetched lets the child's device in (held until two
    # vetted adults are present).
    device = await gateway.client()
    joined = await device.post("/v1/join", {"token": invite.token, "password": "open-sesame"})
    assert joined.status == 200, joined.body
    assert joined.body["outcome"] in {"admit", "hold"}
