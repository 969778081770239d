"""The tamper-evident audit log (R15): canonical entries, their MAC chain, and its verification.

Each entry's MAC commits to the previous entry's MAC: mac_i = HMAC(key, mac_{i-1} || entry_i).
Every SEGMENT entries are also sealed as a block: seal_s = HMAC(key, seal_{s-1} || entries of s
joined by RS), which lets `verify` check millions of entries in bulk and fall back to the
per-entry chain only where a seal fails, to name the first entry that was touched. The key lives
outside the database, so someone who can write the tables cannot forge a MAC.

Entry formats. An entry holds every field the log is filtered or shown by; the table also keeps
some of them in index columns (seq, at, org_id, kind, session_id, person_id), and each of those
must equal what the MACed entry says (`column_mismatch`), or a filter would silently hide an
entry whose column was edited.
- Format 2 (written now) starts with "v2" and puts the indexed fields first, in column order,
  so the columns must spell out a prefix of the entry (`index_prefix`): the database checks
  that in bulk, alongside the seals.
- Format 1 (the first) starts with the seq and has the actor between kind and session; its
  entries still verify as written, and their columns are checked by decoding them.

Chains. The log is several chains, verified together, so that processes commit side by side
(one chain's head row is locked per commit, not one row for all). Each entry belongs to one chain
(`chain`) at one place in it (`link`, 1, 2, ...); its MAC follows the previous entry of the same
chain, starting from that chain's genesis (`chain_genesis`: the all-zero MAC for chain 1, so logs
written before chains verify as they are, and a MAC of the chain's number for the others, so an
entry, a seal or a whole chain moved to another chain number fails). Seals cover segments of one
chain by link. `seq` stays the log's one order for reading (unique across chains); within a chain
it grows with link. Chain numbers are taken 1, 2, 3, ... with no gap, so a chain missing between
others is noticed; a witness names every chain's head, so the newest chain going is noticed too.

Heads kept outside the database (`WitnessedHead`, "SEQ:MAC"): cutting the newest entries and
rolling the head row back leaves a shorter chain that is valid on its own; a head recorded
elsewhere earlier must still be in the chain, with the same MAC, or the log was cut or
rewritten after it was recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

SEGMENT = 1024
FIRST_CHAIN = 1
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
    chain: int = FIRST_CHAIN  # which chain it was committed on (from its row; for paging)

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


V2 = b"v2" + US.encode()  # format 2 entries start so; format 1 entries start with a digit
INDEX_COLUMNS = ("seq", "at", "org_id", "kind", "session_id", "person_id")


def index_prefix(
    seq: int,
    at: int,
    org_id: str | None,
    kind: str,
    session_id: str | None,
    person_id: str | None,
) -> bytes:
    """What a format 2 entry starts with, spelt from its index columns (NULL and "" alike)."""
    fields = (str(seq), str(at), org_id or "", kind, session_id or "", person_id or "")
    return V2 + US.join(fields).encode() + US.encode()


def _data(event: AuditEvent) -> str:
    return json.dumps(event.data or {}, sort_keys=True, separators=(",", ":"), default=str)


def encode_entry(seq: int, at: int, event: AuditEvent) -> bytes:
    """The canonical bytes an entry's MAC covers (format 2); they are stored as they are."""
    prefix = index_prefix(seq, at, event.org_id, event.kind, event.session_id, event.person_id)
    return prefix + US.join((event.actor, _data(event))).encode()


def encode_entry_v1(seq: int, at: int, event: AuditEvent) -> bytes:
    """The first format, as logs written before format 2 hold it (kept to test they verify)."""
    fields = (
        str(seq),
        str(at),
        event.org_id or "",
        event.kind,
        event.actor,
        event.session_id or "",
        event.person_id or "",
        _data(event),
    )
    return US.join(fields).encode()


def decode_entry(raw: bytes) -> AuditEntry:
    """Either format. Raises ValueError for bytes that are neither."""
    if raw.startswith(V2):
        seq, at, org, kind, session, person, actor, data = raw[len(V2) :].decode().split(US, 7)
    else:
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


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One audit_log row as stored: the index columns, the entry bytes, the MAC, and its place
    (chain and link; link 0: the same as seq, as in a log written before chains)."""

    seq: int
    at: int
    org_id: str | None
    kind: str
    session_id: str | None
    person_id: str | None
    entry: bytes
    mac: bytes
    chain: int = FIRST_CHAIN
    link: int = 0

    @property
    def place(self) -> int:
        """Where the row stands in its chain."""
        return self.link or self.seq


def chain_genesis(key: bytes, chain: int) -> bytes:
    """The MAC a chain starts from: all zeros for the first chain (as before chains), a MAC of
    the chain's number for the others."""
    if chain == FIRST_CHAIN:
        return GENESIS
    return hmac.digest(key, b"sgw-audit-chain" + US.encode() + str(chain).encode(), "sha256")


