"""Supervision while a session runs (R4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.models import Presence, SessionRole
from gateway.domain.policy import Policy
from gateway.domain.supervision import SupervisionVerdict, evaluate_supervision

from .factories import DEFAULT_POLICY, NOW, TWO_ADULTS, adult, kid, make_policy

ONE_ADULT = TWO_ADULTS[:1]
EARLIER = NOW - timedelta(seconds=30)  # inside the default 60 s grace
LONG_AGO = NOW - timedelta(seconds=60)  # grace over
END = make_policy(supervision={"action": "end_session"})
NO_GRACE = make_policy(supervision={"grace_seconds": 0})


def v(
    state: str,
    vetted: int,
    below_since: datetime | None,
    *,
    hold: tuple[str, ...] = (),
    release: tuple[str, ...] = (),
    alert: bool = False,
    incident: bool = False,
    end_session: bool = False,
) -> SupervisionVerdict:
    return SupervisionVerdict(
        state,  # type: ignore[arg-type]
        vetted,
        2,
        below_since,
        hold=hold,
        release=release,
        alert=alert,
        incident=incident,
        end_session=end_session,
    )


CASES = [
    pytest.param((), DEFAULT_POLICY, None, v("no_children", 0, None), id="empty"),
    pytest.param(
        ONE_ADULT, DEFAULT_POLICY, EARLIER, v("no_children", 1, None), id="adults-only-resets"
    ),
    pytest.param(
        (*TWO_ADULTS, kid("k1")), DEFAULT_POLICY, None, v("supervised", 2, None), id="supervised"
    ),
    pytest.param(
        (*TWO_ADULTS, kid("k1")),
        DEFAULT_POLICY,
        EARLIER,
        v("supervised", 2, None),
        id="recovered-clears-below-since",
    ),
    pytest.param(
        (*TWO_ADULTS, kid("k2", held=True), kid("k1", held=True), kid("k3")),
        DEFAULT_POLICY,
        None,
        v("supervised", 2, None, release=("k1", "k2")),
        id="release-held-children",
    ),
    pytest.param(
        (*ONE_ADULT, kid("k1")),
        DEFAULT_POLICY,
        None,
        v("grace", 1, NOW, alert=True),
        id="adult-leaves-grace-starts-alert",
    ),
    pytest.param(
        (*ONE_ADULT, kid("k1")),
        DEFAULT_POLICY,
        EARLIER,
        v("grace", 1, EARLIER),
        id="still-in-grace-no-new-alert",
    ),
    pytest.param(
        (*ONE_ADULT, kid("k1")),
        DEFAULT_POLICY,
        LONG_AGO,
        v("breach", 1, LONG_AGO, hold=("k1",), alert=True, incident=True),
        id="grace-over-breach-holds",
    ),
    pytest.param(
        (*ONE_ADULT, kid("k1", held=True)),
        DEFAULT_POLICY,
        LONG_AGO,
        v("breach", 1, LONG_AGO),
        id="breach-continues-already-held",
    ),
    pytest.param(
        (*ONE_ADULT, kid("k1", held=True), kid("k2")),
        DEFAULT_POLICY,
        LONG_AGO,
        v("breach", 1, LONG_AGO, hold=("k2",), alert=True, incident=True),
        id="breach-holds-only-unheld",
    ),
    pytest.param(
        (kid("k1"), kid("k2")),
        NO_GRACE,
        None,
        v("breach", 0, NOW, hold=("k1", "k2"), alert=True, incident=True),
        id="no-grace-immediate",
    ),
    pytest.param(
        (*ONE_ADULT, kid("k1")),
        END,
        LONG_AGO,
        v("breach", 1, LONG_AGO, hold=("k1",), alert=True, incident=True, end_session=True),
        id="end-session-action",
    ),
    pytest.param(
        (*ONE_ADULT, kid("k1", held=True)),
        END,
        LONG_AGO,
        v("breach", 1, LONG_AGO),
        id="end-session-not-for-waiting-room",
    ),
    pytest.param(
        (*ONE_ADULT, kid("k1", held=True)),
        DEFAULT_POLICY,
        None,
        v("grace", 1, NOW, alert=True),
        id="waiting-room-alerts-once",
    ),
    pytest.param(
        (adult("a1"), adult("a1", SessionRole.OBSERVER), kid("k1")),
        DEFAULT_POLICY,
        None,
        v("grace", 1, NOW, alert=True),
        id="duplicate-adult-counts-once",
    ),
    pytest.param(
        (adult("a1"), adult("a2", vetted=False), kid("k1")),
        DEFAULT_POLICY,
        None,
        v("grace", 1, NOW, alert=True),
        id="unvetted-adult-not-counted",
    ),
    pytest.param(
        (adult("a1"), adult("a2", SessionRole.VIEWER), kid("k1")),
        DEFAULT_POLICY,
        None,
        v("grace", 1, NOW, alert=True),
        id="viewer-not-counted",
    ),
    pytest.param(
        (*TWO_ADULTS, kid("k1", role=SessionRole.VIEWER)),
        DEFAULT_POLICY,
        None,
        v("supervised", 2, None),
        id="child-viewer-is-a-child",
    ),
    pytest.param(
        (*ONE_ADULT, kid("v1", role=SessionRole.VIEWER)),
        DEFAULT_POLICY,
        LONG_AGO,
        v("breach", 1, LONG_AGO, hold=("v1",), alert=True, incident=True),
        id="child-viewer-held-in-breach",
    ),
]


@pytest.mark.parametrize(("present", "policy", "below_since", "expected"), CASES)
def test_evaluate_supervision(
    present: Sequence[Presence],
    policy: Policy,
    below_since: datetime | None,
    expected: SupervisionVerdict,
) -> None:
    assert evaluate_supervision(present, policy, NOW, below_since) == expected


def test_required_follows_policy() -> None:
    policy = make_policy(supervision={"min_vetted_adults": 3})
    verdict = evaluate_supervision((*TWO_ADULTS, kid("k1")), policy, NOW, None)
    assert (verdict.state, verdict.required, verdict.vetted_adults) == ("grace", 3, 2)


def test_counting_roles_follow_policy() -> None:
    policy = make_policy(supervision={"counting_roles": ["host"]})
    verdict = evaluate_supervision((*TWO_ADULTS, kid("k1")), policy, NOW, None)
    assert (verdict.state, verdict.vetted_adults) == ("grace", 1)


def test_a_run_of_evaluations() -> None:
    """Adult drops out, grace runs, children are held, adult returns, children released."""
    t0 = NOW
    both = (*TWO_ADULTS, kid("k1"))
    one = (*ONE_ADULT, kid("k1"))
    held = (*ONE_ADULT, kid("k1", held=True))
    back = (*TWO_ADULTS, kid("k1", held=True))

    first = evaluate_supervision(both, DEFAULT_POLICY, t0, None)
    assert first.state == "supervised"
    second = evaluate_supervision(one, DEFAULT_POLICY, t0 + timedelta(seconds=1), first.below_since)
    assert (second.state, second.alert, second.hold) == ("grace", True, ())
    third = evaluate_supervision(
        one, DEFAULT_POLICY, t0 + timedelta(seconds=30), second.below_since
    )
    assert (third.state, third.alert, third.hold) == ("grace", False, ())
    fourth = evaluate_supervision(
        one, DEFAULT_POLICY, t0 + timedelta(seconds=61), third.below_since
    )
    assert (fourth.state, fourth.hold, fourth.incident, fourth.alert) == (
        "breach",
        ("k1",),
        True,
        True,
    )
    fifth = evaluate_supervision(
        held, DEFAULT_POLICY, t0 + timedelta(seconds=90), fourth.below_since
    )
    assert (fifth.state, fifth.hold, fifth.incident, fifth.alert) == ("breach", (), False, False)
    sixth = evaluate_supervision(
        back, DEFAULT_POLICY, t0 + timedelta(seconds=120), fifth.below_since
    )
    assert (sixth.state, sixth.release, sixth.below_since) == ("supervised", ("k1",), None)


def test_as_dict() -> None:
    verdict = evaluate_supervision((*ONE_ADULT, kid("k1")), DEFAULT_POLICY, NOW, LONG_AGO)
    assert verdict.as_dict() == {
        "state": "breach",
        "vetted_adults": 1,
        "required": 2,
        "below_since": LONG_AGO.isoformat(),
        "hold": ["k1"],
        "release": [],
        "alert": True,
        "incident": True,
        "end_session": False,
    }


# -- properties --------------------------------------------------------------------------------

_adults = st.builds(
    adult,
    st.sampled_from([f"a{i}" for i in range(5)]),
    st.sampled_from(list(SessionRole)),
    vetted=st.booleans(),
)
_kids = st.builds(
    kid,
    st.sampled_from([f"k{i}" for i in range(5)]),
    held=st.booleans(),
    role=st.sampled_from(list(SessionRole)),
)
_grace_policies = st.sampled_from(
    [
        DEFAULT_POLICY,
        NO_GRACE,
        END,
        make_policy(supervision={"min_vetted_adults": 3, "grace_seconds": 600}),
    ]
)


@given(
    present=st.lists(st.one_of(_adults, _kids), max_size=10),
    policy=_grace_policies,
    below_for=st.one_of(st.none(), st.integers(min_value=0, max_value=1200)),
)
def test_no_child_left_unheld_past_grace_while_below(
    present: list[Presence], policy: Policy, below_for: int | None
) -> None:
    below_since = None if below_for is None else NOW - timedelta(seconds=below_for)
    verdict = evaluate_supervision(present, policy, NOW, below_since)
    children = {p.participant_id for p in present if p.person_kind.value == "child"}
    unheld = {p.participant_id for p in present if p.person_kind.value == "child" and not p.held}
    if verdict.vetted_adults < verdict.required and children:
        assert verdict.below_since is not None
        elapsed = NOW - verdict.below_since
        if elapsed >= timedelta(seconds=policy.supervision.grace_seconds):
            # Every child that is not held yet is on the hold list.
            assert unheld <= set(verdict.hold)
            assert verdict.state == "breach"
        assert not verdict.release
    else:
        assert verdict.below_since is None
        assert not verdict.hold
    # Deterministic.
    assert evaluate_supervision(present, policy, NOW, below_since) == verdict
    # Only children are ever held or released.
    assert set(verdict.hold) | set(verdict.release) <= children
    assert verdict.incident <= (verdict.state == "breach")
    assert verdict.end_session <= verdict.incident


@given(
    present=st.lists(st.one_of(_adults, _kids), max_size=10),
    policy=_grace_policies,
    steps=st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=8),
)
def test_repeated_evaluation_holds_children_by_the_end_of_grace(
    present: list[Presence], policy: Policy, steps: list[int]
) -> None:
    """Feeding below_since forward, a child is held no later than grace after the fall."""
    below_since: datetime | None = None
    now = NOW
    first_below: datetime | None = None
    for step in steps:
        verdict = evaluate_supervision(present, policy, now, below_since)
        if verdict.below_since is not None and first_below is None:
            first_below = verdict.below_since
        if first_below is not None and now - first_below >= timedelta(
            seconds=policy.supervision.grace_seconds
        ):
            unheld = {
                p.participant_id for p in present if p.person_kind.value == "child" and not p.held
            }
            assert unheld <= set(verdict.hold)
        below_since = verdict.below_since
        now = now + timedelta(seconds=step)


# A counted adult leaving on purpose (or removed): no grace period -----------------------------
ON_PURPOSE_CASES = [
    pytest.param(
        (*ONE_ADULT, kid("k1")),
        DEFAULT_POLICY,
        None,
        v(
            "breach",
            1,
            NOW - timedelta(seconds=60),
            hold=("k1",),
            alert=True,
            incident=True,
        ),
        id="held-at-once",
    ),
    pytest.param(
        (*ONE_ADULT, kid("k1")),
        END,
        None,
        SupervisionVerdict(
            "breach",
            1,
            2,
            NOW - timedelta(seconds=60),
            hold=("k1",),
            alert=True,
            incident=True,
            end_session=True,
        ),
        id="end-session-at-once",
    ),
    pytest.param(
        (*ONE_ADULT, kid("k1", held=True)),
        DEFAULT_POLICY,
        None,
        v("breach", 1, NOW - timedelta(seconds=60), alert=True),
        id="already-held-no-incident",
    ),
    pytest.param(
        (*TWO_ADULTS, kid("k1")),
        DEFAULT_POLICY,
        None,
        v("supervised", 2, None),
        id="still-two-adults",
    ),
    pytest.param(ONE_ADULT, DEFAULT_POLICY, None, v("no_children", 1, None), id="no-children"),
]


@pytest.mark.parametrize(("present", "policy", "below_since", "expected"), ON_PURPOSE_CASES)
def test_an_adult_leaving_on_purpose_starts_the_breach_at_once(
    present: Sequence[Presence],
    policy: Policy,
    below_since: datetime | None,
    expected: SupervisionVerdict,
) -> None:
    verdict = evaluate_supervision(present, policy, NOW, below_since, adult_left_on_purpose=True)
    assert verdict == expected


def test_after_a_breach_on_purpose_later_rounds_stay_in_breach() -> None:
    first = evaluate_supervision(
        (*ONE_ADULT, kid("k1")), DEFAULT_POLICY, NOW, None, adult_left_on_purpose=True
    )
    later = evaluate_supervision(
        (*ONE_ADULT, kid("k1", held=True)),
        DEFAULT_POLICY,
        NOW + timedelta(seconds=1),
        first.below_since,
    )
    assert later.state == "breach" and not later.incident and not later.release


@pytest.mark.parametrize(("action", "ends"), [("hold_children", False), ("end_session", True)])
def test_every_supervision_action_is_acted_on(action: str, ends: bool) -> None:
    policy = make_policy(supervision={"action": action})
    verdict = evaluate_supervision((*ONE_ADULT, kid("k1")), policy, NOW, LONG_AGO)
    assert verdict.hold == ("k1",) and verdict.incident and verdict.end_session is ends
