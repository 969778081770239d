"""Which presences outlived their gateway process: a table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.liveness import OwnedPresence, orphaned


def p(owner: str | None, pid: str = "p1", session: str = "s1") -> OwnedPresence:
    return OwnedPresence(session, pid, owner)


@pytest.mark.parametrize(
    ("presences", "alive", "expected"),
    [
        pytest.param([], set(), (), id="nobody present"),
        pytest.param([p("A")], {"A"}, (), id="owner alive"),
        pytest.param([p("A")], set(), (p("A"),), id="owner dead"),
        pytest.param([p("A")], {"B"}, (p("A"),), id="another process alive"),
        pytest.param([p(None)], {"A"}, (p(None),), id="no owner recorded: closed"),
        pytest.param([p("")], {"A"}, (p(""),), id="empty owner is nobody's"),
        pytest.param(
            [p("A", "p1"), p("B", "p2"), p("A", "p3", "s2"), p("C", "p4", "s2")],
            {"A", "C"},
            (p("B", "p2"),),
            id="only the dead process's presences",
        ),
        pytest.param(
            [p("B", "p2", "s2"), p("B", "p1", "s1"), p("B", "p1", "s2")],
            {"A"},
            (p("B", "p1", "s1"), p("B", "p1", "s2"), p("B", "p2", "s2")),
            id="sorted by session then participant",
        ),
    ],
)
def test_orphaned(
    presences: list[OwnedPresence], alive: set[str], expected: tuple[OwnedPresence, ...]
) -> None:
    assert orphaned(presences, alive) == expected


owners = st.sampled_from(["A", "B", "C", None])
presences = st.lists(
    st.builds(OwnedPresence, st.sampled_from(["s1", "s2"]), st.sampled_from(["p1", "p2"]), owners)
)


@given(presences, st.sets(st.sampled_from(["A", "B", "C"])))
def test_a_presence_is_kept_exactly_when_its_owner_is_alive(
    present: list[OwnedPresence], alive: set[str]
) -> None:
    removed = orphaned(present, alive)
    kept = [x for x in present if x not in removed]
    assert all(x.owner in alive for x in kept)
    assert all(x.owner is None or x.owner not in alive for x in removed)