def column_mismatch(row: StoredEntry) -> str | None:
    """The first index column that differs from what the row's entry says, "entry" if the
    entry cannot be read at all, or None when they agree. NULL and "" count as equal."""
    if row.entry.startswith(
        index_prefix(row.seq, row.at, row.org_id, row.kind, row.session_id, row.person_id)
    ):
        return None
    try:
        entry = decode_entry(row.entry)
    except (ValueError, UnicodeDecodeError):
        return "entry"
    for column in INDEX_COLUMNS:
        if (getattr(row, column) or None) != (getattr(entry, column) or None):
            return column
    return None


def entry_seq(raw: bytes) -> int | None:
    """The seq an entry was written at (its own first field), or None if unreadable."""
    head = raw[len(V2) :] if raw.startswith(V2) else raw
    digits = head.split(US.encode(), 1)[0]
    return int(digits) if digits.isdigit() and len(digits) < 20 else None


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
    """The first thing in the log that is not as written.

    what: "edited" (column: which index column, if only that), "removed", "reordered" (other:
    the entry whose record is found in this place), "cut", "seal_edited", "head_missing",
    "head_edited", "head_cut" / "head_rewritten" (other: the seq of a head recorded outside the
    database that the log no longer holds).
    """

    seq: int  # the place in its chain (the seq itself for a log of one chain)
    what: str
    column: str | None = None
    other: int | None = None
    chain: int = FIRST_CHAIN
    # The seq of the stored row the problem was found at, when there is one: what the audit
    # API shows for that entry (a chain's places and the log's seqs differ once several
    # processes write, or a group took seqs it did not use). Named in `describe`.
    row_seq: int | None = field(default=None, compare=False)

    def describe(self) -> str:
        text = self._describe()
        return text if self.chain == FIRST_CHAIN else f"chain {self.chain}: {text}"

    def _describe(self) -> str:
        if self.what == "chain_missing":
            return "the whole chain is missing (chains after it are stored)"
        if self.what == "head_missing":
            return "the chain head is missing"
        if self.what == "head_edited":
            return "the chain head was edited"
        if self.what == "seal_edited":
            return f"the seal of the segment starting at entry {self.seq} was edited"
        if self.what == "head_cut":
            return (
                f"entries from {self.seq} were cut: the log ends at entry {self.seq - 1} but "
                f"its head was at entry {self.other} when recorded outside the database"
            )
        if self.what == "head_rewritten":
            return (
                f"the log was rewritten at or before entry {self.other}: its MAC there is not "
                "the one recorded outside the database"
            )
        seq = self.row_seq if self.row_seq is not None else self.seq
        if self.what == "edited" and self.column is not None:
            return f"entry {seq} was edited (its {self.column} column)"
        if self.what == "reordered" and self.other is not None:
            return f"entry {seq} was reordered: it holds entry {self.other}"
        return f"entry {seq} was {self.what}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    checked: int  # entries, over all chains
    problem: ChainProblem | None
    head_seq: int  # the first chain's head
    head_mac: bytes
    heads: tuple[WitnessedHead, ...] = ()  # every chain's head, as stored

    @property
    def intact(self) -> bool:
        return self.problem is None

    @property
    def head(self) -> str:
        """Every chain's head, space-separated ("SEQ:MAC" for the first chain, "CHAIN/SEQ:MAC"
        for the others): what `--expect-head` takes back."""
        if not self.heads:
            return format_head(self.head_seq, self.head_mac)
        return " ".join(format_head(h.seq, h.mac, h.chain) for h in self.heads)


def walk_entries(
    key: bytes, previous: bytes, expected_seq: int, rows: Iterable[StoredEntry]
) -> tuple[int, bytes, ChainProblem | None]:
    """Check entries one by one, in seq order, starting after `previous`: each must follow on
    the chain and agree with its index columns.

    Returns (next expected seq, last good MAC, first problem or None). An entry whose MAC fails
    is "edited" here; `moved_from` tells whether it is an authentic entry from elsewhere.
    """
    for row in rows:
        place, chain = row.place, row.chain
        if place != expected_seq:
            what = "removed" if place > expected_seq else "reordered"
            return expected_seq, previous, ChainProblem(min(place, expected_seq), what, chain=chain)
        if not hmac.compare_digest(entry_mac(key, previous, row.entry), row.mac):
            problem = ChainProblem(place, "edited", chain=chain, row_seq=row.seq)
            return expected_seq, previous, problem
        column = column_mismatch(row)
        if column is not None:
            problem = ChainProblem(place, "edited", column=column, chain=chain, row_seq=row.seq)
            return expected_seq, previous, problem
        previous = row.mac
        expected_seq += 1
    return expected_seq, previous, None


