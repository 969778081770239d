"""Reading the audit log: verifying its chain (R15) and listing entries for the API.

verify_chain
    Checks the whole log, every chain (see gateway.domain.audit), and names the FIRST entry that
    was edited, removed, reordered or cut. The chains are listed from the head rows, the seals
    and the log itself (a chain with any trace is checked), must be numbered 1..N without a gap,
    and each is checked as below, by link (its entries' places); "entry N" below is a link.

    1. Bounds, in one statement (one snapshot): the head row, the highest stored seq and the
       highest sealed segment. The log is checked up to the largest of the three, so entries
       cut from the end are noticed against the head *and* against seals left behind.
    2. Sealed segments, in bulk: per segment one query has the database join the segment's
       entries into one blob (ordered by seq) and also return count/min/max seq and the stored
       seals of the segment and of the one before it. We recompute the seal and compare; a
       segment passes only with exactly SEGMENT contiguous entries and a matching seal. As each
       seal covers the previous seal, checking the segments in any order, in parallel, still
       checks the chain across segment boundaries.
    3. Only where a segment fails, and for the unsealed tail, we walk entries one by one
       (domain.audit.walk_entries) from the stored MAC of the entry before, to name the first
       bad entry. If a segment's entries all walk cleanly its seal is what was changed.
    4. Last, the head must point at the last entry, with its MAC (computed: with no unsealed
       tail the last segment is walked, as seals cover entries and not the MAC column).
    5. Heads recorded outside the database (`witnessed`) must still be in the chain: the MAC
       at each is computed by walking its segment, up to it.

    Speed (aim: 1,000,000 entries/s on SQLite on 2 slow cores): the cost is the database
    reading and joining the blobs, checking each row's index columns (one printf a row, about
    as much CPU again as the reading) and BLAKE2b over the blobs, all C code that releases the
    GIL (sqlite3_step, hashlib). So on SQLite two threads, each with its own read-only stdlib
    sqlite3 connection, work in parallel on separate segments: the same speed-up as two
    processes, without starting interpreters (spawn re-imports SQLAlchemy and the app, which
    alone costs more than the check) or forking a threaded server. On PostgreSQL the database
    does the joining in its own processes; two connections run segments concurrently.

    Index columns (seq, at, org_id, kind, session_id, person_id) must agree with the MACed
    entry: the same bulk query counts the rows whose columns do not spell their entry's prefix
    (format 2); rows of format 1 are decoded and compared in Python.

    What the chain alone cannot see: someone who cuts the tail, its seals *and* rewinds the head
    to the new last entry (copying its MAC) leaves a shorter, valid chain. A head recorded
    outside the database (`witnessed`: `--expect-head`, the witness file) catches that.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, text
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.schema import audit_head, audit_log
from gateway.domain.audit import (
    FIRST_CHAIN,
    GENESIS,
    SEGMENT,
    AuditEntry,
    ChainProblem,
    ChainReport,
    StoredEntry,
    WitnessedHead,
    chain_genesis,
    check_witnessed,
    column_mismatch,
    decode_entry,
    entry_seq,
    moved_from,
    seal_matches,
    segment_of,
    walk_entries,
)
from gateway.domain.audit_cursor import AuditCursor

Progress = Callable[[int, int], None]

WORKERS = 2  # the machine this must be fast on has two cores
MMAP_BYTES = 1 << 34
CHUNK = 32  # segments per unit of work (32,768 entries): how often progress is reported

# Per row: 1 when the entry does not start with what its index columns spell (format 2's
# prefix, domain.audit.index_prefix), else 0. Format 1 entries always count: their columns are
# then checked in Python (`_columns_agree`).
_COLUMNS_OFF = {
    # One printf is the cheapest way found to spell the prefix (~0.9 us of CPU a row here, vs
    # ~1.3 us for a chain of ||); its %s prints NULL as "", as index_prefix does.
    "sqlite": """(instr(entry, CAST(printf('v2\x1f%d\x1f%d\x1f%s\x1f%s\x1f%s\x1f%s\x1f',
        seq, at, org_id, kind, session_id, person_id) AS BLOB)) <> 1)""",
    "postgresql": """CASE WHEN position(convert_to('v2' || chr(31) || seq || chr(31) || at
        || chr(31) || coalesce(org_id, '') || chr(31) || kind || chr(31)
        || coalesce(session_id, '') || chr(31) || coalesce(person_id, '') || chr(31), 'UTF8')
        in entry) = 1 THEN 0 ELSE 1 END""",
}

# One sealed segment: its entries joined by RS in seq order, count/min/max seq, the stored
# seals of the segment before (:previous) and of this one (:segment), and how many rows'
# columns do not spell their entry's prefix. An aggregate without GROUP BY always returns
# exactly one row, also for a segment whose entries are all gone.
_SEGMENT_SQL = {
    # SQLite before 3.44 has no ORDER BY inside an aggregate: group_concat follows the
    # subquery's order (the seq index). group_concat's result is TEXT; CAST makes it bytes.
    # Should a build ever join in another order, the seal fails and the careful check in
    # verify_chain, which orders in Python, clears the segment: slower, never wrong.
    "sqlite": f"""
        SELECT count(*), min(link), max(link), CAST(group_concat(entry, x'1e') AS BLOB),
               (SELECT mac FROM audit_seals WHERE chain = :chain AND segment = :previous),
               (SELECT mac FROM audit_seals WHERE chain = :chain AND segment = :segment),
               total({_COLUMNS_OFF["sqlite"]})
        FROM (SELECT * FROM audit_log WHERE chain = :chain AND link BETWEEN :first AND :last
              ORDER BY link)
    """,  # noqa: S608 (only constants are formatted in)
    "postgresql": rf"""
        SELECT count(*), min(link), max(link), string_agg(entry, '\x1e'::bytea ORDER BY link),
               (SELECT mac FROM audit_seals WHERE chain = :chain AND segment = :previous),
               (SELECT mac FROM audit_seals WHERE chain = :chain AND segment = :segment),
               sum({_COLUMNS_OFF["postgresql"]})
        FROM audit_log WHERE chain = :chain AND link BETWEEN :first AND :last
    """,  # noqa: S608
}

# SQLite, faster: the query above looks every row up through the (chain, link) index. But on
# SQLite one writer appends the first chain in order, so rowid equals link there; this reads the
# rowid range straight from the table (~20% less work) and counts the rows where that does not
# hold (another chain's row, or a link off its rowid). Only if all 1024 rows are there and none
# is off is it used: then rowid order is link order. Otherwise the worker asks again with the
# query above. (The seq column needs no check of its own here: the entry's prefix covers it.)
_SQLITE_ROWID_SQL = f"""
    SELECT count(*), min(link), max(link), CAST(group_concat(entry, x'1e') AS BLOB),
           (SELECT mac FROM audit_seals WHERE chain = :chain AND segment = :previous),
           (SELECT mac FROM audit_seals WHERE chain = :chain AND segment = :segment),
           total({_COLUMNS_OFF["sqlite"]}),
           total(link <> rowid OR chain <> :chain)
    FROM audit_log WHERE rowid BETWEEN :first AND :last
