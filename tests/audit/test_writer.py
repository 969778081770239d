"""AuditedWriter: refusals are recorded, failures lose nothing else, the chain stays whole."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import func, insert, select

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.schema import organisations
from gateway.adapters.sql.writer import AuditedWriter, Job, WriteTx
from gateway.domain.audit import AuditEvent, ChainProblem, decode_entry
from gateway.domain.errors import ErrorCode, Refusal

from .conftest import KEY, ORG_A, AuditDb, event


async def kinds(db: AuditDb) -> list[str]:
    rows = await db.rows("SELECT entry FROM audit_log ORDER BY seq")
    return [decode_entry(bytes(raw)).kind for (raw,) in rows]


async def count_orgs(db: AuditDb) -> int:
    async with db.reader.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(organisations)) or 0)


def add_org(org_id: str, then_refuse: bool = False, then_fail: bool = False) -> Job[str]:
    def job(tx: WriteTx) -> str:
        tx.conn.execute(insert(organisations).values(id=org_id, name="Org", created_at=tx.at))
        tx.audit(AuditEvent(kind="org.created", actor="admin", org_id=org_id))
        if then_refuse:
            raise Refusal(ErrorCode.NOT_FOUND, "No such thing.")
        if then_fail:
            raise RuntimeError("a bug")
        return org_id

    return job


def refused(refusal: Refusal) -> AuditEvent:
    return AuditEvent(kind="request.refused", actor="admin", data={"code": refusal.code.value})


async def test_a_refusal_is_recorded_and_its_writes_undone(audit_db: AuditDb) -> None:
    with pytest.raises(Refusal) as caught:
        await audit_db.writer.write(add_org(ORG_A, then_refuse=True), on_refusal=refused)
    assert caught.value.code is ErrorCode.NOT_FOUND
    assert await count_orgs(audit_db) == 0
    assert await kinds(audit_db) == ["request.refused"]
    (entry,) = [
        decode_entry(bytes(r[0])) for r in await audit_db.rows("SELECT entry FROM audit_log")
    ]
    assert entry.data == {"code": "not_found"}
    assert (await audit_db.verify()).intact


async def test_a_refusal_without_an_event_records_nothing(audit_db: AuditDb) -> None:
    with pytest.raises(Refusal):
        await audit_db.writer.write(add_org(ORG_A, then_refuse=True))
    assert await kinds(audit_db) == []
    assert await count_orgs(audit_db) == 0


async def test_a_failing_job_loses_nothing_of_its_group(audit_db: AuditDb) -> None:
    # Queued together, so committed as one group.
    ids = [f"{i:032x}" for i in range(6)]
    jobs = [
        add_org(org_id, then_fail=(i == 2), then_refuse=(i == 4)) for i, org_id in enumerate(ids)
    ]
    results = await asyncio.gather(
        *(audit_db.writer.write(job, on_refusal=refused) for job in jobs), return_exceptions=True
    )
    assert [r if isinstance(r, str) else r.code for r in results] == [
        ids[0],
        ids[1],
        ErrorCode.INTERNAL,
        ids[3],
        ErrorCode.NOT_FOUND,
        ids[5],
    ]
    assert await count_orgs(audit_db) == 4
    assert await kinds(audit_db) == ["org.created"] * 3 + ["request.refused", "org.created"]
    ats = {row[0] for row in await audit_db.rows("SELECT at FROM audit_log")}
    assert len(ats) == 1  # one group, one instant
    assert (await audit_db.verify()).intact


async def test_nothing_is_accepted_when_stopped(audit_db: AuditDb) -> None:
    await audit_db.writer.stop()
    with pytest.raises(Refusal) as caught:
        await audit_db.writer.record(event(1))
    assert caught.value.code is ErrorCode.AUDIT_UNAVAILABLE


async def test_concurrent_writers_keep_every_chain_contiguous(audit_db: AuditDb) -> None:
    # Many tasks, and a second writer on its own engines (like a second gateway process).
    database = Database(audit_db.url)
    other = AuditedWriter(database, KEY, audit_db.clock, max_group=16)
    await other.start()
    try:

        async def task(n: int) -> None:
            for i in range(10):
                writer = other if (n + i) % 3 == 0 else audit_db.writer
                await writer.record(event(n * 100 + i))

        await asyncio.gather(*(task(n) for n in range(40)))
    finally:
        await other.stop()
        await database.dispose()
    seqs = [row[0] for row in await audit_db.rows("SELECT seq FROM audit_log ORDER BY seq")]
    if audit_db.dialect == "sqlite":  # one writer at a time, one chain
        assert seqs == list(range(1, 401))
    else:  # each process on a chain of its own: seqs unique (taken ahead: gaps allowed)
        assert len(set(seqs)) == 400
    for chain, links in await audit_db.rows("SELECT chain, count(*) FROM audit_log GROUP BY chain"):
        found = await audit_db.rows(
            "SELECT link FROM audit_log WHERE chain = :c ORDER BY link", c=chain
        )
        assert [row[0] for row in found] == list(range(1, links + 1))
    recorded = sorted(
        decode_entry(bytes(r[0])).data["i"]
        for r in await audit_db.rows("SELECT entry FROM audit_log")
    )
    assert recorded == sorted(n * 100 + i for n in range(40) for i in range(10))
    report = await audit_db.verify()
    assert report.intact, report.problem
    assert report.checked == 400


async def test_the_log_and_its_seals_grow_across_groups(audit_db: AuditDb) -> None:
    await audit_db.fill(2500, group=333)
    assert len(await audit_db.rows("SELECT segment FROM audit_seals")) == 2
    await audit_db.tamper("DELETE FROM audit_log WHERE seq = 2500")
    assert (await audit_db.verify()).problem == ChainProblem(2500, "cut")
    # the writer goes on from its head: the gap stays visible
    await audit_db.writer.record(event(1))
    assert (await audit_db.verify()).problem == ChainProblem(2500, "removed")


async def test_stop_finishes_the_group_in_flight(audit_db: AuditDb) -> None:
    started = threading.Event()  # jobs run off the event loop (SQLite: the writer's thread)

    def slow(tx: WriteTx) -> str:
        started.set()
        time.sleep(0.2)
        tx.audit(event(1))
        return "done"

    write = asyncio.ensure_future(audit_db.writer.write(slow))
    # taken from the queue: the queue is empty, the group is running
    assert await asyncio.to_thread(started.wait, 5)
    await audit_db.writer.stop()
    assert await asyncio.wait_for(write, 5) == "done"
    assert len(await audit_db.rows("SELECT seq FROM audit_log")) == 1
