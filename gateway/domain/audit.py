"""The tamper-evident audit log (R15): canonical entries, their MAC chain, and its verification.

Each entry's MAC commits to the previous entry's MAC: mac_i = HMAC(key, mac_{i-1} || entry_i).
Every SEGMENT entries are also sealed as a block: seal_s = HMAC(key, seal_{s-1} || entries of s
joined by RS), which lets `verify` check millions of entries in bulk and fall back to the
per-entry chain only where a seal fails, to name the first entry that was touched. The key lives
outside the database, so someone who can write the tables cannot forge a MAC.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

SEGMENT = 1024
US = "\x1f"  # unit separator between an entry's fields; JSON escapes it, ids never hold it
RS = b"\x1e"  # record separator between entries of a sealed segment
GENESIS = bytes(32)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What a service asks to be recorded (before the log gives it a place in the chain)."""

    kind: str
    actor: str
    org_id: str | None = None
    session_id: str | None = None
    person_id: str | None = None
    data: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: int  # UTC microseconds
    org_id: str | None
    kind: str
    actor: str
    session_id: str | None
    person_id: str | None
    data: Mapping[str, object]

    @property
    def at_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.at / 1_000_000, tz=UTC)

    def as_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "at": self.at_datetime.isoformat(),
            "org_id": self.org_id,
            "kind": self.kind,
            "actor": self.actor,
            "session_id": self.session_id,
            "person_id": self.person_id,
            "data": dict(self.data),
        }


def encode_entry(seq: int, at: int, event: AuditEvent) -> bytes:
    """The canonical bytes an entry's MAC covers; they are stored as they are."""
    data = json.dumps(event.data or {}, sort_keys=True, separators=(",", ":"), default=str)
    fields = (
        str(seq),
        str(at),
        event.org_id or "",
        event.kind,
        event.actor,
        event.session_id or "",
        event.person_id or "",
        data,
    )
    return US.join(fields).encode()


def decode_entry(raw: bytes) -> AuditEntry:
    seq, at, org, kind, actor, session, person, data = raw.decode().split(US, 7)
    return AuditEntry(
        seq=int(seq),
        at=int(at),
        org_id=org or None,
        kind=kind,
        actor=actor,
        session_id=session or None,
        person_id=person or None,
        data=json.loads(data),
    )


def entry_mac(key: bytes, previous: bytes, entry: bytes) -> bytes:
    return hmac.digest(key, previous + entry, "sha256")


SEAL_BYTES = 64  # keyed BLAKE2b-512; a 32-byte seal is the first format's HMAC-SHA256
_LEGACY_SEAL_BYTES = 32
_SEAL_PERSON = b"sgw-audit-seal"


def seal_mac(key: bytes, previous_seal: bytes, entries: Iterable[bytes]) -> bytes:
    """A segment's seal: keyed BLAKE2b-512 over the previous seal and the segment's entries.

    Not HMAC-SHA256 like each entry's MAC: checking the whole log hashes every entry's bytes once
    through the seals, and on these machines (no SHA extensions) BLAKE2b runs at 1.75 times
    SHA-256's speed. Keyed BLAKE2b is a MAC in its own right (RFC 7693 section 2.9).
    """
    mac = hashlib.blake2b(key=_seal_key(key), digest_size=SEAL_BYTES, person=_SEAL_PERSON)
    mac.update(previous_seal)
    mac.update(RS.join(entries))
    return mac.digest()


def seal_matches(key: bytes, previous_seal: bytes, entries: Iterable[bytes], seal: bytes) -> bool:
    """Does `seal` seal these entries after `previous_seal`? Seals written before BLAKE2b (32
    bytes, HMAC-SHA256) are still checked as they were written."""
    if len(seal) == _LEGACY_SEAL_BYTES:
        expected = hmac.digest(key, previous_seal + RS.join(entries), "sha256")
    else:
        expected = seal_mac(key, previous_seal, entries)
    return hmac.compare_digest(expected, seal)


def _seal_key(key: bytes) -> bytes:
    # BLAKE2b takes keys up to 64 bytes; a longer one is condensed first (as HMAC does).
    return key if len(key) <= 64 else hashlib.blake2b(key).digest()


def segment_of(seq: int) -> int:
    """Entries 1..SEGMENT are segment 1, and so on."""
    return (seq - 1) // SEGMENT + 1


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int
    what: str  # "edited", "removed", "reordered", "cut", "seal_edited"

    def describe(self) -> str:
        if self.what == "head_missing":
            return "the chain head is missing"
        if self.what == "head_edited":
            return "the chain head was edited"
        if self.what == "seal_edited":
            return f"the seal of the segment starting at entry {self.seq} was edited"
        return f"entry {self.seq} was {self.what}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    checked: int
    problem: ChainProblem | None
    head_seq: int
    head_mac: bytes

    @property
    def intact(self) -> bool:
        return self.problem is None


def walk_entries(
    key: bytes, previous: bytes, expected_seq: int, rows: Iterable[tuple[int, bytes, bytes]]
) -> tuple[int, bytes, ChainProblem | None]:
    """Check entries one by one: (seq, entry, mac) in seq order, starting after `previous`.

    Returns (next expected seq, last good MAC, first problem or None).
    """
    recent: dict[bytes, int] = {}
    for seq, entry, mac in rows:
        if seq != expected_seq:
            what = "removed" if seq > expected_seq else "reordered"
            return expected_seq, previous, ChainProblem(min(seq, expected_seq), what)
        if not hmac.compare_digest(entry_mac(key, previous, entry), mac):
            # An authentic entry in the wrong place still verifies against some other
            # predecessor: tell that apart from an edit.
            for prior, prior_seq in recent.items():
                if hmac.compare_digest(entry_mac(key, prior, entry), mac) and prior_seq != seq:
                    return expected_seq, previous, ChainProblem(seq, "reordered")
            return expected_seq, previous, ChainProblem(seq, "edited")
        recent[previous] = seq
        if len(recent) > 64:
            recent.pop(next(iter(recent)))
        previous = mac
        expected_seq += 1
    return expected_seq, previous, None
