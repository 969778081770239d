"""The rule for gateway processes on one database, as a table (`domain/processes.py`)."""

from __future__ import annotations

import pytest

from gateway.domain.processes import GatewayProcess, LiveStateKind, start_conflict

OWN = LiveStateKind.IN_PROCESS
SHARED = LiveStateKind.REDIS


def process(name: str, kind: LiveStateKind) -> GatewayProcess:
    return GatewayProcess(name, kind, "host-a", 4242)


@pytest.mark.parametrize(
    ("me", "others", "refused"),
    [
        (OWN, [], False),  # alone
        (OWN, [OWN], True),  # two with their own live state: split facts
        (OWN, [SHARED], True),  # one outside the shared live state
        (SHARED, [OWN], True),
        (SHARED, [SHARED, SHARED], False),  # all share Redis
        (SHARED, [], False),
    ],
)
def test_who_may_start_beside_whom(
    me: LiveStateKind, others: list[LiveStateKind], refused: bool
) -> None:
    alive = [process(f"p{i}", kind) for i, kind in enumerate(others)]
    reason = start_conflict(process("me", me), alive)
    assert (reason is not None) is refused
    if reason is not None:
        assert "host-a, pid 4242" in reason and "GATEWAY_REDIS_URL" in reason
        assert "\n" not in reason  # one line for the operator


def test_own_entry_is_no_conflict() -> None:
    me = process("me", OWN)
    assert start_conflict(me, [me]) is None  # renewing finds itself
