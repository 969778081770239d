"""Recording on LiveKit (issue 10, point 5), over real HTTP against the LiveKit DOUBLE (LiveKit
Egress is not built here): one participant egress per consenting participant and none for
anyone else, never a room composite; a withdrawal stops that person's egress within seconds;
an egress failing mid-recording, or ending without its file, seals that recording incomplete
and tells the host while the session goes on, whether or not its `egress_ended` arrives
(polling finds it); each file arrives in the gateway's vault encrypted, nothing plaintext on
disk."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from livekit.protocol import egress as eg

from gateway.adapters.recorder_livekit import UPLOAD_BUCKET
from gateway.domain.retention import RecordingState
from gateway.http.egress_uploads_api import EGRESS_UPLOADS
from gateway.http.live_api import LIVE
from tests.egress.conftest import WITHIN, OnLiveKit
from tests.live_media._session import stream
from tests.media._peers import wait_until

pytestmark = pytest.mark.media

ACTIVE = eg.EgressStatus.EGRESS_ACTIVE


async def everyone_in(lk: OnLiveKit, *children: str) -> None:
    await lk.arrive("Tina Tutor")
    await lk.arrive("Oscar Observer")
    for child in children:
        await lk.arrive(child)
        await lk.today(child, "yes")


async def recording(lk: OnLiveKit, *children: str) -> None:
    await lk.consent("Tina Tutor", "Oscar Observer", *children)
    await everyone_in(lk, *children)
    started = await lk.start()
    assert started.status == 200, started.body


async def test_only_consenting_participants_get_an_egress_of_their_own(lk: OnLiveKit) -> None:
    await recording(lk, "Sam Green")
    # Ada's guardian gave no recording consent: she joins while the recording runs.
    await lk.arrive("Ada Hill")
    await lk.today("Ada Hill", "yes")
    await asyncio.sleep(0.5)

    recorded = {"Tina Tutor", "Oscar Observer", "Sam Green"}
    for name in recorded:
        [egress] = lk.egress_of(name)
        assert egress.status == ACTIVE
        assert egress.WhichOneof("request") == "participant"  # never a room composite
        assert egress.participant.screen_share is False
        [output] = egress.participant.file_outputs
        assert output.s3.bucket == UPLOAD_BUCKET and output.s3.endpoint == lk.gateway.base
        assert output.disable_manifest  # no second file naming the room
    assert lk.egress_of("Ada Hill") == []
    assert len(lk.double.egresses) == 3
    assert all(e.WhichOneof("request") == "participant" for e in lk.double.egresses.values())
    assert lk.recording_now() == {lk.arrived[n].identity for n in recorded}
    # Egress calls carry roomRecord only (the double refuses them otherwise).
    assert ("Egress", "StartParticipantEgress") in lk.double.calls


async def test_a_withdrawal_stops_that_persons_egress_within_seconds(lk: OnLiveKit) -> None:
    await recording(lk, "Sam Green")
    [sam] = lk.egress_of("Sam Green")
    await lk.withdraw("Sam Green")
    await wait_until(lambda: sam.status != ACTIVE, timeout=WITHIN)
    assert lk.arrived["Sam Green"].identity not in lk.recording_now()
    # nobody else's recording is touched
    others = [e for n in ("Tina Tutor", "Oscar Observer") for e in lk.egress_of(n)]
    assert len(others) == 2 and all(e.status == ACTIVE for e in others)
    stopped = [c for c in lk.double.calls if c == ("Egress", "StopEgress")]
    assert len(stopped) == 1


@pytest.mark.parametrize("multipart", [False, True], ids=["one_put", "parts_reversed"])
async def test_each_file_reaches_the_vault_encrypted_and_nothing_plaintext_is_on_disk(
    lk: OnLiveKit, multipart: bool
) -> None:
    if multipart:  # parts arriving out of order wait in memory, then go in in order
        lk.double.upload_part_bytes = 64 * 1024
        lk.double.reverse_parts = True
    await recording(lk, "Sam Green")
    stopped = await lk.stop()
    assert stopped.status == 200, stopped.body

    entries = await lk.catalogue()
    assert len(entries) == 3
    assert all(e.state is RecordingState.COMPLETE for e in entries), entries
    for name in ("Tina Tutor", "Oscar Observer", "Sam Green"):
        [egress] = lk.egress_of(name)
        [entry] = await lk.entries_of(name)
        assert await lk.read_back(entry.id) == lk.double.uploaded[egress.egress_id]
    folder = Path(lk.gateway.settings.recordings_dir)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) == 3
    uploaded = list(lk.double.uploaded.values())
    for path in files:
        raw = path.read_bytes()
        assert b"ftyp" not in raw and b"\x1aE\xdf\xa3" not in raw  # no MP4, no WebM
        assert not any(data[100:164] in raw for data in uploaded)
    # every upload target is closed once its recording is sealed
    assert lk.gateway.app[EGRESS_UPLOADS].open_count() == 0


@pytest.mark.parametrize("webhooks", ["deliver", "drop"], ids=["egress_ended", "lost"])
async def test_an_egress_failing_mid_recording_seals_it_incomplete_and_tells_the_host(
    lk: OnLiveKit, webhooks: str
) -> None:
    await recording(lk, "Sam Green")
    host_events: list[dict[str, Any]] = []
    host = lk.arrived["Tina Tutor"]
    watching = asyncio.create_task(stream(host.device, lk.token("Tina Tutor"), host_events))
    try:
        lk.double.webhooks = webhooks  # "drop": its egress_ended never arrives
        [sam] = lk.egress_of("Sam Green")
        await lk.double.fail_egress(sam.egress_id)
        await wait_until(
            lambda: any(
                e.get("type") == "alert" and e.get("state") == "failed" for e in host_events
            ),
            timeout=WITHIN,
        )
        assert [e.state for e in await lk.entries_of("Sam Green")] == [RecordingState.INCOMPLETE]
        sam_identity = lk.arrived["Sam Green"].identity
        assert sam_identity not in lk.recording_now()
        # the session goes on: Sam is still in it, the others still recorded
        assert lk.gateway.app[LIVE]._registry.seat(sam_identity) is not None
        assert len(lk.recording_now()) == 2
        failed = await lk.world.admin.get("/v1/audit?kind=recording.failed")
        assert len(failed.body["items"]) == 1
    finally:
        watching.cancel()


async def test_an_egress_that_ends_without_its_file_is_sealed_incomplete(lk: OnLiveKit) -> None:
    lk.double.egress_uploads = "skip"  # egress says COMPLETE, the file never came
    await recording(lk, "Sam Green")
    began = asyncio.get_running_loop().time()
    host_events: list[dict[str, Any]] = []
    host = lk.arrived["Tina Tutor"]
    watching = asyncio.create_task(stream(host.device, lk.token("Tina Tutor"), host_events))
    try:
        stopped = await lk.stop()
        assert stopped.status == 200, stopped.body
        # found by the poll, not by waiting out the finish deadline (3 s) for each person
        assert asyncio.get_running_loop().time() - began < 3.0
        entries = await lk.catalogue()
        assert [e.state for e in entries] == [RecordingState.INCOMPLETE] * 3
        await wait_until(
            lambda: any(
                e.get("type") == "alert" and e.get("state") == "failed" for e in host_events
            ),
            timeout=WITHIN,
        )
    finally:
        watching.cancel()
