"""Segment seals: keyed BLAKE2b-512 now; logs sealed in the first format (HMAC-SHA256) still
verify, and an edit under either kind of seal is still named."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway.domain.audit import (
    GENESIS,
    RS,
    SEAL_BYTES,
    SEGMENT,
    ChainProblem,
    seal_mac,
    seal_matches,
)

from .conftest import KEY, AuditDb, N


def legacy_seal(key: bytes, previous: bytes, entries: list[bytes]) -> bytes:
    return hmac.digest(key, previous + RS.join(entries), "sha256")


def test_a_seal_covers_the_previous_seal_and_every_entry() -> None:
    entries = [b"one", b"two", b"three"]
    seal = seal_mac(KEY, GENESIS, entries)
    assert len(seal) == SEAL_BYTES
    assert seal_matches(KEY, GENESIS, entries, seal)
    assert not seal_matches(KEY, GENESIS, [b"one", b"tw0", b"three"], seal)
    assert not seal_matches(KEY, GENESIS, [b"two", b"one", b"three"], seal)
    assert not seal_matches(KEY, b"\x01" * 32, entries, seal)
    assert not seal_matches(b"another key" * 3, GENESIS, entries, seal)
    # Not a plain hash: nobody without the key can make one.
    assert seal != hashlib.blake2b(GENESIS + RS.join(entries)).digest()


def test_first_format_seals_are_checked_as_they_were_written() -> None:
    entries = [b"one", b"two"]
    old = legacy_seal(KEY, GENESIS, entries)
    assert seal_matches(KEY, GENESIS, entries, old)
    assert not seal_matches(KEY, GENESIS, [b"one", b"two!"], old)


@pytest.fixture
async def first_format(filled: AuditDb) -> AuditDb:
    """The filled log with every seal rewritten as the first format wrote it."""
    previous = GENESIS
    for segment in range(1, N // SEGMENT + 1):
        rows = await filled.rows(
            "SELECT entry FROM audit_log WHERE seq BETWEEN :a AND :b ORDER BY seq",
            a=(segment - 1) * SEGMENT + 1,
            b=segment * SEGMENT,
        )
        previous = legacy_seal(KEY, previous, [bytes(r[0]) for r in rows])
        await filled.tamper(
            ("UPDATE audit_seals SET mac = :m WHERE segment = :s", {"m": previous, "s": segment})
        )
    return filled


async def test_a_log_sealed_in_the_first_format_verifies(first_format: AuditDb) -> None:
    report = await first_format.verify()
    assert report.intact, report.problem
    assert report.checked == N


async def test_an_edit_under_a_first_format_seal_is_named(first_format: AuditDb) -> None:
    seq = SEGMENT + 17
    ((entry, _mac),) = [await first_format.entry(seq)]
    await first_format.tamper(
        (
            "UPDATE audit_log SET entry = :e WHERE seq = :s",
            {"e": entry.replace(b"i", b"j", 1), "s": seq},
        )
    )
    assert (await first_format.verify()).problem == ChainProblem(seq, "edited")
