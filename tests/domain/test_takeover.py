"""What a process does about an occupied room whose session it does not run: tables."""

from __future__ import annotations

import pytest

from gateway.domain.takeover import (
    Lease,
    RoomAction,
    RoomFacts,
    decide,
    kept_connections,
    leases,
    unowned,
)


@pytest.mark.parametrize(
    ("lease", "ended", "expected"),
    [
        pytest.param(Lease.HERE, False, RoomAction.LEAVE, id="run here: the round's own"),
        pytest.param(Lease.HERE, True, RoomAction.LEAVE, id="run here, ended: exits close it"),
        pytest.param(Lease.ELSEWHERE, False, RoomAction.LEAVE, id="a live owner runs it"),
        pytest.param(Lease.ELSEWHERE, True, RoomAction.LEAVE, id="a live owner closes it"),
        pytest.param(Lease.ELSEWHERE, None, RoomAction.LEAVE, id="a live owner, store silent"),
        pytest.param(Lease.LAPSED, False, RoomAction.CLAIM, id="owner dead: take it over"),
        pytest.param(Lease.LAPSED, True, RoomAction.CLOSE, id="owner dead, ended: close room"),
        pytest.param(Lease.LAPSED, None, RoomAction.LEAVE, id="owner dead, store silent: later"),
        pytest.param(Lease.HERE, None, RoomAction.LEAVE, id="run here, store silent"),
    ],
)
def test_decide(lease: Lease, ended: bool | None, expected: RoomAction) -> None:
    assert decide(RoomFacts(lease, ended)) is expected


@pytest.mark.parametrize(
    ("occupied", "held_here", "expected"),
    [
        pytest.param([], [], [], id="no rooms"),
        pytest.param(["s1"], ["s1"], [], id="only rooms run here: no lease read at all"),
        pytest.param(["s2", "s1"], [], ["s1", "s2"], id="others' rooms, sorted"),
        pytest.param(["s1", "s2", "s1"], ["s2", "s9"], ["s1"], id="deduplicated, mine skipped"),
    ],
)
def test_unowned(occupied: list[str], held_here: list[str], expected: list[str]) -> None:
    assert unowned(occupied, held_here) == expected


@pytest.mark.parametrize(
    ("holders", "expected"),
    [
        pytest.param({"s1": None}, Lease.LAPSED, id="nobody holds it"),
        pytest.param({}, Lease.LAPSED, id="not answered: nobody"),
        pytest.param({"s1": "me"}, Lease.HERE, id="this process"),
        pytest.param({"s1": "other"}, Lease.ELSEWHERE, id="another process"),
    ],
)
def test_leases(holders: dict[str, str | None], expected: Lease) -> None:
    assert leases(["s1"], holders, "me") == {"s1": expected}


@pytest.mark.parametrize(
    ("connections", "standing", "kept"),
    [
        # Each standing person's one connection stays.
        ({"tutor#1": "tutor", "child#1": "child"}, {"tutor", "child"}, {"tutor#1", "child#1"}),
        # Someone removed or revoked since (no longer standing) goes.
        ({"tutor#1": "tutor", "child#1": "child"}, {"tutor"}, {"tutor#1"}),
        # Connected twice: which one was admitted last died with the former owner; both go.
        (
            {"child#1": "child", "child#2": "child", "tutor#1": "tutor"},
            {"tutor", "child"},
            {"tutor#1"},
        ),
        # Not an admission's identity at all (no nonce): never vouched for.
        ({"child": None, "tutor#1": "tutor"}, {"tutor", "child"}, {"tutor#1"}),
        ({}, {"tutor"}, set()),
    ],
)
def test_the_new_owner_keeps_only_one_connection_of_each_person_who_stands(
    connections: dict[str, str | None], standing: set[str], kept: set[str]
) -> None:
    assert kept_connections(connections, standing) == kept
