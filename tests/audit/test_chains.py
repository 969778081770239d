"""Several chains (PostgreSQL): processes commit side by side, each group on a chain no other
transaction holds, and `verify` checks every chain together: an edit, a move between chains, a
chain deleted or cut are all found; a witness covers every chain's head."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.adapters.audit_witness import WITNESS_FILE, AuditWitnessJob, FileWitness
from gateway.adapters.sql.audit_reader import list_entries
from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.migrate import migrate
from gateway.adapters.sql.writer import AuditedWriter, WriteTx
from gateway.clock import FrozenClock
from gateway.domain.audit import (
    AuditEntry,
    ChainProblem,
    chain_genesis,
    parse_heads,
    parse_witness,
)
from gateway.domain.audit_cursor import AuditCursor

from .conftest import KEY, ORG_A, AuditDb, event

HOLD_SECONDS = 1.0


@pytest.fixture
async def processes(postgres_url: str) -> AsyncIterator[tuple[AuditDb, list[AuditedWriter]]]:
    """Three writers on one PostgreSQL database, each with its own connection pool, as three
    gateway processes have: the first's as an AuditDb, the others'."""
    first = Database(postgres_url)
    await migrate(first.writer_engine)
    databases = [first, Database(postgres_url), Database(postgres_url)]
    clock = FrozenClock(datetime(2025, 3, 1, 16, 0, tzinfo=UTC))
    writers = [AuditedWriter(db, KEY, clock) for db in databases]
    for writer in writers:
        await writer.start()
    try:
        yield AuditDb(postgres_url, first, writers[0], clock), writers[1:]
    finally:
        for writer in writers:
            await writer.stop()
        for db in databases:
            await db.dispose()


async def held_write(writer: AuditedWriter, numbers: Sequence[int]) -> asyncio.Task[None]:
    """Start a write whose transaction stays open HOLD_SECONDS, holding its chain's head row;
    return once its group holds the row."""
    holding = threading.Event()

    def job(tx: WriteTx) -> None:
        holding.set()  # the group took its chain before running its jobs
        tx.conn.execute(text("SELECT pg_sleep(:s)"), {"s": HOLD_SECONDS})
        for i in numbers:
            tx.audit(event(i))

    task = asyncio.create_task(writer.write(job))
    while not holding.is_set():
        await asyncio.sleep(0.01)
    return task


async def on_three_chains(db: AuditDb, others: list[AuditedWriter]) -> None:
    """Entries on chains 1, 2 and 3: while the first process's write holds chain 1 the second
    commits (chain 2); then while the first two hold chains 1 and 2, the third commits."""
    await db.fill(5)
    holding = await held_write(db.writer, range(6, 9))  # chain 1
    for i in range(9, 12):
        await others[0].record(event(i))  # chain 2
    await holding
    held = [await held_write(db.writer, range(12, 14))]  # chain 1
    held.append(await held_write(others[0], range(14, 16)))  # chain 2
    for i in range(16, 19):
        await others[1].record(event(i))  # chain 3
    await asyncio.gather(*held)
    await db.fill(4)
    assert set(await chains_of(db)) == {1, 2, 3}


async def chains_of(db: AuditDb) -> dict[int, int]:
    rows = await db.rows("SELECT chain, count(*) FROM audit_log GROUP BY chain ORDER BY chain")
    return {int(chain): int(count) for chain, count in rows}


async def test_a_process_commits_while_another_holds_a_chain(
    processes: tuple[AuditDb, list[AuditedWriter]],
) -> None:
    db, others = processes
    await db.fill(3)
    holding = await held_write(db.writer, range(4, 7))  # the first process's holds chain 1
    started = time.monotonic()
    for i in range(7, 17):
        await others[0].record(event(i))
    waited = time.monotonic() - started
    assert not holding.done()
    # Ten commits of the second process did not wait for the first one's: a chain of its own.
    assert waited < HOLD_SECONDS, waited
    await holding
    assert await chains_of(db) == {1: 6, 2: 10}
    report = await db.verify()
    assert report.intact, report.problem
    assert report.checked == 16
    assert [(h.chain, h.seq) for h in report.heads] == [(1, 6), (2, 10)]
    assert parse_heads(report.head) == list(report.heads)  # what --expect-head takes back


async def test_two_processes_writing_at_once_verify(
    processes: tuple[AuditDb, list[AuditedWriter]],
) -> None:
    db, others = processes

    async def writes(writer: AuditedWriter, first: int) -> None:
        for start in range(first, first + 400, 8):
            await asyncio.gather(*(writer.record(event(i)) for i in range(start, start + 8)))

    await asyncio.gather(writes(db.writer, 1), writes(others[0], 1001))
    report = await db.verify()
    assert report.intact, report.problem
    assert report.checked == 800
    # Every entry once, seqs unique and growing with each chain's links.
    rows = await db.rows("SELECT chain, link, seq FROM audit_log ORDER BY chain, link")
    assert len({seq for _, _, seq in rows}) == 800
    for chain in {c for c, _, _ in rows}:
        seqs = [seq for c, _, seq in rows if c == chain]
        assert seqs == sorted(seqs)


async def test_an_edit_in_one_chain_is_named_with_its_chain(
    processes: tuple[AuditDb, list[AuditedWriter]],
) -> None:
    db, others = processes
    await on_three_chains(db, others)
    assert set(await chains_of(db)) == {1, 2, 3}
    assert (await db.verify()).intact
    await db.tamper(
        "UPDATE audit_log SET entry = convert_to(replace(convert_from(entry, 'UTF8'),"
        " 'staff', 'stuff'), 'UTF8') WHERE chain = 2 AND link = 2"
    )
    problem = (await db.verify()).problem
    assert problem == ChainProblem(2, "edited", chain=2)
    ((seq,),) = await db.rows("SELECT seq FROM audit_log WHERE chain = 2 AND link = 2")
    assert problem.describe() == f"chain 2: entry {seq} was edited"  # the seq the API shows


async def test_an_entry_moved_to_another_chain_is_found(
    processes: tuple[AuditDb, list[AuditedWriter]],
) -> None:
    db, others = processes
    await on_three_chains(db, others)
    # The newest entry of chain 3 moved to the end of chain 2, its head row moved with it.
    ((link3,),) = await db.rows("SELECT seq FROM audit_head WHERE id = 3")
    ((link2,),) = await db.rows("SELECT seq FROM audit_head WHERE id = 2")
    ((mac,),) = await db.rows(
        "SELECT mac FROM audit_log WHERE chain = 3 AND link = :l", l=link3 - 1
    )
    await db.tamper(
        (
            "UPDATE audit_log SET chain = 2, link = :n WHERE chain = 3 AND link = :l",
            {"n": link2 + 1, "l": link3},
        ),
        ("UPDATE audit_head SET seq = :s WHERE id = 2", {"s": link2 + 1}),
        ("UPDATE audit_head SET seq = :s, mac = :m WHERE id = 3", {"s": link3 - 1, "m": mac}),
    )
    problem = (await db.verify()).problem
    assert problem == ChainProblem(link2 + 1, "edited", chain=2)


async def test_a_chain_deleted_between_others_is_missing(
    processes: tuple[AuditDb, list[AuditedWriter]],
) -> None:
    db, others = processes
    await on_three_chains(db, others)
    await db.tamper(
        "DELETE FROM audit_log WHERE chain = 2",
        "DELETE FROM audit_seals WHERE chain = 2",
        "DELETE FROM audit_head WHERE id = 2",
    )
    assert (await db.verify()).problem == ChainProblem(1, "chain_missing", chain=2)


async def test_the_witness_covers_every_chain(
    processes: tuple[AuditDb, list[AuditedWriter]], tmp_path: Path
) -> None:
    db, others = processes
    await on_three_chains(db, others)
    path = tmp_path / WITNESS_FILE
    assert await AuditWitnessJob(db.writer.heads, FileWitness(path), db.clock).run_once()
    witnessed = parse_witness(path.read_text().splitlines())
    assert sorted(h.chain for h in witnessed) == [1, 2, 3]
    assert (await db.verify(witnessed=witnessed)).intact

    # Chain 3 cut to its first entry, its head rolled back over the cut: valid on its own.
    ((link3,),) = await db.rows("SELECT seq FROM audit_head WHERE id = 3")
    ((mac,),) = await db.rows("SELECT mac FROM audit_log WHERE chain = 3 AND link = 1")
    await db.tamper(
        "DELETE FROM audit_log WHERE chain = 3 AND link > 1",
        ("UPDATE audit_head SET seq = 1, mac = :m WHERE id = 3", {"m": mac}),
    )
    assert (await db.verify()).intact
    report = await db.verify(witnessed=witnessed)
    assert report.problem == ChainProblem(2, "head_cut", other=link3, chain=3)

    # The newest chain deleted outright (no gap left behind): only the witness tells.
    await db.tamper("DELETE FROM audit_log WHERE chain = 3", "DELETE FROM audit_head WHERE id = 3")
    assert (await db.verify()).intact
    report = await db.verify(witnessed=witnessed)
    assert report.problem == ChainProblem(1, "head_cut", other=link3, chain=3)


def test_each_chain_starts_from_its_own_genesis() -> None:
    # Chain 1 from all zeros, as the log did before chains; the others from their number.
    assert chain_genesis(KEY, 1) == bytes(32)
    assert len({chain_genesis(KEY, chain) for chain in (1, 2, 3)}) == 3
    assert chain_genesis(KEY, 2) != chain_genesis(b"another key" * 3, 2)


async def test_paging_misses_nothing_committed_late_on_another_chain(
    processes: tuple[AuditDb, list[AuditedWriter]],
) -> None:
    """A reader pages the log while the first process's write holds a lower seq open on chain
    1 and the second commits higher seqs on chain 2: the entry committed late comes on the next
    page (paging by "after seq N" lost it for good), and nothing comes twice."""
    db, others = processes
    await db.fill(4)
    holding = await held_write(db.writer, [6])  # chain 1, its seq taken, not committed
    for i in (8, 10):  # chain 2, higher seqs, committed first
        await others[0].record(event(i))

    async def page(after: AuditCursor | None) -> list[AuditEntry]:
        return await db.database.read(
            lambda conn: list_entries(conn, org_id=ORG_A, after=after, limit=2)
        )

    shown: list[AuditEntry] = []
    cursor = AuditCursor()
    while found := await page(cursor):  # to the end of what is committed now
        shown += found
        cursor = cursor.advanced((e.chain, e.seq) for e in found)
    assert [e.data["i"] for e in shown] == [2, 4, 8, 10]
    assert not holding.done()
    await holding
    late = await page(cursor)
    assert [(e.data["i"], e.chain) for e in late] == [(6, 1)]
    assert late[0].seq < shown[-1].seq  # it really was committed out of seq order
    cursor = cursor.advanced((e.chain, e.seq) for e in late)
    assert await page(cursor) == []
    # The cursor's text is what the API hands out, and it reads back as the same cursor.
    assert AuditCursor.parse(cursor.text()) == cursor


async def test_within_a_chain_seqs_follow_commits_under_contention(
    processes: tuple[AuditDb, list[AuditedWriter]],
) -> None:
    """Three processes, many small groups at once: on every chain, seqs grow with links (the
    per-chain cursor relies on it)."""
    db, others = processes

    async def writes(writer: AuditedWriter, first: int) -> None:
        for start in range(first, first + 240, 12):
            await asyncio.gather(*(writer.record(event(i)) for i in range(start, start + 12)))

    await asyncio.gather(writes(db.writer, 1), writes(others[0], 1001), writes(others[1], 2001))
    rows = await db.rows("SELECT chain, link, seq FROM audit_log ORDER BY chain, link")
    assert len(rows) == 720
    for chain in {c for c, _, _ in rows}:
        seqs = [seq for c, _, seq in rows if c == chain]
        assert seqs == sorted(seqs), chain
