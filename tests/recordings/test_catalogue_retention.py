"""The catalogue and destruction on real databases and real files: retention destroys what is
due (key, file, record) idempotently and resumably; holds block it; a withdrawal destroys
unless held (then the DSL is told); the guardian's confirmation is queued."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.adapters.recording_vault import RecordingVault
from gateway.adapters.sql.schema import outbox, recording_destructions
from gateway.domain.errors import Refusal, Unavailable
from gateway.domain.retention import DestructionReason, RecordingState
from gateway.services.recordings import RecordingsService
from tests.recordings.conftest import ORG, World

CHILD = "c" * 32
TUTOR = "t" * 32
GUARDIAN = "g" * 32
SESSION = "s" * 32
MARKER = b"PLAINTEXT-MARKER-lesson-frame"


async def _record(world: World, purpose: str = "lesson_review", data: bytes = MARKER * 5000) -> str:
    handle = await world.recordings.start(
        ORG, "staff:" + TUTOR, SESSION, purpose, [("child", CHILD), ("staff", TUTOR)], ["r1", "r2"]
    )
    handle.writer.append(data)
    entry = await world.recordings.finish(handle, "staff:" + TUTOR)
    assert entry.state is RecordingState.COMPLETE
    return entry.id


async def _outbox_kinds(world: World) -> list[tuple[str, str]]:
    def read(conn):  # type: ignore[no-untyped-def]
        return [(r.kind, r.recipient) for r in conn.execute(select(outbox))]

    return sorted(await world.database.read(read))


async def test_catalogue_holds_what_a_recording_was_made_under(world: World) -> None:
    rid = await _record(world)
    entry = await world.recordings.get(ORG, rid)
    assert entry.purpose == "lesson_review"
    assert entry.participants == (("child", CHILD), ("staff", TUTOR))
    assert entry.consent_record_ids == ("r1", "r2") and len(entry.consent_hash) == 64
    assert entry.retain_until == entry.started_at + timedelta(days=30)  # the policy's line
    assert entry.size_bytes == world.storage.size(rid) and entry.chunks >= 1
    assert b"".join(await world.recordings.read(ORG, rid)) == MARKER * 5000
    assert MARKER not in world.storage.path(rid).read_bytes()


async def test_a_purpose_the_policy_does_not_list_is_refused(world: World) -> None:
    with pytest.raises(Refusal) as refused:
        await world.recordings.start(ORG, "staff:x", SESSION, "marketing", [], [])
    assert refused.value.code.value == "purpose_unknown"
    assert list(world.storage.ids()) == []


async def test_no_master_key_no_recording_but_the_rest_runs(world: World) -> None:
    rid = await _record(world)
    keyless = RecordingsService(
        world.catalogue,
        RecordingVault(world.storage),
        world.recordings._policies,
        world.clock,
        master_key=None,
        master_key_problem="recording is off: GATEWAY_RECORDING_MASTER_KEY_FILE is not set",
    )
    with pytest.raises(Unavailable, match="GATEWAY_RECORDING_MASTER_KEY_FILE"):
        await keyless.start(ORG, "staff:x", SESSION, "lesson_review", [], [])
    assert (await keyless.get(ORG, rid)).state is RecordingState.COMPLETE
    await keyless.set_hold(ORG, "staff:dsl", rid, True, "concern under review")
    assert len(list(world.storage.ids())) == 1


async def test_retention_destroys_due_key_then_file_then_record(world: World) -> None:
    due = await _record(world)
    world.clock.advance(timedelta(days=20))
    later = await _record(world)  # retained 10 days longer
    world.clock.advance(timedelta(days=10, seconds=1))
    seen: list[tuple[int, int]] = []
    assert await world.retention.run_once(lambda d, t: seen.append((d, t))) == 1
    assert seen[0] == (0, 1) and seen[-1] == (1, 1)
    assert (await world.recordings.get(ORG, due)).state is RecordingState.DESTROYED
    assert world.storage.size(due) is None
    assert await world.catalogue.wrapped_key(due) is None
    record = await world.catalogue.destruction(ORG.id, due)
    assert record is not None and record.reason is DestructionReason.RETENTION
    assert record.key_destroyed and record.file_destroyed and record.destroyed_by == "job:retention"
    assert (await world.recordings.get(ORG, later)).state is RecordingState.COMPLETE
    assert await world.retention.run_once() == 0  # idempotent


async def test_destruction_killed_after_the_key_is_finished_next_run(world: World) -> None:
    rid = await _record(world)
    entry = await world.recordings.get(ORG, rid)
    # A run that died right after step 1 (the key): the file and the record are left.
    await world.catalogue.destroy_keys([(rid, DestructionReason.RETENTION, "job:retention")], [])
    # A hold placed since cannot stop it: the recording cannot be read any more.
    with pytest.raises(Refusal):
        await world.recordings.set_hold(ORG, "staff:dsl", rid, True, "too late")
    assert world.storage.size(rid) is not None
    assert entry.retain_until > world.clock.now()
    assert await world.retention.run_once() == 1
    assert world.storage.size(rid) is None
    assert (await world.catalogue.destruction(ORG.id, rid)) is not None
    # Killed after step 2 (the file gone, no record): also finished.
    rid2 = await _record(world)
    await world.catalogue.destroy_keys([(rid2, DestructionReason.REQUEST, "staff:admin")], [])
    world.storage.delete(rid2)
    assert await world.retention.run_once() == 1
    record = await world.catalogue.destruction(ORG.id, rid2)
    assert record is not None and record.reason is DestructionReason.REQUEST


async def test_destruction_records_are_append_only(world: World) -> None:
    rid = await _record(world)
    world.clock.advance(timedelta(days=31))
    await world.retention.run_once()

    def tamper(conn):  # type: ignore[no-untyped-def]
        conn.execute(update(recording_destructions).values(reason="request"))

    def erase(conn):  # type: ignore[no-untyped-def]
        conn.execute(delete(recording_destructions))

    for attempt in (tamper, erase):
        with pytest.raises((DBAPIError, IntegrityError)):
            await world.database.write(attempt)
    assert (await world.catalogue.destruction(ORG.id, rid)) is not None


async def test_a_hold_survives_retention_until_lifted(world: World) -> None:
    rid = await _record(world)
    await world.recordings.set_hold(ORG, "staff:dsl", rid, True, "concern under review")
    world.clock.advance(timedelta(days=365))
    assert await world.retention.run_once() == 0
    assert (await world.recordings.get(ORG, rid)).held
    with pytest.raises(Refusal):
        await world.recordings.set_hold(ORG, "staff:dsl", rid, False, "   ")
    await world.recordings.set_hold(ORG, "staff:dsl", rid, False, "review finished")
    assert await world.retention.run_once() == 1


async def test_withdrawal_destroys_unless_held_and_tells_the_dsl(world: World) -> None:
    free = await _record(world)
    other = await _record(world, purpose="safeguarding_review")
    held = await _record(world)
    await world.recordings.set_hold(ORG, "staff:dsl", held, True, "concern under review")
    marked, waiting = await world.retention.consent_withdrawn(
        ORG.id, CHILD, "lesson_review", "guardian:" + GUARDIAN
    )
    assert set(marked) == {free} and waiting == [held]
    assert ("destruction_waiting_for_dsl", "dsl") in await _outbox_kinds(world)
    # Within a run of the job (a minute): destroyed, the guardian's confirmation queued.
    assert await world.retention.run_once() == 1
    record = await world.catalogue.destruction(ORG.id, free)
    assert record is not None and record.reason is DestructionReason.CONSENT_WITHDRAWN
    assert ("recording.destroyed", "guardian") in await _outbox_kinds(world)
    assert (await world.recordings.get(ORG, other)).state is RecordingState.COMPLETE
    assert (await world.recordings.get(ORG, held)).state is RecordingState.COMPLETE
    # The DSL lifts the hold: the withdrawal takes effect.
    await world.recordings.set_hold(ORG, "staff:dsl", held, False, "no longer needed")
    assert await world.retention.run_once() == 1
    assert (await world.recordings.get(ORG, held)).state is RecordingState.DESTROYED


async def test_a_concern_holds_the_sessions_recordings(world: World) -> None:
    rid = await _record(world)
    assert await world.recordings.hold_session(ORG.id, SESSION, "system:concern", "concern") == 1
    world.clock.advance(timedelta(days=365))
    assert await world.retention.run_once() == 0
    assert (await world.recordings.get(ORG, rid)).hold_reason == "concern"


async def test_another_organisations_recording_is_not_found(world: World) -> None:
    from gateway.services.ports import Organisation

    rid = await _record(world)
    with pytest.raises(Refusal) as refused:
        await world.recordings.get(Organisation("9" * 32, "Other", None), rid)
    assert refused.value.code.value == "not_found"


async def test_incomplete_recordings_destroyed_when_the_policy_says_so(
    world: World, tmp_path: Path
) -> None:
    from gateway.domain.policy_text import render_policy
    from gateway.services.policies import PolicyBook, load_policy_file
    from tests.plugins.gateway_server import ROOT

    text = (ROOT / "policies" / "default.toml").read_text(encoding="utf-8")
    assert 'after_crash = "keep_incomplete"' in text
    (tmp_path / "destroy.toml").write_text(
        text.replace('after_crash = "keep_incomplete"', 'after_crash = "destroy"'),
        encoding="utf-8",
    )
    policy = load_policy_file(tmp_path / "destroy.toml")
    assert "what was recorded is destroyed" in " ".join(render_policy(policy).split())
    destroying = RecordingsService(
        world.catalogue,
        RecordingVault(world.storage),
        PolicyBook(policy),
        world.clock,
        master_key=world.master_key,
        organisations=world.store,
    )
    handle = await destroying.start(ORG, "staff:t", SESSION, "lesson_review", [], [])
    handle.writer.append(MARKER * 5000)
    handle.writer.abort()  # the disk filled, or the writer died
    (entry,) = await destroying.recover()
    assert entry.state is RecordingState.INCOMPLETE
    assert entry.destruction_requested is DestructionReason.INCOMPLETE
    assert await world.retention.run_once() == 1
    record = await world.catalogue.destruction(ORG.id, entry.id)
    assert record is not None and record.reason is DestructionReason.INCOMPLETE


async def test_recovery_leaves_recordings_of_live_processes_alone(world: World) -> None:
    from sqlalchemy import insert

    from gateway.adapters.sql.processes import gateway_processes

    other = RecordingsService(
        world.catalogue,
        RecordingVault(world.storage),
        world.recordings._policies,
        world.clock,
        master_key=world.master_key,
        process_id="alive-elsewhere",
    )
    handle = await other.start(ORG, "staff:t", SESSION, "lesson_review", [], [])
    handle.writer.append(MARKER * 5000)

    def alive(conn):  # type: ignore[no-untyped-def]
        conn.execute(
            insert(gateway_processes).values(
                process_id="alive-elsewhere",
                live_state="memory",
                host="h",
                pid=1,
                expires_at=2**62,
            )
        )

    await world.database.write(alive)
    assert await world.recordings.recover() == []  # still being written over there
    assert (await world.recordings.get(ORG, handle.entry.id)).state is RecordingState.RECORDING

    def dead(conn):  # type: ignore[no-untyped-def]
        conn.execute(delete(gateway_processes))

    await world.database.write(dead)
    (entry,) = await world.recordings.recover()
    assert entry.id == handle.entry.id and entry.state is RecordingState.INCOMPLETE
    handle.writer.abort()
