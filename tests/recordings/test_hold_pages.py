"""The safeguarding hold over real HTTP (SQLite and PostgreSQL): a concern reported in a
session holds its recordings at once; the signed-in DSL sees the recording (people masked) and
lifts or places a hold with a reason (CSRF, same origin); a tutor may not; ids that are not a
recording, or another organisation's, are 404; each decision audited."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app import RUNTIME
from gateway.domain.retention import RecordingState
from gateway.http.recording_pages import RECORDINGS
from gateway.services.ports import Organisation
from tests.incidents.test_incidents_http import build_case
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Mailbox, audited, email_of, mailbox, new_browser, serve_gateway

__all__ = ["mailbox"]


@pytest.fixture
async def recording_gateway(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> AsyncIterator[Gateway]:
    key = tmp_path / "master.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    async with serve_gateway(
        database_url,
        tmp_path,
        mailbox.port,
        recordings_dir=tmp_path / "recordings",
        recording_master_key_file=key,
        retention_seconds=0.2,  # the job's round, so "within minutes" is a fraction here
    ) as gateway:
        yield gateway


async def test_concern_holds_and_the_dsl_decides(
    recording_gateway: Gateway, mailbox: Mailbox
) -> None:
    gateway = recording_gateway
    case = await build_case(gateway)
    world = case.world
    org = await case.org()
    recordings = gateway.app[RECORDINGS]
    handle = await recordings.start(
        org,
        "staff:" + world.ids["Tina Tutor"],
        world.session["id"],
        "lesson_review",
        [("child", world.ids["Sam Green"]), ("staff", world.ids["Tina Tutor"])],
        [],
    )
    handle.writer.append(b"frames")
    rid = (await recordings.finish(handle, "staff:t")).id

    await case.report()  # a concern in the session: its recordings are held at once

    entry = await recordings.get(org, rid)
    assert entry.held and entry.hold_reason is not None and "concern" in entry.hold_reason

    dsl = await new_browser(gateway)
    assert (await dsl.sign_in_with_link(mailbox, email_of("Dee Lead"))).status == 303
    shown = await dsl.get(f"/staff/recordings/{rid}")
    assert shown.status == 200, shown.text
    assert "Held:" in shown.text and "Sam G." in shown.text and "Green" not in shown.text
    assert shown.headers["Cache-Control"] == "no-store"

    # No CSRF token, or another origin: refused, nothing changes.
    assert (
        await dsl.post(f"/staff/recordings/{rid}/hold", {"action": "lift", "reason": "x"})
    ).status == 403
    forged = await dsl.post(
        f"/staff/recordings/{rid}/hold",
        {"csrf": shown.csrf, "action": "lift", "reason": "x"},
        origin="https://evil.example",
    )
    assert forged.status == 403
    assert (await recordings.get(org, rid)).held
    # An empty reason is refused.
    empty = await dsl.post(
        f"/staff/recordings/{rid}/hold", {"csrf": shown.csrf, "action": "lift", "reason": "  "}
    )
    assert empty.status == 400
    lifted = await dsl.post(
        f"/staff/recordings/{rid}/hold",
        {"csrf": shown.csrf, "action": "lift", "reason": "Reviewed with the police: not needed"},
    )
    assert lifted.status == 303 and lifted.location == f"/staff/recordings/{rid}"
    assert not (await recordings.get(org, rid)).held
    kinds = [e.data for e in await audited(gateway, "recording.hold_lifted")]
    assert kinds and kinds[0]["recording"] == rid

    # A tutor may neither see nor hold; path-like and unknown ids, another org's: 404.
    tutor = await new_browser(gateway)
    assert (await tutor.sign_in_with_link(mailbox, email_of("Tina Tutor"))).status == 303
    assert (await tutor.get(f"/staff/recordings/{rid}")).status == 403
    home = await tutor.get("/staff")
    held = await tutor.post(
        f"/staff/recordings/{rid}/hold", {"csrf": home.csrf, "action": "place", "reason": "mine"}
    )
    assert held.status == 403
    assert not (await recordings.get(org, rid)).held
    for bad in ("..%2F..%2Fetc", "A" * 32, "f" * 32):
        assert (await dsl.get(f"/staff/recordings/{bad}")).status == 404
    other, _ = await gateway.services.organisations.create("Other org")
    assert isinstance(other, Organisation)
    theirs = await recordings.start(other, "staff:x", "s" * 32, "lesson_review", [], [])
    theirs.writer.seal()
    assert (await dsl.get(f"/staff/recordings/{theirs.entry.id}")).status == 404


async def _outbox(gateway: Gateway) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from gateway.adapters.sql.schema import outbox

    def read(conn):  # type: ignore[no-untyped-def]
        return sorted((r.kind, r.recipient) for r in conn.execute(select(outbox)))

    return await gateway.app[RUNTIME].database.read(read)  # type: ignore[union-attr]


async def test_a_withdrawal_over_the_api_destroys_within_a_round_unless_held(
    recording_gateway: Gateway,
) -> None:
    gateway = recording_gateway
    case = await build_case(gateway)
    world = case.world
    org = await case.org()
    recordings = gateway.app[RECORDINGS]

    async def record() -> str:
        handle = await recordings.start(
            org,
            "staff:t",
            world.session["id"],
            "lesson_review",
            [("child", world.ids["Sam Green"])],
            [],
        )
        handle.writer.append(b"frames")
        return (await recordings.finish(handle, "staff:t")).id

    free, held = await record(), await record()
    await recordings.set_hold(org, "staff:dsl", held, True, "under review")
    answer = await world.consent(
        "Sam Green", "recording:lesson_review", "Gail Green", "guardian", action="withdraw"
    )
    assert answer.status == 201, answer.body
    deadline = asyncio.get_running_loop().time() + 10
    while (await recordings.get(org, free)).state is not RecordingState.DESTROYED:
        assert asyncio.get_running_loop().time() < deadline, "not destroyed within 10 s"
        await asyncio.sleep(0.1)
    assert (await recordings.get(org, held)).state is RecordingState.COMPLETE
    queued = await _outbox(gateway)
    assert ("recording.destroyed", "guardian") in queued  # the guardian's confirmation
    assert ("destruction_waiting_for_dsl", "dsl") in queued  # the DSL decides on the held one
    requested = await audited(gateway, "recording.destruction_requested")
    assert requested and requested[0].data["held"] == [held]
