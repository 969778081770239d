"""Where a reader of the audit log stopped: one position per chain.

Several processes commit to the log side by side, each on a chain of its own (see
`gateway.domain.audit`, "Chains"), and take their seqs before they commit. So a commit on one
chain can land after a commit with a higher seq on another: a reader that paged by "after seq N"
would skip it for good. Within one chain, commits are made one at a time in seq order (a
chain's head row is locked from before its seqs are taken until the commit), so "the last seq
shown of each chain" misses nothing: an entry committed late on chain 2 still has a seq above
what was shown of chain 2, and comes on a later page (a page is in seq order; a late entry may
come after entries with higher seqs on an earlier page).

The cursor's text (the API's `after` and `next_after`): comma-separated items, each
`CHAIN:SEQ` (the last seq shown of that chain), and at most one bare `SEQ`, the floor for every
other chain (a bare entry number is what cursors were before chains, and still reads).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MAX_CHAINS", "MAX_LENGTH", "PATTERN", "AuditCursor"]

MAX_CHAINS = 64  # a cursor names at most this many chains (chains are processes' writers)
_SEQ_DIGITS = 18  # below 2**62
_CHAIN_DIGITS = 9
_ITEM = (
    rf"(?:[0-9]{{1,{_SEQ_DIGITS}}}|[1-9][0-9]{{0,{_CHAIN_DIGITS - 1}}}:[0-9]{{1,{_SEQ_DIGITS}}})"
)
# What `parse` reads, for the API's schema (so what the document allows, the gateway accepts).
PATTERN = rf"^{_ITEM}(?:,{_ITEM}){{0,{MAX_CHAINS}}}$"
MAX_LENGTH = (MAX_CHAINS + 1) * (_CHAIN_DIGITS + 1 + _SEQ_DIGITS + 1)


@dataclass(frozen=True, slots=True)
class AuditCursor:
    floor: int = 0  # every chain not named below: entries after this seq
    chains: tuple[tuple[int, int], ...] = ()  # (chain, last seq shown), by chain

    def after(self, chain: int) -> int:
        """Entries of `chain` with a seq above this are still to be shown."""
        for named, seq in self.chains:
            if named == chain:
                return max(seq, self.floor)
        return self.floor

    def advanced(self, shown: Iterable[tuple[int, int]]) -> AuditCursor:
        """The cursor after showing these (chain, seq) entries."""
        positions = dict(self.chains)
        for chain, seq in shown:
            if seq > positions.get(chain, self.floor):
                positions[chain] = seq
        return AuditCursor(self.floor, tuple(sorted(positions.items())))

    def text(self) -> str:
        items = [f"{chain}:{seq}" for chain, seq in self.chains]
        return ",".join([str(self.floor), *items] if self.floor or not items else items)

    @staticmethod
    def parse(text: str) -> AuditCursor:
        """ValueError, saying what is wrong, for anything `PATTERN` does not match. A chain
        named twice, or several bare numbers, count at their highest (as `advanced` would)."""
        if len(text) > MAX_LENGTH or not _SHAPE.match(text):
            raise ValueError(
                f"a cursor is up to {MAX_CHAINS + 1} comma-separated CHAIN:SEQ or SEQ numbers"
            )
        floor = 0
        chains: dict[int, int] = {}
        for item in text.split(","):
            chain_text, colon, seq_text = item.partition(":")
            if not colon:
                floor = max(floor, int(chain_text))
            else:
                chain = int(chain_text)
                chains[chain] = max(chains.get(chain, 0), int(seq_text))
        return AuditCursor(floor, tuple(sorted(chains.items())))


_SHAPE = re.compile(PATTERN, re.ASCII)
