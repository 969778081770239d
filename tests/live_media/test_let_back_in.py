"""The host's "let back in" (issue 8, point 4): a removal can be undone by the session's host
only, for someone removed from this session, with a new personal invite (the old ones stay
revoked), audited; the person comes back through the normal join, under every rule."""

from __future__ import annotations

import pytest

from tests.http.world import build_world
from tests.live_media._session import People
from tests.plugins.gateway_server import Gateway

pytestmark = pytest.mark.media


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def test_host_lets_a_removed_child_back_in_with_a_new_invite(gateway: Gateway) -> None:
    world = await build_world(gateway)
    people = People(world)
    host = await people.join("Tina Tutor")
    await people.join("Oscar Observer")
    child = await people.join("Sam Green")
    host_token = people.token("Tina Tutor")
    removed = await host.device.post(
        "/v1/live/remove", {"token": host_token, "identity": child.identity}
    )
    assert removed.status == 200
    back = await host.device.post(
        "/v1/live/let-back-in", {"token": host_token, "identity": child.identity}
    )
    assert back.status == 201, back.body
    link = back.body["link"]
    assert link.endswith("#" + back.body["token"]) and "/join#" in link
    # The old link stays refused, even on the child's own device.
    old = await world.join("Sam Green", child.device)
    assert old.status == 403 and old.code == "invite_invalid"
    # The new link joins through the normal join (held or admitted by the two-adult rule).
    world.invites["Sam Green"] = back.body
    fresh = await world.join("Sam Green")
    assert fresh.status == 200, fresh.body
    assert fresh.body["participant"]["identity"] == child.identity
    # Audited once, by the host's masked identity, with ids only.
    let_back = await people.audit("participant.let_back_in")
    assert len(let_back) == 1
    assert let_back[0]["actor"] == host.identity
    assert let_back[0]["data"] == {"participant": world.participants["Sam Green"]}
    # A second "let back in" finds nobody removed.
    again = await host.device.post(
        "/v1/live/let-back-in", {"token": host_token, "identity": child.identity}
    )
    assert again.status == 409 and again.code == "conflict"
    assert (await gateway.services.store.verify_audit()).intact


async def test_only_the_standing_host_may_let_back_in(gateway: Gateway) -> None:
    world = await build_world(gateway)
    people = People(world)
    host = await people.join("Tina Tutor")
    observer = await people.join("Oscar Observer")
    child = await people.join("Sam Green")
    host_token = people.token("Tina Tutor")
    assert (
        await host.device.post("/v1/live/remove", {"token": host_token, "identity": child.identity})
    ).status == 200
    # A participant who is not the host: forbidden.
    refused = await observer.device.post(
        "/v1/live/let-back-in",
        {"token": people.token("Oscar Observer"), "identity": child.identity},
    )
    assert refused.status == 403 and refused.code == "forbidden"
    # Someone never removed: a conflict, nothing written.
    never = await host.device.post(
        "/v1/live/let-back-in", {"token": host_token, "identity": observer.identity}
    )
    assert never.status == 409 and never.code == "conflict"
    # A participant of another session (another organisation's): not found.
    other = await build_world(gateway)
    roster = await other.admin.get(f"/v1/sessions/{other.session['id']}/participants")
    stranger = next(p for p in roster.body["items"] if p["role"] == "child")
    elsewhere = await host.device.post(
        "/v1/live/let-back-in", {"token": host_token, "identity": stranger["masked_identity"]}
    )
    assert elsewhere.status == 404 and elsewhere.code == "not_found"
    # A revoked host cannot.
    revoked = await world.admin.post(f"/v1/invites/{world.invites['Tina Tutor']['id']}/revoke")
    assert revoked.status == 200
    late = await host.device.post(
        "/v1/live/let-back-in", {"token": host_token, "identity": child.identity}
    )
    assert late.status == 403 and late.code == "invite_revoked"
    assert await people.audit("participant.let_back_in") == []