def moved_from(key: bytes, row: StoredEntry, predecessors: Iterable[bytes]) -> int | None:
    """If the row holds an authentic entry written for another place (a swap, or an earlier
    entry copied over this one), the seq it was written at; else None.

    Authentic: its MAC verifies after one of `predecessors` (stored MACs of the rows around the
    place it names). Without that check an edit of the entry's seq field would pass for a move.
    """
    written_at = entry_seq(row.entry)
    if written_at is None or written_at == row.seq:
        return None
    for previous in predecessors:
        if hmac.compare_digest(entry_mac(key, previous, row.entry), row.mac):
            return written_at
    return None


@dataclass(frozen=True, slots=True)
class WitnessedHead:
    """A chain's head (the place and MAC of its newest entry) as recorded outside the
    database."""

    seq: int
    mac: bytes
    chain: int = FIRST_CHAIN


def format_head(seq: int, mac: bytes, chain: int = FIRST_CHAIN) -> str:
    head = f"{seq}:{mac.hex()}"
    return head if chain == FIRST_CHAIN else f"{chain}/{head}"


def parse_heads(text: str) -> list[WitnessedHead]:
    """Heads separated by spaces or commas, as `audit verify` prints them."""
    parts = [part for part in text.replace(",", " ").split() if part]
    if not parts:
        raise ValueError("a head is SEQ:MAC, e.g. 1024:3f2a...")
    return [parse_head(part) for part in parts]


def parse_head(text: str) -> WitnessedHead:
    """ "SEQ:MAC" (MAC in hex) for the first chain, "CHAIN/SEQ:MAC" for another, as `audit
    verify` prints them. Raises ValueError otherwise."""
    chain_text, slash, head = text.strip().rpartition("/")
    chain = FIRST_CHAIN
    if slash:
        if not chain_text.isdigit() or len(chain_text) > 9 or int(chain_text) < 1:
            raise ValueError("a head's chain is a positive number, as in 2/1024:3f2a...")
        chain = int(chain_text)
    seq, sep, mac = head.partition(":")
    if not sep or not seq.isdigit() or len(seq) > 19:
        raise ValueError("a head is SEQ:MAC, e.g. 1024:3f2a...")
    try:
        raw = bytes.fromhex(mac)
    except ValueError:
        raise ValueError("the MAC of a head is hexadecimal") from None
    if len(raw) != 32:
        raise ValueError("the MAC of a head is 64 hexadecimal digits")
    return WitnessedHead(int(seq), raw, chain)


def parse_witness_line(text: str) -> list[WitnessedHead]:
    """One line of a witness file: JSON {"heads": [...], "at"} (every chain's head, what the
    gateway appends), JSON {"seq", "mac", "at"} (the first chain's, as written before chains),
    or heads as `audit verify` prints them. Raises ValueError, KeyError or TypeError."""
    if not text.startswith("{"):
        return parse_heads(text)
    document = json.loads(text)
    if "heads" in document:
        heads = document["heads"]
        if not isinstance(heads, list) or not all(isinstance(h, str) for h in heads):
            raise ValueError("heads is a list of CHAIN/SEQ:MAC")
        return [parse_head(head) for head in heads]
    return [parse_head(f"{document['seq']}:{document['mac']}")]


def parse_witness(lines: Iterable[str]) -> list[WitnessedHead]:
    """A witness file: one record a line (see `parse_witness_line`). Blank lines are skipped.
    Raises ValueError naming the first line that is not a record."""
    heads = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            heads.extend(parse_witness_line(text))
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"line {number} is not a head (SEQ:MAC or JSON)") from None
    return heads


def check_witnessed(
    end: int,
    macs: Mapping[int, bytes],
    heads: Sequence[WitnessedHead],
    genesis: bytes = GENESIS,
) -> ChainProblem | None:
    """Is every witnessed head of one chain still in it? `end` is the chain's last place (of
    the otherwise verified chain), `macs` its MACs at the witnessed places not past `end`,
    `genesis` the MAC it starts from (place 0)."""
    for head in sorted(heads, key=lambda h: h.seq):
        chain = head.chain
        if head.seq > end:
            return ChainProblem(end + 1, "head_cut", other=head.seq, chain=chain)
        mac = macs.get(head.seq, genesis if head.seq == 0 else None)
        if mac is None or not hmac.compare_digest(mac, head.mac):
            return ChainProblem(head.seq, "head_rewritten", other=head.seq, chain=chain)
    return None
