"""verify_chain names the first entry that was edited, removed, reordered or cut."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway.adapters.sql import audit_reader
from gateway.domain.audit import GENESIS, RS, SEGMENT, AuditEvent, ChainProblem

from .conftest import AuditDb, N

TAIL = 3 * SEGMENT + 28  # an entry in the unsealed tail


@pytest.fixture
def no_careful_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if a seal is re-checked in Python: proves the bulk path passed every segment."""

    def fail(*_: object) -> bool:
        raise AssertionError("the bulk check rejected an intact segment")

    monkeypatch.setattr(audit_reader, "_seal_matches", fail)


def flip(raw: bytes, at: int = 40) -> bytes:
    return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]


async def test_an_intact_log_verifies(filled: AuditDb, no_careful_check: None) -> None:
    seen: list[tuple[int, int]] = []
    report = await filled.verify(progress=lambda checked, total: seen.append((checked, total)))
    assert report.intact, report.problem
    assert (report.checked, report.head_seq) == (N, N)
    assert report.head_mac == (await filled.entry(N))[1]
    assert seen[-1] == (N, N)
    assert [c for c, _ in seen] == sorted(c for c, _ in seen)


async def test_an_empty_log_verifies(audit_db: AuditDb) -> None:
    report = await audit_db.verify()
    assert report.intact
    assert (report.checked, report.head_seq, report.head_mac) == (0, 0, GENESIS)


@pytest.mark.parametrize("count", [1, SEGMENT - 1, SEGMENT, 2 * SEGMENT, 2 * SEGMENT + 1])
async def test_logs_of_any_length_verify(audit_db: AuditDb, count: int) -> None:
    await audit_db.fill(count, group=300)
    report = await audit_db.verify()
    assert report.intact, report.problem
    assert report.checked == count