"""  # noqa: S608

# Every column of the rows of a range, for the checks done in Python.
_ROWS_SQL = """
    SELECT seq, at, org_id, kind, session_id, person_id, entry, mac, chain, link FROM audit_log
    WHERE chain = :chain AND link BETWEEN :first AND :last ORDER BY link
"""

# The stored seals of a segment and of the one before it.
_SEALS_SQL = """
    SELECT (SELECT mac FROM audit_seals WHERE chain = :chain AND segment = :previous),
           (SELECT mac FROM audit_seals WHERE chain = :chain AND segment = :segment)
"""

# Every chain with any trace: a head row, a seal or an entry. The entries' chains are found by
# skipping through the (chain, link) index, one lookup per chain, not by reading the log.
_CHAINS_SQL = """
    WITH RECURSIVE found(chain) AS (
        SELECT min(chain) FROM audit_log
        UNION ALL
        SELECT (SELECT min(chain) FROM audit_log WHERE chain > found.chain)
        FROM found WHERE found.chain IS NOT NULL
    )
    SELECT chain FROM found WHERE chain IS NOT NULL
    UNION SELECT id FROM audit_head
    UNION SELECT chain FROM audit_seals
"""

# A chain's head, last stored link and last sealed segment in one statement, so from one
# snapshot.
_BOUNDS_SQL = """
    SELECT (SELECT count(*) FROM audit_head WHERE id = :chain),
           (SELECT seq FROM audit_head WHERE id = :chain),
           (SELECT mac FROM audit_head WHERE id = :chain),
           (SELECT max(link) FROM audit_log WHERE chain = :chain),
           (SELECT max(segment) FROM audit_seals WHERE chain = :chain)
