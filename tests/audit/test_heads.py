"""Heads recorded outside the database: a cut of the newest entries covered up by rolling the
head row back (and removing their seals) leaves a valid shorter chain; a head recorded earlier
names the cut. A log cut and then written on (new entries at the old places) is a rewrite."""

from __future__ import annotations

import pytest

from gateway.domain.audit import (
    GENESIS,
    SEGMENT,
    ChainProblem,
    WitnessedHead,
    check_witnessed,
    format_head,
    parse_head,
    parse_heads,
    parse_witness,
)

from .conftest import AuditDb, N

KEEP = 2 * SEGMENT + 500
MAC = bytes(range(32))


def test_a_head_reads_back_as_printed() -> None:
    assert format_head(1024, MAC) == f"1024:{MAC.hex()}"
    assert parse_head(format_head(1024, MAC)) == WitnessedHead(1024, MAC)
    assert parse_head(f" 7:{MAC.hex().upper()}\n") == WitnessedHead(7, MAC)


def test_heads_of_several_chains_read_back_as_printed() -> None:
    heads = [WitnessedHead(1024, MAC), WitnessedHead(7, MAC, chain=2), WitnessedHead(0, MAC, 3)]
    printed = " ".join(format_head(h.seq, h.mac, h.chain) for h in heads)
    assert printed.split()[1] == f"2/7:{MAC.hex()}"
    assert parse_heads(printed) == heads
    assert parse_heads(printed.replace(" ", ",")) == heads


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1024",
        f"x:{MAC.hex()}",
        "12:abc",
        f"-1:{MAC.hex()}",
        f"12:{MAC.hex()}00",
        "12:zz",
        f"0/12:{MAC.hex()}",
        f"x/12:{MAC.hex()}",
        f"/12:{MAC.hex()}",
    ],
)
def test_a_malformed_head_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="head"):
        parse_head(text)


def test_a_witness_file_holds_json_lines_or_printed_heads() -> None:
    lines = [
        f'{{"seq":3,"mac":"{MAC.hex()}","at":"2025-03-01T16:00:00+00:00"}}\n',
        "\n",
        f"9:{MAC.hex()}\n",
    ]
    assert parse_witness(lines) == [WitnessedHead(3, MAC), WitnessedHead(9, MAC)]
    # What the gateway writes since chains: every chain's head in one line.
    line = f'{{"heads":["5:{MAC.hex()}","2/8:{MAC.hex()}"],"at":"2025-03-01T16:00:00+00:00"}}'
    assert parse_witness([line]) == [WitnessedHead(5, MAC), WitnessedHead(8, MAC, 2)]
    with pytest.raises(ValueError, match="line 2 "):
        parse_witness([f"9:{MAC.hex()}", '{"seq": 3}'])


@pytest.mark.parametrize(
    ("end", "macs", "heads", "problem"),
    [
        (10, {5: MAC}, [WitnessedHead(5, MAC)], None),
        (10, {}, [WitnessedHead(0, GENESIS)], None),
        (10, {5: MAC}, [WitnessedHead(12, MAC)], ChainProblem(11, "head_cut", other=12)),
        (10, {5: GENESIS}, [WitnessedHead(5, MAC)], ChainProblem(5, "head_rewritten", other=5)),
        # the earliest head that no longer holds is named
        (
            10,
            {5: MAC, 8: GENESIS},
            [WitnessedHead(12, MAC), WitnessedHead(8, MAC), WitnessedHead(5, MAC)],
            ChainProblem(8, "head_rewritten", other=8),
        ),
    ],
)
def test_check_witnessed(
    end: int, macs: dict[int, bytes], heads: list[WitnessedHead], problem: ChainProblem | None
) -> None:
    assert check_witnessed(end, macs, heads) == problem


async def heads_of(db: AuditDb, *seqs: int) -> list[WitnessedHead]:
    return [WitnessedHead(seq, (await db.entry(seq))[1]) for seq in seqs]


async def test_recorded_heads_of_an_intact_log_verify(filled: AuditDb) -> None:
    # inside, at the first and last of a segment, in the tail, the head itself
    heads = await heads_of(filled, 5, SEGMENT + 1, 2 * SEGMENT, 2 * SEGMENT + 7, N - 1, N)
    report = await filled.verify(witnessed=[*heads, WitnessedHead(0, GENESIS)])
    assert report.intact, report.problem
    assert report.head == f"{N}:{(await filled.entry(N))[1].hex()}"


async def cut_and_cover_up(db: AuditDb, keep: int) -> None:
    """What an attacker with database rights does: delete the newest entries and their seals,
    and roll the head back to the last entry kept."""
    _, mac = await db.entry(keep)
    await db.tamper(
        ("DELETE FROM audit_log WHERE seq > :k", {"k": keep}),
        ("DELETE FROM audit_seals WHERE segment > :s", {"s": keep // SEGMENT}),
        ("UPDATE audit_head SET seq = :k, mac = :m", {"k": keep, "m": mac}),
    )


@pytest.mark.parametrize("keep", [KEEP, 2 * SEGMENT, N - 1])
async def test_a_covered_up_cut_is_caught_by_a_recorded_head(filled: AuditDb, keep: int) -> None:
    (head,) = await heads_of(filled, N)
    await cut_and_cover_up(filled, keep)
    assert (await filled.verify()).intact  # on its own the shorter chain is valid
    report = await filled.verify(witnessed=[head])
    assert report.problem == ChainProblem(keep + 1, "head_cut", other=N)
    assert report.problem.describe() == (
        f"entries from {keep + 1} were cut: the log ends at entry {keep} but its head was at "
        f"entry {N} when recorded outside the database"
    )


async def test_a_log_written_on_after_a_cut_is_a_rewrite(filled: AuditDb) -> None:
    heads = await heads_of(filled, KEEP - 1, N)
    await cut_and_cover_up(filled, KEEP)
    await filled.fill(N - KEEP + 50)  # the gateway goes on writing at the old places
    assert (await filled.verify()).intact
    report = await filled.verify(witnessed=heads)
    assert report.problem == ChainProblem(N, "head_rewritten", other=N)
    assert f"rewritten at or before entry {N}" in report.problem.describe()


async def test_a_mac_column_set_to_the_recorded_one_is_named(filled: AuditDb) -> None:
    # After the rewrite the attacker also copies the recorded MAC into the row: the seals do
    # not cover MAC columns, so the MAC at a recorded head is computed, not read.
    (head,) = await heads_of(filled, 2 * SEGMENT + 100)
    await cut_and_cover_up(filled, 2 * SEGMENT)
    await filled.fill(N)
    await filled.tamper(
        ("UPDATE audit_log SET mac = :m WHERE link = :s", {"m": head.mac, "s": head.seq})
    )
    report = await filled.verify(witnessed=[head])
    assert report.problem == ChainProblem(head.seq, "edited")
