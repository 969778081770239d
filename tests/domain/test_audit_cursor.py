"""The audit log's paging cursor: one position per chain, as text the API hands out."""

from __future__ import annotations

import re

import pytest

from gateway.domain.audit_cursor import MAX_CHAINS, PATTERN, AuditCursor


@pytest.mark.parametrize(
    ("text", "cursor"),
    [
        ("0", AuditCursor()),
        ("17", AuditCursor(floor=17)),  # a bare entry number: what cursors were before chains
        ("1:40", AuditCursor(chains=((1, 40),))),
        ("2:9,1:40", AuditCursor(chains=((1, 40), (2, 9)))),
        ("12,3:30", AuditCursor(floor=12, chains=((3, 30),))),
        ("007", AuditCursor(floor=7)),
        # Named twice, or two floors: the highest counts, as advancing would have made it.
        ("1:4,1:9,1:5", AuditCursor(chains=((1, 9),))),
        ("3,8,2:1", AuditCursor(floor=8, chains=((2, 1),))),
        (",".join(f"{c}:1" for c in range(1, MAX_CHAINS + 2)), None),
    ],
)
def test_cursors_read(text: str, cursor: AuditCursor | None) -> None:
    read = AuditCursor.parse(text)
    assert read == cursor or cursor is None
    assert AuditCursor.parse(read.text()) == read
    assert re.fullmatch(PATTERN, text)  # the API's schema says so too


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1:",
        ":4",
        "0:4",  # chains are numbered from 1
        "1:",
        "1234567890:1",  # chain numbers are small
        "1:-4",
        "1:4;2:5",
        "１:4",  # full-width digit
        "²",
        "1:" + "9" * 20,
        "1:" + str(2**62 + 1),
        ",".join(f"{c}:1" for c in range(1, MAX_CHAINS + 3)),
        "1:1," * 3000 + "1",
    ],
)
def test_anything_else_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        AuditCursor.parse(text)
    assert not re.fullmatch(PATTERN, text)  # and the API's schema does not allow it


@pytest.mark.parametrize(
    ("start", "shown", "after"),
    [
        (AuditCursor(), [], AuditCursor()),
        (AuditCursor(), [(1, 5), (2, 6), (1, 7)], AuditCursor(chains=((1, 7), (2, 6)))),
        # An entry committed late on chain 2 (seq 4, below chain 1's 7) moves chain 2 only.
        (AuditCursor(chains=((1, 7), (2, 3))), [(2, 4)], AuditCursor(chains=((1, 7), (2, 4)))),
        # Never backwards.
        (AuditCursor(chains=((1, 7),)), [(1, 2)], AuditCursor(chains=((1, 7),))),
        (AuditCursor(floor=10), [(3, 12)], AuditCursor(floor=10, chains=((3, 12),))),
    ],
)
def test_a_cursor_moves_each_chain_to_the_last_entry_shown_of_it(
    start: AuditCursor, shown: list[tuple[int, int]], after: AuditCursor
) -> None:
    assert start.advanced(shown) == after


def test_each_chain_resumes_after_its_own_position_and_the_floor() -> None:
    cursor = AuditCursor(floor=10, chains=((1, 40), (2, 5)))
    assert cursor.after(1) == 40
    assert cursor.after(2) == 10  # the floor still holds for a chain behind it
    assert cursor.after(3) == 10