"""


def _bounds(segment: int) -> tuple[int, int]:
    """First and last seq of a segment."""
    return (segment - 1) * SEGMENT + 1, segment * SEGMENT


def _segment_params(chain: int, segment: int) -> dict[str, int]:
    first, last = _bounds(segment)
    return {
        "chain": chain,
        "first": first,
        "last": last,
        "previous": segment - 1,
        "segment": segment,
    }


def _segment_intact(
    key: bytes,
    chain: int,
    segment: int,
    row: Sequence[Any],
    rows: Callable[[], Iterable[Sequence[Any]]],
) -> bool:
    """Does one _SEGMENT_SQL row show a whole, contiguous segment whose seal matches and whose
    index columns agree with its entries? `rows` fetches the segment's rows, needed only when
    some entries are not in format 2 (their columns are then checked one by one)."""
    count, low, high, blob, previous_seal, seal, columns_off = row
    first, last = _bounds(segment)
    if (count, low, high) != (SEGMENT, first, last) or blob is None or seal is None:
        return False
    if previous_seal is None:
        if segment != 1:
            return False
        previous_seal = chain_genesis(key, chain)
    # The blob is already RS-joined: a one-item list joins to the blob itself.
    if not seal_matches(key, bytes(previous_seal), [bytes(blob)], bytes(seal)):
        return False
    return not columns_off or _columns_agree(rows())


def _stored(row: Sequence[Any]) -> StoredEntry:
    seq, at, org_id, kind, session_id, person_id, entry, mac, chain, link = row
    return StoredEntry(
        int(seq),
        int(at),
        org_id,
        kind,
        session_id,
        person_id,
        bytes(entry),
        bytes(mac),
        int(chain),
        int(link) if link is not None else -1,  # no place at all: never where expected
    )


def _columns_agree(rows: Iterable[Sequence[Any]]) -> bool:
    return all(column_mismatch(_stored(row)) is None for row in rows)


def _check_sqlite_chunk(database: str, key: bytes, chain: int, segments: range) -> int | None:
    """Worker thread: the first failing segment of `segments`, or None. Own read-only
    connection; sqlite3 releases the GIL while SQLite runs, hmac.digest while it hashes."""
    db = sqlite3.connect(f"{Path(database).resolve().as_uri()}?mode=ro", uri=True)
    # Read pages straight from the OS's file cache instead of copying each into SQLite's own
    # (measured: a third less CPU for the whole check). SQLite caps the size at its build limit.
    db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    try:
        for segment in segments:
            params = _segment_params(chain, segment)
            row: Sequence[Any] = ()
            if chain == FIRST_CHAIN:
                *row, misplaced = db.execute(_SQLITE_ROWID_SQL, params).fetchone()
            if not row or row[0] != SEGMENT or misplaced:
                row = db.execute(_SEGMENT_SQL["sqlite"], params).fetchone()

            def rows(params: dict[str, int] = params) -> list[Any]:
                return db.execute(_ROWS_SQL, params).fetchall()

            if not _segment_intact(key, chain, segment, row, rows):
                return segment
        return None
    finally:
        db.close()


async def _first_bad_segment(
    database: Database,
    key: bytes,
    chain: int,
    segments: range,
    report: Callable[[int], None],
) -> int | None:
    """Bulk-check sealed segments, WORKERS at a time in chunks; the first failing one or None.

    Chunks are awaited in order, so progress grows steadily and the first failure found is the
    first overall; the chunks after it are then cancelled.
    """
    chunks = [segments[i : i + CHUNK] for i in range(0, len(segments), CHUNK)]
    if not chunks:
        return None
    path = database.writer_engine.url.database
    if database.dialect == "sqlite" and path and path != ":memory:":
        pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="audit-verify")
        loop = asyncio.get_running_loop()
        try:
            jobs = [
                loop.run_in_executor(pool, _check_sqlite_chunk, path, key, chain, chunk)
                for chunk in chunks
            ]
            return await _in_order(jobs, chunks, report)
        finally:
            # Let a chunk still running finish (off the event loop) before returning.
            await loop.run_in_executor(None, pool.shutdown)
    gate = asyncio.Semaphore(WORKERS)

    sql = text(_SEGMENT_SQL[database.dialect])
    rows_sql = text(_ROWS_SQL)

    def check_chunk(conn: Connection, chunk: range) -> int | None:
        for segment in chunk:
            params = _segment_params(chain, segment)
            row = conn.execute(sql, params).one()

            def rows(params: dict[str, int] = params) -> Sequence[Any]:
                return conn.execute(rows_sql, params).all()

            if not _segment_intact(key, chain, segment, row, rows):
                return segment
        return None

    async def check(chunk: range) -> int | None:
        async with gate:
            return await database.read(lambda conn: check_chunk(conn, chunk))

    tasks = [asyncio.ensure_future(check(chunk)) for chunk in chunks]
    return await _in_order(tasks, chunks, report)


async def _in_order(
    jobs: Sequence[Awaitable[int | None]], chunks: Sequence[range], report: Callable[[int], None]
) -> int | None:
    try:
        for job, chunk in zip(jobs, chunks, strict=True):
            bad = await job
            if bad is not None:
                return bad
            report(chunk[-1] * SEGMENT)
        return None
    finally:
        for job in jobs:  # after a failure (or an error) the rest is not needed
            if isinstance(job, asyncio.Future):
                job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)


def _rows(conn: Connection, chain: int, first: int, last: int) -> list[StoredEntry]:
    params = {"chain": chain, "first": first, "last": last}
    return [_stored(r) for r in conn.execute(text(_ROWS_SQL), params)]


def _stored_mac(conn: Connection, key: bytes, chain: int, link: int) -> bytes | None:
    if link < 1:
        return chain_genesis(key, chain)
    stored = conn.scalar(
        select(audit_log.c.mac).where(audit_log.c.chain == chain, audit_log.c.link == link)
    )
    return bytes(stored) if stored is not None else None


def _walk(
    conn: Connection, key: bytes, chain: int, first: int, last: int, last_stored: int
) -> tuple[ChainProblem | None, bytes]:
    """Walk entries first..last one by one; (first problem or None, MAC of the last entry).

    The walk starts from the stored MAC of entry first-1. Inside a sealed segment only the
    entries are sealed, not their MAC column, so if the walk fails on its very first entry the
    MAC it started from may be the edited thing: walk again from one segment earlier.
    """
    genesis = chain_genesis(key, chain)
    start = first
    while True:
        previous = (_stored_mac(conn, key, chain, start - 1) or genesis) if start > 1 else genesis
        rows = _rows(conn, chain, start, last)
        expected, mac, problem = walk_entries(key, previous, start, rows)
        if problem is None and expected <= last:
            # Nothing stored from `expected` to `last`: removed if later entries exist, else
            # the end of the chain was cut.
            what = "removed" if last_stored > last else "cut"
            problem = ChainProblem(expected, what, chain=chain)
        if problem is None or problem.seq != start or start == 1:
            if problem is not None and problem.what == "edited" and problem.column is None:
                problem = _moved(conn, key, rows[problem.seq - start], previous) or problem
            return problem, mac
        start = max(1, start - SEGMENT)


def _moved(conn: Connection, key: bytes, row: StoredEntry, previous: bytes) -> ChainProblem | None:
    """A row whose MAC fails: is it an authentic entry written for another place? Its
    predecessor's MAC is stored at the place before the one it names, or, when it was swapped
    with that neighbour, at the place it names or the row's own place. (The entry names its
    seq; the row stored at that seq says which place of the chain that is.)"""
    written_at = entry_seq(row.entry)
    if written_at is None or written_at == row.seq:
        return None
    named = conn.scalar(
        select(audit_log.c.link).where(
            audit_log.c.chain == row.chain, audit_log.c.seq == written_at
        )
    )
    place = int(named) if named is not None else written_at
    candidates = [previous]
    for link in (place - 1, place, row.place - 1):
        mac = _stored_mac(conn, key, row.chain, link)
        if mac is not None:
            candidates.append(mac)
    other = moved_from(key, row, candidates)
    if other is None:
        return None
    return ChainProblem(row.place, "reordered", other=place, chain=row.chain, row_seq=row.seq)


def _seal_matches(conn: Connection, key: bytes, chain: int, segment: int) -> bool:
    """The careful check of one seal: entries ordered here, in Python, not by the database."""
    first, last = _bounds(segment)
    entries = conn.execute(
        select(audit_log.c.entry)
        .where(audit_log.c.chain == chain, audit_log.c.link.between(first, last))
        .order_by(audit_log.c.link)
    ).scalars()
    row = conn.execute(text(_SEALS_SQL), _segment_params(chain, segment)).one()
    previous_seal, seal = row
    if seal is None or (previous_seal is None and segment != 1):
        return False
    return seal_matches(
        key,
        bytes(previous_seal or chain_genesis(key, chain)),
        [bytes(e) for e in entries],
        bytes(seal),
    )


async def verify_chain(
    database: Database,
    key: bytes,
    *,
    progress: Progress | None = None,
    witnessed: Sequence[WitnessedHead] = (),
) -> ChainReport:
    """Check the whole audit log, every chain; the report names the first entry that is not
    as written (chains in order, the first chain first).

    `witnessed`: heads recorded outside the database (`--expect-head`, a witness file). Once
    a chain itself is intact, each of its witnessed heads must still be in it, with the same
    MAC: this catches a cut of the newest entries covered up by rolling the head row back, a
    chain rewritten after its head was recorded, and a whole chain deleted.
    """
    stored = await database.read(
        lambda conn: sorted(int(c) for (c,) in conn.execute(text(_CHAINS_SQL)))
    )
    by_chain: dict[int, list[WitnessedHead]] = {}
    for head in witnessed:
        by_chain.setdefault(head.chain, []).append(head)
    known = set(stored) | set(by_chain) | {FIRST_CHAIN}
    chains = list(range(FIRST_CHAIN, max(known) + 1))  # numbered without gaps: check each
    bounds = await database.read(
        lambda conn: [tuple(conn.execute(text(_BOUNDS_SQL), {"chain": c}).one()) for c in chains]
    )
    plans = [_ChainPlan(chain, *row) for chain, row in zip(chains, bounds, strict=True)]
    total = sum(plan.end for plan in plans)
    done = 0

    def report(checked: int) -> None:
        if progress is not None:
            progress(done + checked, total)

    heads = tuple(
        WitnessedHead(plan.head_seq, plan.head_mac, plan.chain) for plan in plans if plan.has_head
    )
    first = plans[0]  # the first chain's

    def result(problem: ChainProblem | None, checked: int) -> ChainReport:
        if progress is not None:
            progress(checked, total)
        return ChainReport(
            checked=checked,
            problem=problem,
            head_seq=first.head_seq,
            head_mac=first.head_mac,
            heads=heads,
        )

    present = set(stored)
    for plan in plans:
        if plan.chain not in present and plan.chain < max(present, default=0):
            return result(ChainProblem(1, "chain_missing", chain=plan.chain), done)
        problem, checked = await _verify_one(
            database, key, plan, by_chain.get(plan.chain, ()), report
        )
        if problem is not None:
            return result(problem, done + checked)
        done += plan.end
    return result(None, done)


class _ChainPlan:
    """One chain's bounds, read in one statement."""

    def __init__(
        self,
        chain: int,
        head_rows: Any,
        head_seq: Any,
        head_mac: Any,
        last_stored: Any,
        last_sealed: Any,
    ) -> None:
        self.chain = chain
        self.has_head = bool(head_rows)
        self.head_seq = int(head_seq or 0)
        self.head_mac = bytes(head_mac) if head_mac is not None else GENESIS
        self.last_stored = int(last_stored or 0)
        # The chain is checked up to the largest of the three, so entries cut from the end
        # are noticed against the head *and* against seals left behind.
        self.end = max(self.head_seq, self.last_stored, int(last_sealed or 0) * SEGMENT)


