"""A demo organisation with a small roster, so a newcomer can try a session at once."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from gateway.app import Runtime
from gateway.domain.models import (
    ConsentAction,
    Evidence,
    EvidenceMethod,
    PersonKind,
    SessionKind,
    SessionRole,
    StaffRole,
    Vetting,
)
from gateway.services.ports import Organisation
from gateway.settings import PACKAGED_POLICIES, Settings

DEMO_NAME = "Demo Tutoring Club"
DEMO_POLICY = str(PACKAGED_POLICIES / "demo.toml")  # absolute: found from any directory
ACTOR = "demo"


async def create_demo(runtime: Runtime, settings: Settings) -> int:
    services = runtime.services
    existing = [o for o in await services.store.organisations() if o.name == DEMO_NAME]
    if existing:
        org = existing[0]
        key = await services.organisations.rotate_key(org.id)
    else:
        org, key = await services.organisations.create(DEMO_NAME, str(Path(DEMO_POLICY)))
        await _roster(runtime, org)
    session_id, password = await _session(runtime, org)
    print(f"\nDemo organisation: {DEMO_NAME}")
    print(f"Admin API key (new each start; older ones are revoked): {key}")
    print(f"Session password: {password}")
    print("Personal invite links (each works on the first device that opens it):")
    for participant in await services.sessions.roster(org, session_id):
        issued = await services.sessions.issue_invite(org, ACTOR, session_id, participant.id)
        print(
            f"  {participant.role.value:<9} {participant.display_name:<12} "
            f"{settings.public_url}/join#{issued.token}"
        )
    return 0


async def _roster(runtime: Runtime, org: Organisation) -> None:
    services = runtime.services
    today = services.clock.now().date()
    vetting = Vetting("dbs_enhanced", today - timedelta(days=200), today + timedelta(days=900))
    await services.registry.add_staff(
        org, ACTOR, "Priya Shah", "priya.shah@example.org", [StaffRole.TUTOR], vetting
    )
    await services.registry.add_staff(
        org,
        ACTOR,
        "Dana Lee",
        "dana.lee@example.org",
        [StaffRole.OBSERVER, StaffRole.DSL],
        vetting,
    )
    for child_name, guardian_name, age in (
        ("Sam Rivers", "Alex Rivers", 10),
        ("Mia Chen", "Li Chen", 13),
    ):
        guardian = await services.registry.add_guardian(
            org, ACTOR, guardian_name, "guardian@example.net"
        )
        child = await services.registry.add_child(
            org, ACTOR, child_name, date(today.year - age, 1, 15), [guardian.id]
        )
        evidence = Evidence(EvidenceMethod.SIGNED_FORM, f"demo-form-{age}", today)
        for purpose in ("participation", "recording:lesson_review"):
            await services.consent.record(
                org,
                ACTOR,
                PersonKind.CHILD,
                child.id,
                purpose,
                ConsentAction.GIVE,
                PersonKind.GUARDIAN,
                guardian.id,
                evidence,
            )
            if age >= 12:
                await services.consent.record(
                    org,
                    ACTOR,
                    PersonKind.CHILD,
                    child.id,
                    purpose,
                    ConsentAction.GIVE,
                    PersonKind.CHILD,
                    child.id,
                    Evidence(EvidenceMethod.E_SIGNATURE, f"demo-assent-{age}", today),
                )


async def _session(runtime: Runtime, org: Organisation) -> tuple[str, str]:
    """A fresh session from now for three hours, approved out of hours by the demo DSL."""
    services = runtime.services
    staff = await services.registry.list(org, PersonKind.STAFF)
    children = await services.registry.list(org, PersonKind.CHILD)
    tutor = next(s for s in staff if "priya" in getattr(s, "email", ""))
    observer = next(s for s in staff if "dana" in getattr(s, "email", ""))
    now = services.clock.now()
    created = await services.sessions.create(
        org,
        ACTOR,
        SessionKind.GROUP,
        "Demo maths club",
        tutor.id,
        now - timedelta(minutes=5),
        now + timedelta(hours=3),
        "lesson_review",
        None,
        observer.id,
    )
    session_id = created.session.id
    await services.sessions.add_participant(
        org, ACTOR, session_id, PersonKind.STAFF, observer.id, SessionRole.OBSERVER
    )
    for child in children:
        await services.sessions.add_participant(
            org, ACTOR, session_id, PersonKind.CHILD, child.id, SessionRole.CHILD
        )
    assert created.password is not None
    return session_id, created.password
