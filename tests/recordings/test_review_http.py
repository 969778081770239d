"""Reviewing recordings over real HTTP (SQLite and PostgreSQL, a real vault directory): the
desk's list and filters, a recording's page (consent snapshot, timeline with the recording's
interval), watching with a stated reason through a single-use playback link, and the bad input
of issue 9: a link reused, expired or used by another member of staff, path-like or guessed ids,
a tutor, another organisation's recording, a corrupted or truncated recording (never played).
Every view and every refusal is in the audit log."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from gateway.domain.retention import RecordingState
from gateway.domain.review import PLAYBACK_TTL
from gateway.http.recording_pages import RECORDINGS
from gateway.services.ports import Organisation
from gateway.services.recordings import RecordingsService
from tests.incidents.test_incidents_http import Case, build_case
from tests.plugins.gateway_server import ROOT, Gateway
from tests.recordings.test_hold_pages import recording_gateway
from tests.recordings.webm import CUES, duration, live_webm, make_webm, packets
from tests.staff.conftest import (
    Browser,
    Mailbox,
    audited,
    email_of,
    mailbox,
    new_browser,
    serve_gateway,
)

__all__ = ["mailbox", "recording_gateway"]

SOURCE = re.compile(r'src="(/staff/playback/[A-Za-z0-9_-]+)"')
REASON = "Concern 42: checking what was said at 10:05"


@dataclass
class Played:
    status: int
    body: bytes
    headers: dict[str, str]


async def fetch(browser: Browser, path: str) -> Played:
    async with browser.http.get(browser.base + path, allow_redirects=False) as resp:
        return Played(resp.status, await resp.read(), dict(resp.headers))


async def record(
    recordings: RecordingsService,
    org: Organisation,
    case: Case,
    media: bytes,
    consent_ids: list[str],
    person: str = "Sam Green",
) -> str:
    """A recording of one child's own tracks, written through the real vault writer."""
    world = case.world
    handle = await recordings.start(
        org,
        "staff:" + world.ids["Tina Tutor"],
        world.session["id"],
        "lesson_review",
        [("child", world.ids[person])],
        consent_ids,
    )
    for start in range(0, len(media), 10_000):
        handle.writer.append(media[start : start + 10_000])
    return (await recordings.finish(handle, "staff:" + world.ids["Tina Tutor"])).id


async def watch(browser: Browser, recording_id: str, reason: str = REASON) -> str:
    """State a reason on the recording's page: the player's playback link."""
    shown = await browser.get(f"/staff/recordings/{recording_id}")
    assert shown.status == 200, shown.text
    answer = await browser.post(
        f"/staff/recordings/{recording_id}/watch", {"csrf": shown.csrf, "reason": reason}
    )
    assert answer.status == 200, answer.text
    # What the page can promise: a single-use link cannot serve the ranges a jump needs.
    assert "Jumping ahead or back is not possible" in answer.text
    found = SOURCE.search(answer.text)
    assert found, answer.text
    return found.group(1)


async def signed_in(gateway: Gateway, mailbox: Mailbox, name: str) -> Browser:
    browser = await new_browser(gateway)
    assert (await browser.sign_in_with_link(mailbox, email_of(name))).status == 303
    return browser