async def _verify_one(
    database: Database,
    key: bytes,
    plan: _ChainPlan,
    witnessed: Sequence[WitnessedHead],
    report: Callable[[int], None],
) -> tuple[ChainProblem | None, int]:
    """Check one chain: (first problem or None, entries checked before it)."""
    chain, end, last_stored = plan.chain, plan.end, plan.last_stored
    genesis = chain_genesis(key, chain)
    sealed = end // SEGMENT

    def failed(problem: ChainProblem, checked: int | None = None) -> tuple[ChainProblem, int]:
        return problem, problem.seq - 1 if checked is None else checked

    if not plan.has_head and end == 0 and chain != FIRST_CHAIN:
        # No trace of the chain at all: fine unless a head of it was recorded elsewhere (the
        # first chain's head row is there from the start, even in an empty log).
        problem = check_witnessed(0, {}, witnessed, genesis)
        return (None, 0) if problem is None else failed(problem, 0)

    # Sealed segments in bulk; a failing one is walked to name its first bad entry.
    after = 0
    while after < sealed:
        bad = await _first_bad_segment(database, key, chain, range(after + 1, sealed + 1), report)
        if bad is None:
            break
        first, last = _bounds(bad)

        def careful(
            conn: Connection, bad: int = bad, first: int = first, last: int = last
        ) -> ChainProblem | None:
            problem, _ = _walk(conn, key, chain, first, last, last_stored)
            if problem is None and not _seal_matches(conn, key, chain, bad):
                problem = ChainProblem(first, "seal_edited", chain=chain)
            return problem

        problem = await database.read(careful)
        if problem is not None:
            return failed(problem)
        after = bad  # the database joined the entries out of order; the careful check passed

    # The unsealed tail, entry by entry. Seals cover entries, not MAC columns: with no tail,
    # walk the last sealed segment, so the MAC the head is compared with is a computed one.
    tail = sealed * SEGMENT + 1 if end % SEGMENT else max(1, end - SEGMENT + 1)
    last_mac = genesis
    if end:
        problem, last_mac = await database.read(
            lambda conn: _walk(conn, key, chain, tail, end, last_stored)
        )
        if problem is not None:
            return failed(problem)

    # Every entry is good; the head must name the last one and its MAC.
    if not plan.has_head:
        return failed(ChainProblem(end, "head_missing", chain=chain), end)
    if plan.head_seq != end or not hmac.compare_digest(plan.head_mac, last_mac):
        problem = ChainProblem(min(plan.head_seq + 1, end), "head_edited", chain=chain)
        return failed(problem, end)
    if witnessed:
        wanted = sorted({head.seq for head in witnessed if 0 < head.seq <= end})
        macs, problem = await database.read(
            lambda conn: _macs_at(conn, key, chain, wanted, last_stored)
        )
        if problem is not None:  # a MAC column edited inside a sealed segment
            return failed(problem)
        problem = check_witnessed(end, macs, witnessed, genesis)
        if problem is not None:
            return failed(problem, end)
    return None, end