async def test_the_log_refuses_edits_without_dropping_its_triggers(filled: AuditDb) -> None:
    for sql in ("UPDATE audit_log SET kind = 'x' WHERE seq = 5", "DELETE FROM audit_seals"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with filled.engine.begin() as conn:
                await conn.execute(text(sql))


async def test_a_wrong_key_fails_at_entry_1(filled: AuditDb) -> None:
    report = await filled.verify(key=b"another key")
    assert report.problem == ChainProblem(1, "edited")
    assert report.checked == 0


# seqs: inside a sealed segment, the first of a segment, the last sealed one, in the tail
@pytest.mark.parametrize("seq", [1500, SEGMENT + 1, 3 * SEGMENT, TAIL, N])
async def test_an_edited_entry_is_named(filled: AuditDb, seq: int) -> None:
    entry, _ = await filled.entry(seq)
    await filled.tamper(
        ("UPDATE audit_log SET entry = :e WHERE seq = :s", {"e": flip(entry), "s": seq})
    )
    report = await filled.verify()
    assert report.problem == ChainProblem(seq, "edited")
    assert report.checked == seq - 1


async def test_an_edited_mac_before_the_tail_is_named(filled: AuditDb) -> None:
    # The walk of the tail starts from this stored MAC: the edit is pinned on its own row, not
    # on the first tail entry. (MACs inside sealed segments are covered by the seal's entries.)
    seq = 3 * SEGMENT
    _, mac = await filled.entry(seq)
    await filled.tamper(
        ("UPDATE audit_log SET mac = :m WHERE seq = :s", {"m": flip(mac, 3), "s": seq})
    )
    assert (await filled.verify()).problem == ChainProblem(seq, "edited")


@pytest.mark.parametrize("seq", [1, 1500, SEGMENT + 1, 2 * SEGMENT, TAIL])
async def test_a_removed_entry_is_named(filled: AuditDb, seq: int) -> None:
    await filled.tamper(("DELETE FROM audit_log WHERE seq = :s", {"s": seq}))
    assert (await filled.verify()).problem == ChainProblem(seq, "removed")


@pytest.mark.parametrize(("a", "b"), [(1500, 1600), (1500, 1501), (900, 2000), (TAIL, TAIL + 9)])
async def test_swapped_rows_are_a_reorder_naming_both(filled: AuditDb, a: int, b: int) -> None:
    # Two rows exchange everything but their seq (the same as exchanging their seqs): position
    # a holds the authentic entry b. Not an edit: the entries are as written, in another order.
    rows = await filled.rows(
        "SELECT seq, at, org_id, kind, session_id, person_id, entry, mac FROM audit_log"
        " WHERE seq IN (:a, :b)",
        a=a,
        b=b,
    )
    by_seq = {row[0]: row[1:] for row in rows}
    update = (
        "UPDATE audit_log SET at = :at, org_id = :org_id, kind = :kind, session_id = :session_id,"
        " person_id = :person_id, entry = :entry, mac = :mac WHERE seq = :seq"
    )
    names = ("at", "org_id", "kind", "session_id", "person_id", "entry", "mac")
    await filled.tamper(
        *(
            (update, {"seq": s, **dict(zip(names, by_seq[o], strict=True))})
            for s, o in ((a, b), (b, a))
        )
    )
    problem = (await filled.verify()).problem
    assert problem == ChainProblem(a, "reordered", other=b)
    assert problem.describe() == f"entry {a} was reordered: it holds entry {b}"


@pytest.mark.parametrize("seq", [1505, TAIL])
async def test_an_earlier_entry_replayed_later_is_reordered(filled: AuditDb, seq: int) -> None:
    entry, mac = await filled.entry(seq - 5)
    await filled.tamper(
        (
            "UPDATE audit_log SET entry = :e, mac = :m WHERE seq = :s",
            {"e": entry, "m": mac, "s": seq},
        )
    )
    assert (await filled.verify()).problem == ChainProblem(seq, "reordered", other=seq - 5)


async def test_an_entry_whose_seq_field_was_edited_is_an_edit_not_a_move(filled: AuditDb) -> None:
    entry, _ = await filled.entry(1500)
    await filled.tamper(
        (
            "UPDATE audit_log SET entry = :e WHERE seq = 1500",
            {"e": entry.replace(b"1500", b"1600", 1)},
        )
    )
    assert (await filled.verify()).problem == ChainProblem(1500, "edited")


@pytest.mark.parametrize("keep", [N - 20, 3 * SEGMENT, 2 * SEGMENT + 500, 10])
async def test_a_cut_tail_is_named(filled: AuditDb, keep: int) -> None:
    await filled.tamper(("DELETE FROM audit_log WHERE seq > :k", {"k": keep}))
    report = await filled.verify()
    assert report.problem == ChainProblem(keep + 1, "cut")
    assert report.checked == keep
    assert report.head_seq == N


async def test_a_head_past_the_last_entry_is_a_cut(filled: AuditDb) -> None:
    await filled.tamper(("UPDATE audit_head SET seq = :s", {"s": N + 5}))
    assert (await filled.verify()).problem == ChainProblem(N + 1, "cut")


async def test_a_cut_with_the_head_rewound_is_caught_by_the_seals_left(filled: AuditDb) -> None:
    keep = 2 * SEGMENT + 500
    _, mac = await filled.entry(keep)
    await filled.tamper(
        ("DELETE FROM audit_log WHERE seq > :k", {"k": keep}),
        ("UPDATE audit_head SET seq = :k, mac = :m", {"k": keep, "m": mac}),
    )
    assert (await filled.verify()).problem == ChainProblem(keep + 1, "cut")


async def test_a_cut_covered_up_completely_needs_an_outside_head(filled: AuditDb) -> None:
    # The known limit: cutting entries, their seals and rewinding the head leaves a valid,
    # shorter chain. Only a copy of the head kept elsewhere (report.head_seq) shows it.
    keep = 2 * SEGMENT + 500
    _, mac = await filled.entry(keep)
    await filled.tamper(
        ("DELETE FROM audit_log WHERE seq > :k", {"k": keep}),
        "DELETE FROM audit_seals WHERE segment > 2",
        ("UPDATE audit_head SET seq = :k, mac = :m", {"k": keep, "m": mac}),
    )
    report = await filled.verify()
    assert report.intact
    assert report.head_seq == keep < N


@pytest.mark.parametrize("segment", [1, 2, 3])
async def test_an_edited_seal_is_reported(filled: AuditDb, segment: int) -> None:
    await filled.tamper(
        ("UPDATE audit_seals SET mac = :m WHERE segment = :s", {"m": bytes(32), "s": segment})
    )
    first = (segment - 1) * SEGMENT + 1
    assert (await filled.verify()).problem == ChainProblem(first, "seal_edited")


async def test_a_removed_seal_is_reported(filled: AuditDb) -> None:
    await filled.tamper("DELETE FROM audit_seals WHERE segment = 2")
    assert (await filled.verify()).problem == ChainProblem(SEGMENT + 1, "seal_edited")


async def test_a_missing_head_is_reported(filled: AuditDb) -> None:
    await filled.tamper("DELETE FROM audit_head")
    report = await filled.verify()
    assert report.problem == ChainProblem(N, "head_missing")


async def test_an_edited_head_is_reported(filled: AuditDb) -> None:
    await filled.tamper(("UPDATE audit_head SET mac = :m", {"m": bytes(32)}))
    assert (await filled.verify()).problem == ChainProblem(N, "head_edited")
    await filled.tamper(("UPDATE audit_head SET seq = :s", {"s": N - 3}))
    assert (await filled.verify()).problem == ChainProblem(N - 2, "head_edited")


# Every column the log is filtered or shown by, given a value that differs from the entry's.
EDITS = {
    "kind": "UPDATE audit_log SET kind = 'recording.allowed' WHERE seq = :s",
    "session_id": "UPDATE audit_log SET session_id = :other WHERE seq = :s",
    "person_id": "UPDATE audit_log SET person_id = NULL WHERE seq = :s",
    "org_id": "UPDATE audit_log SET org_id = NULL WHERE seq = :s",
    "at": "UPDATE audit_log SET at = at + 1 WHERE seq = :s",
}


@pytest.mark.parametrize(
    ("column", "seq"),
    [
        # under a seal: inside, first and last of a segment
        ("kind", 7),
        ("session_id", SEGMENT + 1),
        ("person_id", 3 * SEGMENT),
        ("org_id", 1500),
        ("at", 2000),
        # in the unsealed tail
        *((column, TAIL) for column in EDITS),
    ],
)
async def test_an_edited_index_column_is_named(filled: AuditDb, column: str, seq: int) -> None:
    # Filters select rows by these columns: an edit would hide the entry from an organisation's
    # view, so it must be as visible as an edit of the entry itself.
    await filled.tamper((EDITS[column], {"s": seq, "other": "0" * 32}))
    report = await filled.verify()
    assert report.problem == ChainProblem(seq, "edited", column=column)
    assert report.problem.describe() == f"entry {seq} was edited (its {column} column)"
    assert report.checked == seq - 1


async def test_an_edited_mac_at_the_end_of_a_sealed_log_is_named(audit_db: AuditDb) -> None:
    # No unsealed tail: the head's MAC is compared with a computed MAC, not the stored column.
    await audit_db.fill(2 * SEGMENT)
    await audit_db.tamper(
        ("UPDATE audit_log SET mac = :m WHERE seq = :s", {"m": bytes(32), "s": 2 * SEGMENT}),
        ("UPDATE audit_head SET mac = :m", {"m": bytes(32)}),
    )
    assert (await audit_db.verify()).problem == ChainProblem(2 * SEGMENT, "edited")


async def test_segments_are_joined_in_seq_order_as_bytes(audit_db: AuditDb) -> None:
    """The bulk query must return bytes in seq order even when rows were stored out of order."""
    await audit_db.fill(SEGMENT, group=SEGMENT)
    rows = await audit_db.rows(
        "SELECT seq, at, org_id, kind, session_id, person_id, entry, mac, chain, link"
        " FROM audit_log ORDER BY seq"
    )
    await audit_db.tamper("DELETE FROM audit_log")
    async with audit_db.engine.begin() as conn:  # store them again, newest first
        for row in reversed(rows):
            await conn.execute(
                text(
                    "INSERT INTO audit_log (seq, at, org_id, kind, session_id, person_id, entry,"
                    " mac, chain, link) VALUES (:s, :a, :o, :k, :se, :p, :e, :m, :c, :l)"
                ),
                dict(zip(("s", "a", "o", "k", "se", "p", "e", "m", "c", "l"), row, strict=True)),
            )
    expected = RS.join(bytes(row[6]) for row in rows)
    sql = audit_reader._SEGMENT_SQL[audit_db.dialect]
    params = audit_reader._segment_params(1, 1)
    got = await audit_db.rows(sql, **params)
    assert type(got[0][3]) is bytes
    assert got[0][:4] == (SEGMENT, 1, SEGMENT, expected)
    assert got[0][6] == 0  # every row's columns spell its entry's prefix
    if audit_db.dialect == "sqlite":  # and through the stdlib connection the workers use
        database = audit_db.reader.url.database
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            row = db.execute(sql, params).fetchone()
        assert type(row[3]) is bytes
        assert row[3] == expected
    report = await audit_db.verify()
    assert report.intact, report.problem


async def test_entries_without_org_session_or_person_verify_in_bulk(
    audit_db: AuditDb, no_careful_check: None
) -> None:
    # Missing fields are NULL columns and "" in the entry: the bulk check treats them alike.
    await audit_db.writer.record(
        *(AuditEvent(kind="system.started", actor="system") for _ in range(SEGMENT + 3))
    )
    report = await audit_db.verify()
    assert report.intact, report.problem
    await audit_db.tamper("UPDATE audit_log SET person_id = 'x' WHERE seq = 9")
    assert (await audit_db.verify()).problem == ChainProblem(9, "edited", column="person_id")
