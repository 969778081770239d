"""Which gateway processes may run on one database at the same time (issue 7, point 2).

The live state (who is present, who is held, removals, used media credentials) is either this
process's own (no GATEWAY_REDIS_URL) or shared through Redis. Two processes with their own live
state on one database would each admit children on half the facts, so:

- a process without Redis runs only when no other gateway process is alive on the database;
- a process with Redis runs beside others with Redis, never beside one without.

Every serving process registers itself in SQL and renews its entry (`adapters/sql/processes.py`);
this module decides, over the entries that are still alive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class LiveStateKind(StrEnum):
    IN_PROCESS = "in_process"
    REDIS = "redis"


@dataclass(frozen=True, slots=True)
class GatewayProcess:
    process_id: str
    live_state: LiveStateKind
    host: str  # the machine's name and the pid: for the operator, to find the other process
    pid: int


def start_conflict(me: GatewayProcess, alive: Sequence[GatewayProcess]) -> str | None:
    """Why `me` may not run beside the other processes `alive` on its database (one line, for
    the operator), or None when it may."""
    for other in alive:
        if other.process_id == me.process_id:
            continue
        where = f"{other.host}, pid {other.pid}"
        if me.live_state is LiveStateKind.IN_PROCESS:
            return (
                f"another gateway process ({where}) is using this database, and without "
                "GATEWAY_REDIS_URL live state cannot be shared; set GATEWAY_REDIS_URL on every "
                "process or stop the other one"
            )
        if other.live_state is LiveStateKind.IN_PROCESS:
            return (
                f"another gateway process ({where}) is using this database without "
                "GATEWAY_REDIS_URL, so its live state is its own; stop it or give it the same "
                "GATEWAY_REDIS_URL"
            )
    return None
