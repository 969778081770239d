"""A writer whose registration may have lapsed (SQL unreachable longer than the heartbeat
window, or a stalled machine) never has its recording sealed under it, on either side: the
writer refuses every batch from the moment its registration could lapse (nothing more reaches
the file), and another process's recovery leaves the recording alone until the registration
lapsed a grace period ago. Whichever of them seals it afterwards, it is sealed once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from gateway.adapters.recording_vault import RecordingVault
from gateway.adapters.sql.processes import _DATABASE_NOW as DATABASE_NOW
from gateway.adapters.sql.processes import ProcessRegistry, gateway_processes
from gateway.adapters.sql.schema import audit_log
from gateway.domain.processes import GatewayProcess, LiveStateKind
from gateway.domain.registration_lease import RegistrationLease
from gateway.domain.retention import RecordingState
from gateway.services.recordings import RecordingHandle, RecordingsService, RegistrationLapsed
from tests.recordings.conftest import ORG, World

SESSION = "5" * 32
MARKER = b"lesson-frame:"
TTL = 30.0  # the writer's lease; its passing is played by the writer's own clock (`now`)


class Writer:
    """Process "writer-a": registered for real, writing under its lease, its clock by hand."""

    def __init__(self, world: World) -> None:
        self.now = 0.0
        self.lease = RegistrationLease(TTL)
        self.lease.renewed(self.now)
        self.registry = ProcessRegistry(
            world.database,
            GatewayProcess("writer-a", LiveStateKind.REDIS, "host-a", 1),
            TTL,
        )
        self.service = RecordingsService(
            world.catalogue,
            RecordingVault(world.storage),
            world.recordings._policies,
            world.clock,
            master_key=world.master_key,
            process_id="writer-a",
            may_write=lambda: self.lease.may_write(self.now),
        )

    async def renew(self) -> None:
        sent = self.now
        assert await self.registry.renew() is None
        self.lease.renewed(sent)


def recovery_elsewhere(world: World) -> RecordingsService:
    return RecordingsService(
        world.catalogue,
        RecordingVault(world.storage),
        world.recordings._policies,
        world.clock,
        master_key=world.master_key,
        process_id="recovering-b",
        writer_grace_seconds=TTL,
    )


def lapsed_ago(seconds: float) -> Callable[[Connection], None]:
    """Writer-a's registration as if it had lapsed `seconds` ago (on the database's clock)."""

    def job(conn: Connection) -> None:
        now = int(conn.execute(text(DATABASE_NOW[conn.dialect.name])).scalar_one())
        conn.execute(
            update(gateway_processes)
            .where(gateway_processes.c.process_id == "writer-a")
            .values(expires_at=now - round(seconds * 1_000_000))
        )

    return job


async def writing_until_lapse(world: World, writer: Writer) -> tuple[RecordingHandle, int]:
    await writer.registry.claim()
    handle = await writer.service.start(ORG, "staff:t", SESSION, "lesson_review", [], [])
    handle.writer.append(MARKER * 20_000)  # some chunks on disk, a tail in memory
    written = world.storage.size(handle.entry.id)
    assert written

    writer.now = TTL - 0.5  # no renewal got through: the registration could lapse any moment
    with pytest.raises(RegistrationLapsed):
        handle.writer.append(MARKER * 20_000)
    with pytest.raises(OSError):  # the final seal is a write too
        handle.writer.seal()
    assert await writer.service.finish_failed(handle, "gateway") is None  # stopped, not sealed
    assert writer.service.abandoned == {handle.entry.id}
    assert world.storage.size(handle.entry.id) == written  # not one byte after the lapse
    with pytest.raises(Exception, match="cannot reach its database"):
        await writer.service.start(ORG, "staff:t", SESSION, "lesson_review", [], [])
    assert (await world.recordings.get(ORG, handle.entry.id)).state is RecordingState.RECORDING
    return handle, written


async def test_a_writer_that_cannot_renew_stops_and_seals_once_it_can(world: World) -> None:
    writer = Writer(world)
    handle, _ = await writing_until_lapse(world, writer)
    elsewhere = recovery_elsewhere(world)

    # Another process's recovery: the writer is registered (or lapsed within the grace).
    assert await elsewhere.recover() == []
    await world.database.write(lapsed_ago(TTL / 2))
    assert await elsewhere.recover() == []
    assert (await world.recordings.get(ORG, handle.entry.id)).state is RecordingState.RECORDING

    # SQL answers again: the writer registers again and seals what it stopped writing.
    writer.now = TTL
    await writer.renew()
    assert await writer.service.retry_abandoned() == 1
    entry = await world.recordings.get(ORG, handle.entry.id)
    assert entry.state is RecordingState.INCOMPLETE and entry.chunks >= 1
    plain = b"".join(await world.recordings.read(ORG, handle.entry.id))
    assert plain and (MARKER * 20_000).startswith(plain)  # what was written before the lapse
    assert await elsewhere.recover() == []
    assert writer.service.abandoned == frozenset()


async def test_a_writer_that_never_comes_back_is_recovered_once_past_the_grace(
    world: World,
) -> None:
    writer = Writer(world)
    handle, _ = await writing_until_lapse(world, writer)
    elsewhere = recovery_elsewhere(world)

    await world.database.write(lapsed_ago(TTL + 1))
    (entry,) = await elsewhere.recover()
    assert entry.id == handle.entry.id and entry.state is RecordingState.INCOMPLETE

    # The writer comes back after all: the recording is sealed already, and stays as it is.
    writer.now = TTL
    await writer.renew()
    assert await writer.service.retry_abandoned() == 1
    again = await world.recordings.get(ORG, handle.entry.id)
    assert (again.state, again.size_bytes, again.chunks) == (
        entry.state,
        entry.size_bytes,
        entry.chunks,
    )

    def kinds(conn: Connection) -> list[str]:
        return list(conn.execute(select(audit_log.c.kind)).scalars())

    audited = await world.database.read(kinds)
    assert audited.count("recording.recovered") == 1 and "recording.failed" not in audited


async def test_a_registration_lapsed_long_ago_is_cleared_by_the_next_start(world: World) -> None:
    """The registry keeps a lapsed entry one more lease (recovery's grace), then drops it."""
    writer = Writer(world)
    await writer.registry.claim()
    await world.database.write(lapsed_ago(TTL / 2))
    other = ProcessRegistry(
        world.database, GatewayProcess("writer-b", LiveStateKind.REDIS, "host-b", 2), TTL
    )
    await other.claim()

    def ids(conn: Connection) -> list[str]:
        return list(conn.execute(text("SELECT process_id FROM gateway_processes")).scalars())

    assert sorted(await world.database.read(ids)) == ["writer-a", "writer-b"]
    await world.database.write(lapsed_ago(TTL + 1))
    await other.renew()
    await other.claim()
    assert await world.database.read(ids) == ["writer-b"]
