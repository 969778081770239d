"""Entry formats: format 2 puts every indexed field first so the columns must spell a prefix of
the MACed entry; logs written in format 1 (before) still verify, and their columns are checked
by decoding them."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gateway.domain.audit import (
    GENESIS,
    SEGMENT,
    V2,
    AuditEvent,
    ChainProblem,
    StoredEntry,
    column_mismatch,
    decode_entry,
    encode_entry,
    encode_entry_v1,
    entry_mac,
    entry_seq,
    moved_from,
    seal_mac,
)

from .conftest import KEY, AuditDb, event

EVENT = AuditEvent(
    kind="admission.decided",
    actor="staff:1",
    org_id="a" * 32,
    session_id="5" * 32,
    person_id="7" * 32,
    data={"decision": "admit"},
)


def stored(raw: bytes, **columns: object) -> StoredEntry:
    values: dict[str, object] = {
        "seq": 12,
        "at": 1_700_000_000_000_000,
        "org_id": EVENT.org_id,
        "kind": EVENT.kind,
        "session_id": EVENT.session_id,
        "person_id": EVENT.person_id,
    }
    values.update(columns)
    return StoredEntry(**values, entry=raw, mac=bytes(32))  # type: ignore[arg-type]


def test_both_formats_decode_to_the_same_entry() -> None:
    v2 = encode_entry(12, 1_700_000_000_000_000, EVENT)
    v1 = encode_entry_v1(12, 1_700_000_000_000_000, EVENT)
    assert v2.startswith(V2) and v1[:1].isdigit()
    assert decode_entry(v2) == decode_entry(v1)
    assert entry_seq(v2) == entry_seq(v1) == 12


@pytest.mark.parametrize("encode", [encode_entry, encode_entry_v1], ids=["v2", "v1"])
@pytest.mark.parametrize(
    ("columns", "named"),
    [
        ({}, None),
        ({"kind": "recording.allowed"}, "kind"),
        ({"session_id": "6" * 32}, "session_id"),
        ({"session_id": None}, "session_id"),
        ({"person_id": "8" * 32}, "person_id"),
        ({"org_id": "b" * 32}, "org_id"),
        ({"org_id": None}, "org_id"),
        ({"at": 1}, "at"),
        ({"seq": 13}, "seq"),
    ],
)
def test_columns_must_agree_with_the_entry(
    encode: object, columns: dict[str, object], named: str | None
) -> None:
    assert callable(encode)
    raw = encode(12, 1_700_000_000_000_000, EVENT)
    assert column_mismatch(stored(raw, **columns)) == named


def test_a_missing_field_is_null_or_empty_alike() -> None:
    raw = encode_entry(12, 1_700_000_000_000_000, AuditEvent(kind="k", actor="system"))
    for empty in (None, ""):
        row = stored(raw, org_id=empty, kind="k", session_id=empty, person_id=empty)
        assert column_mismatch(row) is None


def test_an_unreadable_entry_is_named_as_such() -> None:
    assert column_mismatch(stored(b"\xff\xfe")) == "entry"


def test_a_moved_entry_is_recognised_only_when_authentic() -> None:
    previous = b"\x01" * 32
    raw = encode_entry(20, 1, EVENT)
    mac = entry_mac(KEY, previous, raw)
    moved = StoredEntry(12, 1, EVENT.org_id, EVENT.kind, None, None, raw, mac)
    assert moved_from(KEY, moved, [GENESIS, previous]) == 20
    assert moved_from(KEY, moved, [GENESIS]) is None  # not after any predecessor offered
    forged = StoredEntry(12, 1, None, "k", None, None, raw.replace(b"20", b"21", 1), mac)
    assert moved_from(KEY, forged, [previous]) is None
    in_place = StoredEntry(20, 1, None, "k", None, None, raw, mac)
    assert moved_from(KEY, in_place, [previous]) is None


async def write_first_format(db: AuditDb, count: int) -> None:
    """A log as the gateway wrote it before format 2: rows, seals and head, stored directly."""
    at = 1_700_000_000_000_000
    previous, segment_entries = GENESIS, []
    rows: list[dict[str, object]] = []
    for seq in range(1, count + 1):
        e = event(seq)
        raw = encode_entry_v1(seq, at, e)
        previous = entry_mac(KEY, previous, raw)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "org_id": e.org_id,
                "kind": e.kind,
                "session_id": e.session_id,
                "person_id": e.person_id,
                "entry": raw,
                "mac": previous,
                "link": seq,  # the first chain, as migration 0015 leaves older rows
            }
        )
        segment_entries.append(raw)
    seals = [
        {"s": segment, "m": seal_mac_of(segment_entries, segment)}
        for segment in range(1, count // SEGMENT + 1)
    ]
    async with db.engine.begin() as conn:  # appends only: the triggers allow them
        await conn.execute(
            text(
                "INSERT INTO audit_log"
                " (seq, at, org_id, kind, session_id, person_id, entry, mac, link) VALUES"
                " (:seq, :at, :org_id, :kind, :session_id, :person_id, :entry, :mac, :link)"
            ),
            rows,
        )
        if seals:
            await conn.execute(
                text("INSERT INTO audit_seals (segment, mac) VALUES (:s, :m)"), seals
            )
        await conn.execute(
            text("UPDATE audit_head SET seq = :s, mac = :m"), {"s": count, "m": previous}
        )
        if db.dialect == "postgresql":  # as migration 0015 sets it over older rows
            await conn.execute(text("SELECT setval('audit_seq', :n)"), {"n": count})


def seal_mac_of(entries: list[bytes], segment: int) -> bytes:
    """The seal of `segment` over `entries` (all of them, from entry 1), chained from genesis."""
    seal = GENESIS
    for number in range(1, segment + 1):
        seal = seal_mac(KEY, seal, entries[(number - 1) * SEGMENT : number * SEGMENT])
    return seal


OLD = SEGMENT + 40  # one sealed segment and a tail, all in format 1


@pytest.fixture
async def first_format_log(audit_db: AuditDb) -> AuditDb:
    await write_first_format(audit_db, OLD)
    return audit_db


async def test_a_log_written_in_the_first_format_still_verifies(first_format_log: AuditDb) -> None:
    report = await first_format_log.verify()
    assert report.intact, report.problem
    assert report.checked == OLD


async def test_new_entries_follow_old_ones_on_one_chain(first_format_log: AuditDb) -> None:
    await first_format_log.fill(2 * SEGMENT)  # crosses into new segments, in format 2
    report = await first_format_log.verify()
    assert report.intact, report.problem
    assert report.checked == OLD + 2 * SEGMENT
    assert (await first_format_log.entry(OLD))[0][:1].isdigit()
    assert (await first_format_log.entry(OLD + 1))[0].startswith(V2)


@pytest.mark.parametrize("seq", [9, OLD - 3])  # under a seal, in the tail
@pytest.mark.parametrize("column", ["kind", "session_id", "person_id"])
async def test_an_edited_column_of_a_first_format_entry_is_named(
    first_format_log: AuditDb, seq: int, column: str
) -> None:
    await first_format_log.tamper(
        (f"UPDATE audit_log SET {column} = :v WHERE seq = :s", {"v": "x", "s": seq})  # noqa: S608
    )
    assert (await first_format_log.verify()).problem == ChainProblem(seq, "edited", column=column)


async def test_an_edited_first_format_entry_is_named(first_format_log: AuditDb) -> None:
    entry, _ = await first_format_log.entry(100)
    await first_format_log.tamper(
        ("UPDATE audit_log SET entry = :e WHERE seq = 100", {"e": entry.replace(b"i", b"j", 1)})
    )
    assert (await first_format_log.verify()).problem == ChainProblem(100, "edited")
