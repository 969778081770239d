"""Whether this process may still write recordings: its registration must not have lapsed.

Every serving process renews its entry in `gateway_processes` (adapters/sql/processes.py) every
third of GATEWAY_LIVE_HEARTBEAT_SECONDS; an entry not renewed within that window lapses, and
once it has lapsed (and a grace period more, `orphaned` in adapters/sql/recordings.py) another
process's crash recovery seals the recordings it was writing. A process that cannot renew (SQL
unreachable, the machine stalled) must therefore stop writing before its entry can lapse, by its
own clock, whatever the database says: the writer asks `may_write` before each batch it appends
(services/recordings.py).

The entry expires `ttl` after the renewal's transaction ran on the database; that transaction
ran after the renewal was sent, so `sent + ttl` (local monotonic time) is never later than the
expiry. Writing stops `margin` before it, for the clocks' drift and the batch in hand.

Before the first registration (tools, tests that build a runtime without serving) the lease is
not armed: there is no entry that could lapse, and writing is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RegistrationLease"]


@dataclass
class RegistrationLease:
    ttl: float  # seconds an entry lives unless renewed (GATEWAY_LIVE_HEARTBEAT_SECONDS)
    renewed_at: float | None = None  # monotonic time the last successful renewal was sent

    @property
    def margin(self) -> float:
        return min(1.0, self.ttl / 5)

    def renewed(self, sent_at: float) -> None:
        """A renewal sent at `sent_at` succeeded (its entry lives until at least sent_at+ttl)."""
        if self.renewed_at is None or sent_at > self.renewed_at:
            self.renewed_at = sent_at

    def may_write(self, now: float) -> bool:
        if self.renewed_at is None:
            return True
        return now < self.renewed_at + self.ttl - self.margin

    def lapsed(self, now: float) -> bool:
        return not self.may_write(now)