def _macs_at(
    conn: Connection, key: bytes, chain: int, seqs: Sequence[int], last_stored: int
) -> tuple[dict[int, bytes], ChainProblem | None]:
    """The chain's MACs at `seqs` (places, ascending), computed by walking, not read from the
    MAC column (seals do not cover it). One walk per segment holding a wanted place, up to the
    last one wanted there. A walk that fails names the entry (an edited MAC column)."""
    macs: dict[int, bytes] = {}
    by_segment: dict[int, list[int]] = {}
    for seq in seqs:
        by_segment.setdefault(segment_of(seq), []).append(seq)
    for segment, wanted in by_segment.items():
        first, _ = _bounds(segment)
        problem, mac = _walk(conn, key, chain, first, wanted[0], last_stored)
        macs[wanted[0]] = mac
        for before, seq in itertools.pairwise(wanted):
            if problem is not None:
                break
            rows = _rows(conn, chain, before + 1, seq)
            _, mac, problem = walk_entries(key, mac, before + 1, rows)
            macs[seq] = mac
        if problem is not None:
            return macs, problem
    return macs, None


async def read_heads(database: Database) -> tuple[WitnessedHead, ...]:
    """Every chain's head row as stored, by chain (the first chain at seq 0 and the genesis
    MAC for an empty log)."""

    def read(conn: Connection) -> tuple[WitnessedHead, ...]:
        rows = conn.execute(
            select(audit_head.c.id, audit_head.c.seq, audit_head.c.mac).order_by(audit_head.c.id)
        ).all()
        if not rows:
            return (WitnessedHead(0, GENESIS),)
        return tuple(WitnessedHead(int(r.seq), bytes(r.mac), int(r.id)) for r in rows)

    return await database.read(read)


