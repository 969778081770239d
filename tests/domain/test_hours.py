"""Session hours (R16)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from gateway.domain.hours import local_date, schedule_reasons, session_hours_reasons
from gateway.domain.policy import Policy

from .factories import DEFAULT_POLICY, NOW, make_policy, session

DSL_APPROVAL = make_policy(hours={"out_of_hours": "dsl_approval"})


def utc(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "reasons"),
    [
        pytest.param(NOW, (), id="at-start"),
        pytest.param(NOW - timedelta(minutes=15), (), id="early-join-limit"),
        pytest.param(NOW - timedelta(minutes=16), ("session_not_started",), id="too-early"),
        pytest.param(NOW + timedelta(minutes=59), (), id="near-end"),
        pytest.param(NOW + timedelta(hours=1), ("session_over",), id="at-end-exclusive"),
        pytest.param(NOW + timedelta(days=1), ("session_over",), id="next-day"),
    ],
)
def test_session_window(now: datetime, reasons: tuple[str, ...]) -> None:
    assert session_hours_reasons(session(), DEFAULT_POLICY, now) == reasons


def test_ended_session_refused_even_inside_window() -> None:
    s = session(ended_at=NOW)
    assert session_hours_reasons(s, DEFAULT_POLICY, NOW + timedelta(minutes=5)) == (
        "session_ended",
    )


# Europe/London hours 08:00-20:00, Mon-Sat. 23 Nov 2026 is a Monday (GMT = UTC).
# 6 Jul 2026 is a Monday in BST (UTC+1): 08:00 local is 07:00 UTC.
@pytest.mark.parametrize(
    ("now", "inside"),
    [
        pytest.param(utc(2026, 11, 23, 8, 0), True, id="gmt-start-inclusive"),
        pytest.param(utc(2026, 11, 23, 7, 59), False, id="gmt-before-start"),
        pytest.param(utc(2026, 11, 23, 19, 59), True, id="gmt-before-end"),
        pytest.param(utc(2026, 11, 23, 20, 0), False, id="gmt-end-exclusive"),
        pytest.param(utc(2026, 7, 6, 7, 0), True, id="bst-0800-local-is-0700-utc"),
        pytest.param(utc(2026, 7, 6, 19, 30), False, id="bst-2030-local"),
        pytest.param(utc(2026, 11, 29, 10, 0), False, id="sunday"),
        pytest.param(utc(2026, 11, 28, 10, 0), True, id="saturday"),
        pytest.param(
            datetime(2026, 11, 23, 5, 0, tzinfo=timezone(timedelta(hours=-5))),
            True,
            id="other-offset-converted",
        ),
        pytest.param(datetime(2026, 11, 23, 10, 0), True, id="naive-is-utc"),
    ],
)
def test_policy_hours(now: datetime, inside: bool) -> None:
    s = session(starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1))
    if now.tzinfo is None:
        s = session(
            starts_at=now.replace(tzinfo=UTC) - timedelta(minutes=1),
            ends_at=now.replace(tzinfo=UTC) + timedelta(hours=1),
        )
    expected = () if inside else ("outside_session_hours",)
    assert session_hours_reasons(s, DEFAULT_POLICY, now) == expected


@pytest.mark.parametrize(
    ("policy", "approved_by", "reasons"),
    [
        pytest.param(DEFAULT_POLICY, None, ("outside_session_hours",), id="refuse-unapproved"),
        pytest.param(
            DEFAULT_POLICY, "staff_dsl", ("outside_session_hours",), id="refuse-ignores-approval"
        ),
        pytest.param(DSL_APPROVAL, None, ("outside_session_hours",), id="dsl-policy-unapproved"),
        pytest.param(DSL_APPROVAL, "staff_dsl", (), id="dsl-policy-approved"),
    ],
)
def test_out_of_hours_approval(
    policy: Policy, approved_by: str | None, reasons: tuple[str, ...]
) -> None:
    sunday = utc(2026, 11, 29, 10, 0)
    s = session(starts_at=sunday, out_of_hours_approved_by=approved_by)
    assert session_hours_reasons(s, policy, sunday) == reasons


def test_reasons_accumulate() -> None:
    s = session(starts_at=utc(2026, 11, 29, 10, 0), ended_at=utc(2026, 11, 29, 10, 30))
    assert session_hours_reasons(s, DEFAULT_POLICY, utc(2026, 11, 29, 12, 0)) == (
        "session_ended",
        "session_over",
        "outside_session_hours",
    )


@pytest.mark.parametrize(
    ("start", "end", "policy", "approved", "reasons"),
    [
        pytest.param(
            utc(2026, 11, 23, 10), utc(2026, 11, 23, 11), DEFAULT_POLICY, False, (), id="ok"
        ),
        pytest.param(
            utc(2026, 11, 23, 8), utc(2026, 11, 23, 20), DEFAULT_POLICY, False, (), id="full-day"
        ),
        pytest.param(
            utc(2026, 11, 23, 11),
            utc(2026, 11, 23, 10),
            DEFAULT_POLICY,
            False,
            ("end_not_after_start",),
            id="end-before-start",
        ),
        pytest.param(
            utc(2026, 11, 23, 10),
            utc(2026, 11, 23, 10),
            DSL_APPROVAL,
            True,
            ("end_not_after_start",),
            id="zero-length-even-approved",
        ),
        pytest.param(
            utc(2026, 11, 23, 7, 30),
            utc(2026, 11, 23, 9),
            DEFAULT_POLICY,
            False,
            ("outside_session_hours",),
            id="starts-too-early",
        ),
        pytest.param(
            utc(2026, 11, 23, 19),
            utc(2026, 11, 23, 20, 30),
            DEFAULT_POLICY,
            False,
            ("outside_session_hours",),
            id="runs-past-end",
        ),
        pytest.param(
            utc(2026, 11, 23, 19),
            utc(2026, 11, 24, 9),
            DEFAULT_POLICY,
            False,
            ("outside_session_hours",),
            id="overnight",
        ),
        pytest.param(
            utc(2026, 11, 29, 10),
            utc(2026, 11, 29, 11),
            DEFAULT_POLICY,
            False,
            ("outside_session_hours",),
            id="sunday",
        ),
        pytest.param(
            utc(2026, 11, 29, 10),
            utc(2026, 11, 29, 11),
            DEFAULT_POLICY,
            True,
            ("outside_session_hours",),
            id="sunday-approved-but-policy-refuses",
        ),
        pytest.param(
            utc(2026, 11, 29, 10),
            utc(2026, 11, 29, 11),
            DSL_APPROVAL,
            True,
            (),
            id="sunday-approved",
        ),
        pytest.param(
            utc(2026, 7, 6, 18),
            utc(2026, 7, 6, 19),
            DEFAULT_POLICY,
            True,
            (),
            id="bst-ends-at-2000-local",
        ),
        pytest.param(
            utc(2026, 7, 6, 18),
            utc(2026, 7, 6, 19, 30),
            DEFAULT_POLICY,
            False,
            ("outside_session_hours",),
            id="bst-ends-2030-local",
        ),
    ],
)
def test_schedule_reasons(
    start: datetime, end: datetime, policy: Policy, approved: bool, reasons: tuple[str, ...]
) -> None:
    assert schedule_reasons(start, end, policy, approved) == reasons


@pytest.mark.parametrize(
    ("now", "day"),
    [
        pytest.param(utc(2026, 7, 6, 23, 30), date(2026, 7, 7), id="bst-after-midnight-local"),
        pytest.param(utc(2026, 11, 23, 23, 30), date(2026, 11, 23), id="gmt-same-day"),
    ],
)
def test_local_date(now: datetime, day: date) -> None:
    assert local_date(now, DEFAULT_POLICY) == day