async def test_the_dsl_lists_reads_the_snapshot_and_watches_once(
    recording_gateway: Gateway, mailbox: Mailbox
) -> None:
    gateway = recording_gateway
    case = await build_case(gateway)
    world = case.world
    org = await case.org()
    recordings = gateway.app[RECORDINGS]
    consent = await world.consent("Sam Green", "recording:lesson_review", "Gail Green", "guardian")
    assert consent.status == 201, consent.body
    media = live_webm(2.0)
    rid = await record(recordings, org, case, media, [consent.body["id"]])
    other_child = await record(recordings, org, case, media[:5000], [], person="Ada Hill")
    dsl = await signed_in(gateway, mailbox, "Dee Lead")

    # The list, filtered.
    listed = await dsl.get("/staff/recordings")
    assert listed.status == 200 and rid in listed.text and other_child in listed.text
    assert listed.headers["Cache-Control"] == "no-store"
    by_child = await dsl.get(f"/staff/recordings?child={world.ids['Sam Green']}")
    assert rid in by_child.text and other_child not in by_child.text
    session = world.session["id"]
    assert rid in (await dsl.get(f"/staff/recordings?session={session}&status=complete")).text
    assert rid not in (await dsl.get("/staff/recordings?status=held")).text
    assert rid not in (await dsl.get("/staff/recordings?purpose=safeguarding_review")).text
    assert rid not in (await dsl.get("/staff/recordings?since=2031-01-01")).text
    assert rid in (await dsl.get("/staff/recordings?since=2020-01-01&until=2031-01-01")).text
    for bad in (
        "status=lost",
        "child=..%2F..%2Fetc",
        "since=yesterday",
        "purpose=DROP%20TABLE",
        "after=1.2",
        "since=2026-12-02&until=2026-12-01",
    ):
        assert (await dsl.get(f"/staff/recordings?{bad}")).status == 400, bad
    assert await audited(gateway, "recording.list_viewed")

    # The page: people masked, the consent it was made under, the timeline with its interval.
    shown = await dsl.get(f"/staff/recordings/{rid}")
    assert shown.status == 200
    assert "Sam G." in shown.text and "Green" not in shown.text
    assert "Gail G." in shown.text  # who gave the consent, masked as the policy says
    assert "recording:lesson_review" in shown.text and "given" in shown.text
    assert 'data-kind="recorded"' in shown.text and "recording started" in shown.text

    # No reason, a reason of one word, no CSRF token: refused, no link issued.
    for form in ({"csrf": shown.csrf, "reason": ""}, {"csrf": shown.csrf, "reason": "x"}):
        assert (await dsl.post(f"/staff/recordings/{rid}/watch", form)).status == 400
    assert (await dsl.post(f"/staff/recordings/{rid}/watch", {"reason": REASON})).status == 403
    assert not await audited(gateway, "recording.playback_issued")

    # With a reason: the decrypted WebM, not stored by the browser, exactly what was recorded.
    link = await watch(dsl, rid)
    token = link.rsplit("/", 1)[1]
    assert rid not in token and session not in token
    played = await fetch(dsl, link)
    assert played.status == 200
    # The recording as written (live: no length, no seek index), remuxed for playback: the
    # same packets, now with its duration and a seek index near the front.
    assert duration(media) is None and CUES not in media
    assert packets(played.body) == packets(media)
    assert duration(played.body) == pytest.approx(2.0, abs=0.2)
    assert 0 <= played.body.find(CUES) < 1024
    assert played.headers["Content-Type"] == "video/webm"
    assert played.headers["Cache-Control"] == "no-store"
    assert played.headers["Content-Length"] == str(len(played.body))
    viewed = await audited(gateway, "recording.viewed")
    assert [e.data["recording"] for e in viewed] == [rid]
    assert viewed[0].data["reason"] == REASON and viewed[0].actor.startswith("staff:")
    issued = await audited(gateway, "recording.playback_issued")
    assert issued[0].data["reason"] == REASON

    # Reused: gone, audited, and nothing played.
    again = await fetch(dsl, link)
    assert again.status == 410 and again.body[:4] != media[:4]
    assert again.headers["Cache-Control"] == "no-store"
    # Expired: a link not used within its time.
    late = await watch(dsl, rid)
    gateway.clock.advance(PLAYBACK_TTL + timedelta(seconds=1))
    assert (await fetch(dsl, late)).status == 410
    faults = [e.data["fault"] for e in await audited(gateway, "recording.playback_refused")]
    assert faults == ["used", "expired"]

    # Used by another member of staff (an admin who may watch too): refused and burnt.
    leaked = await watch(dsl, rid)
    admin = await signed_in(gateway, mailbox, "Adam Admin")
    stolen = await fetch(admin, leaked)
    assert stolen.status == 403 and media[:4] not in stolen.body
    assert (await fetch(dsl, leaked)).status == 410  # burnt: the DSL asks again
    refused = await audited(gateway, "recording.playback_refused")
    assert refused[-2].data["fault"] == "other_staff"
    assert refused[-2].data["issued_to"] == f"staff:{world.ids['Dee Lead']}"
    # Not signed in at all: the link is not even looked at.
    anonymous = await new_browser(gateway)
    fresh = await watch(dsl, rid)
    assert (await fetch(anonymous, fresh)).status == 401
    assert (await fetch(dsl, fresh)).status == 200  # still good for whoever it was issued to
    assert len(await audited(gateway, "recording.viewed")) == 2

    # Path-like and guessed links and ids.
    for bad in ("..%2F..%2Fetc%2Fpasswd", "A" * 43, "x", "%00", "..", "%2e%2e"):
        answer = await fetch(dsl, f"/staff/playback/{bad}")
        # No route (a path) or no such link: never a byte of a recording.
        assert answer.status in (404, 410), bad
        assert b"\x1aE\xdf\xa3" not in answer.body
    for bad in ("..%2F..%2Fetc", "A" * 32, "f" * 32, rid + "0"):
        assert (await dsl.get(f"/staff/recordings/{bad}")).status == 404, bad
        page = await dsl.get("/staff/recordings")
        answer = await dsl.post(
            f"/staff/recordings/{bad}/watch", {"csrf": page.csrf, "reason": REASON}
        )
        assert answer.status == 404, bad