def list_entries(
    conn: Connection,
    *,
    org_id: str,
    session_id: str | None = None,
    person_id: str | None = None,
    kind: str | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
    after: AuditCursor | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """One organisation's entries in seq order, at most `limit`, after `after` (keyset paging
    per chain: pass `AuditCursor.advanced` over what you got; see `domain/audit_cursor.py` for
    why a single seq would miss entries committed late on another chain). Time bounds:
    since_us <= at < until_us.

    The index columns only select candidate rows; every entry returned is decoded from its
    `entry` bytes (what the MAC chain covers) and must itself match the query, so an edited
    index column cannot show one organisation another's entries.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = select(audit_log.c.seq, audit_log.c.chain, audit_log.c.entry).where(
        audit_log.c.org_id == org_id
    )
    if session_id is not None:
        query = query.where(audit_log.c.session_id == session_id)
    if person_id is not None:
        query = query.where(audit_log.c.person_id == person_id)
    if kind is not None:
        query = query.where(audit_log.c.kind == kind)
    if since_us is not None:
        query = query.where(audit_log.c.at >= since_us)
    if until_us is not None:
        query = query.where(audit_log.c.at < until_us)

    def wanted(seq: int, entry: AuditEntry) -> bool:
        return (
            entry.seq == seq
            and entry.org_id == org_id
            and (session_id is None or entry.session_id == session_id)
            and (person_id is None or entry.person_id == person_id)
            and (kind is None or entry.kind == kind)
            and (since_us is None or entry.at >= since_us)
            and (until_us is None or entry.at < until_us)
        )

    found: list[AuditEntry] = []
    cursor = after or AuditCursor()
    while len(found) < limit:
        want = limit - len(found)
        page = query.where(_after(cursor)).order_by(audit_log.c.seq).limit(want)
        rows = conn.execute(page).all()
        for seq, chain, raw in rows:
            try:
                entry = decode_entry(bytes(raw))
            except ValueError:  # not even well-formed: verify_chain names it; never show it
                continue
            if wanted(seq, entry):
                found.append(replace(entry, chain=int(chain)))
        if len(rows) < want:
            break
        cursor = cursor.advanced((int(row.chain), int(row.seq)) for row in rows)
    return found


def _after(cursor: AuditCursor) -> ColumnElement[bool]:
    """Rows after the cursor: each named chain after its own position, the others after the
    floor."""
    named = [chain for chain, _ in cursor.chains]
    others = audit_log.c.seq > cursor.floor
    if named:
        others = and_(audit_log.c.chain.not_in(named), others)
    return or_(
        *(
            and_(audit_log.c.chain == chain, audit_log.c.seq > cursor.after(chain))
            for chain in named
        ),
        others,
    )
