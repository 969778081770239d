"""The relay's admission by measured load, as a table (domain.media_load)."""

from __future__ import annotations

import pytest

from gateway.domain.media_load import LoadLevel, LoadLimits, LoadSample, admits, assess

LIMITS = LoadLimits(max_loop_lag=0.05, max_udp_drops_per_second=50, max_streams=48, retry_after=30)
OK, BUSY, SATURATED = LoadLevel.OK, LoadLevel.BUSY, LoadLevel.SATURATED


@pytest.mark.parametrize(
    ("lag", "drops", "streams", "level", "retry_after"),
    [
        (0.0, 0, 0, OK, 0),
        (0.049, 50, 47, OK, 0),  # every measure just under its limit
        (0.05, 0, 0, BUSY, 30),  # lag at the limit
        (0.0, 0, 48, BUSY, 30),  # the measured capacity in streams
        (0.099, 0, 48, BUSY, 30),
        (0.1, 0, 0, SATURATED, 60),  # twice the lag limit
        (0.0, 51, 0, SATURATED, 60),  # the kernel is dropping our media
        (0.2, 500, 100, SATURATED, 60),
    ],
)
def test_level_from_measures(
    lag: float, drops: float, streams: int, level: LoadLevel, retry_after: float
) -> None:
    verdict = assess(LoadSample(lag, drops, streams), LIMITS)
    assert verdict.level is level
    assert verdict.retry_after == retry_after
    assert bool(verdict.reasons) == (level is not OK)


def test_reasons_name_what_was_measured() -> None:
    verdict = assess(LoadSample(0.12, 80, 60), LIMITS)
    assert verdict.reasons == (
        "event loop 120 ms late",
        "80 UDP datagrams/s dropped",
        "60 streams forwarded (limit 48)",
    )


def test_no_stream_cap_when_unset() -> None:
    assert assess(LoadSample(0, 0, 10_000), LoadLimits()).level is OK


@pytest.mark.parametrize(
    ("level", "running", "replaces", "admitted"),
    [
        (OK, False, False, True),
        (BUSY, False, False, False),  # no new session
        (BUSY, True, False, True),  # someone joining a running session
        (BUSY, False, True, True),
        (SATURATED, True, False, False),  # nobody new at all
        (SATURATED, False, False, False),
        (SATURATED, True, True, True),  # a reconnect adds no load
    ],
)
def test_who_is_admitted_at_each_level(
    level: LoadLevel, running: bool, replaces: bool, admitted: bool
) -> None:
    lag = {OK: 0.0, BUSY: 0.06, SATURATED: 0.2}[level]
    verdict = assess(LoadSample(lag, 0, 0), LIMITS)
    assert verdict.level is level
    assert admits(verdict, session_running=running, replaces=replaces) is admitted
