"""The abuse limits' decisions as a table (gateway.domain.attempts): pure, time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.attempts import NONE, Limits, Tally, after_wrong_password, before_password

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LIMITS = Limits(per_invite=5, per_source=20, per_org=200, window=timedelta(minutes=15))


def t(failures: int, minutes_left: float = 10) -> Tally:
    return Tally(failures, NOW + timedelta(minutes=minutes_left))


@pytest.mark.parametrize(
    ("invite", "source", "org", "locked", "slowed"),
    [
        (NONE, NONE, NONE, False, False),
        (t(4), t(19), t(199), False, False),
        (t(5), NONE, NONE, True, False),  # the invite's lock holds
        (t(9), t(30), NONE, True, False),  # locked wins: nothing is checked
        (t(5, minutes_left=0), NONE, NONE, False, False),  # the window closed: unlocked
        (NONE, t(20), NONE, False, True),  # the source is slowed, not locked
        (NONE, NONE, t(200), False, True),  # so is the organisation
        (NONE, t(20, minutes_left=-1), NONE, False, False),
    ],
)
def test_before_a_password_check(
    invite: Tally, source: Tally, org: Tally, locked: bool, slowed: bool
) -> None:
    verdict = before_password(invite, source, org, LIMITS, NOW)
    assert (verdict.locked_for is not None) is locked
    assert verdict.slowed is slowed
    if locked:
        assert verdict.locked_for == 600.0


@pytest.mark.parametrize(
    ("invite", "source", "org", "locked_now", "source_now", "org_now", "locked"),
    [
        (t(1), t(1), t(1), False, False, False, False),
        (t(5), t(6), t(7), True, False, False, True),  # this failure locked it: alert once
        (t(6), t(7), t(8), False, False, False, True),  # still locked: no second alert
        (t(2), t(20), t(30), False, True, False, False),
        (t(2), t(3), t(200), False, False, True, False),
    ],
)
def test_after_a_wrong_password(
    invite: Tally,
    source: Tally,
    org: Tally,
    locked_now: bool,
    source_now: bool,
    org_now: bool,
    locked: bool,
) -> None:
    verdict = after_wrong_password(invite, source, org, LIMITS, NOW)
    assert (verdict.locked_now, verdict.source_limited_now, verdict.org_limited_now) == (
        locked_now,
        source_now,
        org_now,
    )
    assert (verdict.locked_for is not None) is locked


def test_a_wait_is_never_below_a_second() -> None:
    assert Tally(5, NOW + timedelta(milliseconds=10)).wait(NOW) == 1.0
