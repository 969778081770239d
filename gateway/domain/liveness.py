"""Which presences outlived the gateway process that entered them (R4 across processes).

Every presence in the shared live state names the process that entered it (its owner), and every
process renews a short-lived heartbeat while it runs. A process that dies (kill -9, a lost host)
stops renewing, but the presences it entered stay: an adult counted there forever would keep a
child unheld on another process. `orphaned` names those presences; the sweep job removes them,
and supervision then counts the adults who are really there.

A presence with no owner (written by a gateway that did not record owners) is an orphan too:
deciding closed costs a brief hold at most, because a live process re-enters whoever is still
connected to it at its next reconciliation.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

__all__ = ["Authority", "OwnedPresence", "orphaned"]


@dataclass(frozen=True, slots=True)
class OwnedPresence:
    """One presence in one session, with the process that entered it (None: not recorded)."""

    session_id: str
    participant_id: str
    owner: str | None


@dataclass(frozen=True, slots=True)
class Authority:
    """Who acts for one live session: the process holding its lease, where browsers reach it
    (`url`), and the lease's fencing counter (it grows at every change of owner, so a write
    from a former owner can be told from the current one's). `mine`: held by the asker."""

    owner: str
    url: str
    fence: int
    mine: bool
    taken_over: bool = False  # the asker has just taken it from another (or from nobody)


def orphaned(
    presences: Sequence[OwnedPresence], alive: Collection[str]
) -> tuple[OwnedPresence, ...]:
    """The presences whose owner is unknown or not among the `alive` processes, sorted."""
    dead = [p for p in presences if p.owner is None or p.owner not in alive]
    return tuple(sorted(dead, key=lambda p: (p.session_id, p.participant_id, p.owner or "")))