async def test_tutors_other_organisations_and_damaged_recordings_are_never_played(
    recording_gateway: Gateway, mailbox: Mailbox
) -> None:
    gateway = recording_gateway
    case = await build_case(gateway)
    org = await case.org()
    recordings = gateway.app[RECORDINGS]
    media = make_webm(1.0)
    rid = await record(recordings, org, case, media, [])
    dsl = await signed_in(gateway, mailbox, "Dee Lead")

    # A tutor (the policy's lesson_review lists only admins besides the DSL): no page, no link.
    tutor = await signed_in(gateway, mailbox, "Tina Tutor")
    assert (await tutor.get(f"/staff/recordings/{rid}")).status == 403
    assert (await tutor.get("/staff/recordings")).status == 403
    home = await tutor.get("/staff")
    tried = await tutor.post(
        f"/staff/recordings/{rid}/watch", {"csrf": home.csrf, "reason": REASON}
    )
    assert tried.status == 403
    refused = await audited(gateway, "recording.view_refused")
    assert {e.data["why"] for e in refused} == {"role"}
    assert {e.data["step"] for e in refused} == {"page", "open"}
    # The DSL's link in the tutor's browser: refused too.
    link = await watch(dsl, rid)
    assert (await fetch(tutor, link)).status == 403

    # Another organisation's recording: not found, whoever asks.
    other, _ = await gateway.services.organisations.create("Other org")
    assert isinstance(other, Organisation)
    theirs = await recordings.start(other, "staff:x", "s" * 32, "lesson_review", [], [])
    theirs.writer.append(media)
    await recordings.finish(theirs, "staff:x")
    page = await dsl.get("/staff/recordings")
    assert theirs.entry.id not in page.text
    assert (await dsl.get(f"/staff/recordings/{theirs.entry.id}")).status == 404
    answer = await dsl.post(
        f"/staff/recordings/{theirs.entry.id}/watch", {"csrf": page.csrf, "reason": REASON}
    )
    assert answer.status == 404

    # A corrupted recording (one byte flipped in the ciphertext) and a truncated one: detected
    # before the first byte is sent, never played, audited.
    storage_path = gateway.settings.recordings_dir
    for damage in ("flip", "truncate"):
        damaged = await record(recordings, org, case, make_webm(1.0), [])
        path = storage_path / f"{damaged}.sgwrec"
        data = bytearray(path.read_bytes())
        if damage == "flip":
            data[len(data) // 2] ^= 0x01
        else:
            del data[-20:]
        path.write_bytes(bytes(data))
        played = await fetch(dsl, await watch(dsl, damaged))
        assert played.status == 422, damage
        assert b"\x1aE\xdf\xa3" not in played.body  # not a byte of the WebM
        assert played.headers["Content-Type"].startswith("text/html")
    faults = [e.data for e in await audited(gateway, "recording.playback_refused")]
    assert [f["fault"] for f in faults if f.get("fault") == "corrupt"] == ["corrupt", "corrupt"]
    assert not [e for e in await audited(gateway, "recording.viewed")]

    # A destroyed recording: gone; a recording still being written: not yet.
    writing = await recordings.start(
        org, "staff:t", case.world.session["id"], "lesson_review", [], []
    )
    shown = await dsl.get(f"/staff/recordings/{writing.entry.id}")
    assert shown.status == 200 and "still being made" in shown.text
    answer = await dsl.post(
        f"/staff/recordings/{writing.entry.id}/watch", {"csrf": shown.csrf, "reason": REASON}
    )
    assert answer.status == 409
    writing.writer.seal()


@pytest.mark.parametrize("count", [53])
async def test_the_list_is_paged_newest_first(
    recording_gateway: Gateway, mailbox: Mailbox, count: int
) -> None:
    gateway = recording_gateway
    case = await build_case(gateway)
    org = await case.org()
    recordings = gateway.app[RECORDINGS]
    made = []
    for _ in range(count):
        gateway.clock.advance(timedelta(seconds=1))
        made.append(await record(recordings, org, case, b"x", []))
    dsl = await signed_in(gateway, mailbox, "Dee Lead")
    first = await dsl.get("/staff/recordings")
    ids = re.findall(r'<tr data-id="([0-9a-f]{32})"', first.text)
    assert ids == list(reversed(made))[:50]
    found = re.search(r'id="next-page" href="([^"]+)"', first.text)
    assert found
    second = await dsl.get(found.group(1).replace("&amp;", "&"))
    rest = re.findall(r'<tr data-id="([0-9a-f]{32})"', second.text)
    assert rest == list(reversed(made))[50:]
    assert 'id="next-page"' not in second.text
    assert (await recordings.get(org, made[0])).state is RecordingState.COMPLETE


async def test_damage_found_while_streaming_cuts_the_stream(
    recording_gateway: Gateway, mailbox: Mailbox
) -> None:
    """The file changes after it was verified (between the check and the last chunk sent): the
    response never completes (fewer bytes than its length), and the failure is audited."""
    gateway = recording_gateway
    case = await build_case(gateway)
    org = await case.org()
    recordings = gateway.app[RECORDINGS]
    # Larger than what loopback's socket buffers hold, so the server is still reading the file
    # when it is damaged.
    media = os.urandom(24 * 1024 * 1024)
    rid = await record(recordings, org, case, media, [])
    dsl = await signed_in(gateway, mailbox, "Dee Lead")
    link = await watch(dsl, rid)
    path = gateway.settings.recordings_dir / f"{rid}.sgwrec"
    received = bytearray()
    async with dsl.http.get(dsl.base + link) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(media))
        received += await resp.content.readexactly(64 * 1024)
        with path.open("r+b") as damaged:  # one bit of the last chunk's ciphertext
            damaged.seek(-40, os.SEEK_END)
            byte = damaged.read(1)
            damaged.seek(-40, os.SEEK_END)
            damaged.write(bytes([byte[0] ^ 0x01]))
        with pytest.raises(aiohttp.ClientPayloadError):
            while chunk := await resp.content.read(1 << 20):
                received += chunk
    assert len(received) < len(media)
    assert bytes(received) == media[: len(received)]  # what was sent had been authenticated
    failed = await audited(gateway, "recording.playback_failed")
    assert [e.data["recording"] for e in failed] == [rid]


