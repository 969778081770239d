"""list_entries: one organisation's entries, filtered and paged, always decoded from `entry`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gateway.adapters.sql.audit_reader import list_entries
from gateway.domain.audit import AuditEntry, decode_entry
from gateway.domain.audit_cursor import AuditCursor

from .conftest import ORG_A, ORG_B, PEOPLE, SESSIONS, AuditDb, event

COUNT = 60


@pytest.fixture
async def log(audit_db: AuditDb) -> AuditDb:
    await audit_db.fill(COUNT, group=25)
    return audit_db


async def listed(db: AuditDb, **query: Any) -> list[AuditEntry]:
    return await db.database.read(lambda conn: list_entries(conn, **query))


def expected(org: str, **match: Any) -> list[int]:
    seqs = []
    for i in range(1, COUNT + 1):
        e = event(i)
        if e.org_id == org and all(getattr(e, k) == v for k, v in match.items()):
            seqs.append(i)
    return seqs


@pytest.mark.parametrize(
    "match",
    [
        {},
        {"session_id": SESSIONS[1]},
        {"person_id": PEOPLE[2]},
        {"kind": "recording.blocked"},
        {"session_id": SESSIONS[0], "person_id": PEOPLE[0], "kind": "admission.decided"},
    ],
)
async def test_filters(log: AuditDb, match: dict[str, str]) -> None:
    for org in (ORG_A, ORG_B):
        entries = await listed(log, org_id=org, limit=1000, **match)
        assert [e.seq for e in entries] == expected(org, **match)
        for e in entries:
            assert e == decode_entry((await log.entry(e.seq))[0])


async def test_time_bounds_since_inclusive_until_exclusive(log: AuditDb) -> None:
    # Every entry of one group shares its instant: move the clock between groups.
    before = (await listed(log, org_id=ORG_A, limit=1000))[-1].at
    log.clock.advance(timedelta(seconds=10))
    await log.writer.record(event(2))  # ORG_A
    after = before + 10_000_000
    assert [e.at for e in await listed(log, org_id=ORG_A, since_us=after, limit=1000)] == [after]
    assert len(await listed(log, org_id=ORG_A, until_us=after, limit=1000)) == COUNT // 2
    assert await listed(log, org_id=ORG_A, since_us=before + 1, until_us=after) == []


async def test_keyset_pages(log: AuditDb) -> None:
    pages: list[list[int]] = []
    after = AuditCursor()
    while True:
        page = await listed(log, org_id=ORG_B, after=after, limit=7)
        if not page:
            break
        pages.append([e.seq for e in page])
        after = after.advanced((e.chain, e.seq) for e in page)
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    assert [seq for page in pages for seq in page] == expected(ORG_B)


async def test_limit_must_be_positive(log: AuditDb) -> None:
    with pytest.raises(ValueError, match="limit"):
        await listed(log, org_id=ORG_A, limit=0)


async def test_an_edited_org_index_does_not_leak_entries(log: AuditDb) -> None:
    # Entry 2 belongs to ORG_A; an admin points its index at ORG_B.
    await log.tamper(("UPDATE audit_log SET org_id = :b WHERE seq = 2", {"b": ORG_B}))
    seqs_b = [e.seq for e in await listed(log, org_id=ORG_B, limit=1000)]
    assert 2 not in seqs_b
    assert seqs_b == expected(ORG_B)
    assert all(e.org_id == ORG_B for e in await listed(log, org_id=ORG_B, limit=1000))


async def test_what_is_returned_comes_from_the_entry(log: AuditDb) -> None:
    # Index columns of entry 3 (ORG_B) edited: kind, session, person and time.
    await log.tamper(
        (
            "UPDATE audit_log SET kind = 'forged', at = 0, session_id = :z, person_id = :z"
            " WHERE seq = 3",
            {"z": "0" * 32},
        )
    )
    (entry,) = [e for e in await listed(log, org_id=ORG_B, limit=1000) if e.seq == 3]
    assert entry == decode_entry((await log.entry(3))[0])
    assert (entry.kind, entry.session_id, entry.person_id) == (
        event(3).kind,
        event(3).session_id,
        event(3).person_id,
    )
    assert entry.at > 0
    # and filtering on the forged index values finds nothing
    for forged in ({"kind": "forged"}, {"session_id": "0" * 32}, {"until_us": 1}):
        assert await listed(log, org_id=ORG_B, **forged) == []


async def test_a_page_is_full_even_when_rows_are_skipped(log: AuditDb) -> None:
    # ORG_B's first 5 entries are indexed as ORG_A's: a page of 5 still brings 5 of ORG_A's.
    await log.tamper(
        ("UPDATE audit_log SET org_id = :a WHERE seq IN (1, 3, 5, 7, 9)", {"a": ORG_A})
    )
    page = await listed(log, org_id=ORG_A, limit=5)
    assert [e.seq for e in page] == expected(ORG_A)[:5]
    assert all(e.org_id == ORG_A for e in page)


async def test_an_undecodable_entry_is_not_shown(log: AuditDb) -> None:
    await log.tamper(("UPDATE audit_log SET entry = :e WHERE seq = 2", {"e": b"\xff\xfe"}))
    assert [e.seq for e in await listed(log, org_id=ORG_A, limit=3)] == expected(ORG_A)[1:4]
