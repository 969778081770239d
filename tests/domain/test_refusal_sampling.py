"""Which anonymous refusals are audited one by one, and what the window's aggregate says."""

from __future__ import annotations

import pytest

from gateway.domain.refusal_sampling import RefusalCounts, RefusalSampler

JOIN = ("invite_invalid", "/v1/join")
STAFF = ("unauthenticated", "/v1/staff")


@pytest.mark.parametrize(
    ("per_source", "per_window", "sent", "individually"),
    [
        # (source, refusal) in order -> how many were audited one by one
        (3, 100, [("a", JOIN)] * 10, 3),
        (3, 100, [("a", JOIN)] * 2 + [("b", JOIN)] * 5, 5),  # each source its own allowance
        (3, 4, [("a", JOIN)] * 3 + [("b", JOIN)] * 3, 4),  # and a cap for all of them
        (0, 100, [("a", JOIN)] * 5, 0),
    ],
)
def test_first_refusals_per_source_are_individual_then_counted(
    per_source: int,
    per_window: int,
    sent: list[tuple[str, tuple[str, str]]],
    individually: int,
) -> None:
    sampler = RefusalSampler(per_source=per_source, per_window=per_window)
    decided = [sampler.individually(src, code, route, 5.0) for src, (code, route) in sent]
    assert sum(decided) == individually
    assert decided == sorted(decided, reverse=True)  # individual first, then counted
    [counts] = sampler.closed(61.0)
    assert counts.total == len(sent) - individually
    assert sampler.closed(61.0) == []  # each window is reported once


def test_aggregate_counts_per_code_and_route_for_the_window_that_closed() -> None:
    sampler = RefusalSampler(per_source=1, per_window=100, window_seconds=60)
    for i in range(7):
        sampler.individually("a", *JOIN, now=60.0 + i)
        sampler.individually("b", *STAFF, now=60.0 + i)
    assert sampler.closed(119.9) == []  # the window is still open
    sampler.individually("a", *JOIN, now=120.0)  # the next window: this one is new
    assert sampler.closed(120.0) == [
        RefusalCounts(
            window_start=60.0,
            window_seconds=60,
            counts=(("invite_invalid", "/v1/join", 6), ("unauthenticated", "/v1/staff", 6)),
            sources=2,
        )
    ]
    assert sampler.closed(300.0, everything=True) == []  # "a" at 120.0 was individual


def test_too_many_sources_are_all_counted_and_never_remembered() -> None:
    sampler = RefusalSampler(per_source=1, per_window=1000, max_sources=10)
    decided = [sampler.individually(f"s{i}", *JOIN, now=0.0) for i in range(50)]
    assert sum(decided) == 10
    [counts] = sampler.closed(0.0, everything=True)
    assert counts.total == 40 and counts.sources == 10


def test_no_limits_that_cannot_work() -> None:
    with pytest.raises(ValueError):
        RefusalSampler(window_seconds=0)