@pytest.fixture
async def tutor_policy_gateway(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> AsyncIterator[Gateway]:
    """A policy whose lesson reviews the session's own tutor may watch."""
    policy = tmp_path / "tutors-watch.toml"
    policy.write_text(
        (ROOT / "policies" / "default.toml")
        .read_text()
        .replace("audio_only = false", 'audio_only = false\nviewers = ["admin", "tutor"]')
    )
    key = tmp_path / "master.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    async with serve_gateway(
        database_url,
        tmp_path,
        mailbox.port,
        policy_path=policy,
        recordings_dir=tmp_path / "recordings",
        recording_master_key_file=key,
    ) as gateway:
        yield gateway


async def test_a_tutor_watches_their_own_lesson_when_the_policy_allows(
    tutor_policy_gateway: Gateway, mailbox: Mailbox
) -> None:
    gateway = tutor_policy_gateway
    case = await build_case(gateway)
    await case.world.staff("Tom Other", ["tutor"])
    org = await case.org()
    media = make_webm(1.0)
    rid = await record(gateway.app[RECORDINGS], org, case, media, [])

    tina = await signed_in(gateway, mailbox, "Tina Tutor")  # hosted the session
    played = await fetch(tina, await watch(tina, rid))
    assert played.status == 200 and packets(played.body) == packets(media)
    shown = await tina.get(f"/staff/recordings/{rid}")
    assert "Place the hold" not in shown.text  # a tutor watches; the DSL decides on holds
    assert (await tina.get("/staff/recordings")).status == 403  # the desk's list is not theirs
    [viewed] = await audited(gateway, "recording.viewed")
    assert viewed.data["as"] == "tutor"

    # Another tutor (not their session) and an observer: refused, audited.
    tom = await signed_in(gateway, mailbox, "Tom Other")
    assert (await tom.get(f"/staff/recordings/{rid}")).status == 403
    oscar = await signed_in(gateway, mailbox, "Oscar Observer")
    assert (await oscar.get(f"/staff/recordings/{rid}")).status == 403
    why = [e.data["why"] for e in await audited(gateway, "recording.view_refused")]
    assert why == ["not_their_session", "role"]
