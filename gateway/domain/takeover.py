"""Taking over a session whose owner died while its people stayed connected (DESIGN.md §3).

On a platform the browsers reach directly (LiveKit), the participants of a session outlive the
gateway process that runs it: killed, it stops renewing the session's lease, and nobody would
evaluate supervision until someone joined again. Each round, every process looks at the rooms
the platform says are occupied and decides, per room, what to do about it:

- a session this process runs, or whose lease a live process holds: leave it alone;
- a lapsed lease, the session still on: claim it (atomically, under a new fencing counter: of
  two survivors, one wins) and run the session from the platform's own list, children held
  until the adults are counted again;
- a lapsed lease, the session ended meanwhile (the admin API, the host's End reaching a process
  that never opened the room): close the room, so nobody stays connected to an ended session;
- a lapsed lease whose session the durable store cannot say anything about this round (not
  found, unreadable): leave it alone; it is looked at again next round.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum

__all__ = ["Lease", "RoomAction", "RoomFacts", "decide", "kept_connections", "leases", "unowned"]


class Lease(Enum):
    HERE = "here"  # this process holds it
    ELSEWHERE = "elsewhere"  # another process holds it (alive: it renews it)
    LAPSED = "lapsed"  # nobody holds it: its owner died, stalled, or let it go


class RoomAction(Enum):
    LEAVE = "leave"
    CLAIM = "claim"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class RoomFacts:
    """What one round knows about an occupied room's session. `ended`: None when the durable
    store could not say (the session not found, or unreadable this round)."""

    lease: Lease
    ended: bool | None


def unowned(occupied: Collection[str], held_here: Collection[str]) -> list[str]:
    """The occupied rooms whose lease is worth looking up: not those this process runs (so a
    round's cost follows the sessions that are live, not the rooms of the others), sorted."""
    here = set(held_here)
    return sorted(room for room in set(occupied) if room not in here)


def decide(facts: RoomFacts) -> RoomAction:
    if facts.lease is not Lease.LAPSED or facts.ended is None:
        return RoomAction.LEAVE
    return RoomAction.CLOSE if facts.ended else RoomAction.CLAIM


def leases(
    rooms: Collection[str], holders: Mapping[str, str | None], process_id: str
) -> dict[str, Lease]:
    """Each room's lease from who holds it (None: nobody)."""
    out: dict[str, Lease] = {}
    for room in rooms:
        holder = holders.get(room)
        if holder is None:
            out[room] = Lease.LAPSED
        else:
            out[room] = Lease.HERE if holder == process_id else Lease.ELSEWHERE
    return out


def kept_connections(connections: Mapping[str, str | None], standing: Collection[str]) -> set[str]:
    """Which of a taken-over room's connections the new owner vouches for: the one connection
    of each person who still stands. `connections`: each connection's platform identity and
    the person's per-session identity it was admitted under (None: not an admission's
    identity). Anyone else, and anyone connected twice (an older tab, a copied token: which
    one was admitted last died with the former owner), is disconnected; their pages re-join."""
    per_person = Counter(person for person in connections.values() if person is not None)
    return {
        connection
        for connection, person in connections.items()
        if person is not None and person in standing and per_person[person] == 1
    }
