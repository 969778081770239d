"""What is due for destruction (domain/retention.py), as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.retention import (
    DestructionReason,
    RecordingState,
    RetentionFacts,
    destruction_due,
    retain_until,
)

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PAST = NOW - timedelta(seconds=1)
FUTURE = NOW + timedelta(days=1)
S = RecordingState
R = DestructionReason

CASES = [
    # state, retain_until, held, requested, started -> due
    ("due on its date", S.COMPLETE, NOW, False, None, False, R.RETENTION),
    ("past its date", S.COMPLETE, PAST, False, None, False, R.RETENTION),
    ("not yet", S.COMPLETE, FUTURE, False, None, False, None),
    ("held past its date", S.COMPLETE, PAST, True, None, False, None),
    ("held, consent withdrawn", S.COMPLETE, FUTURE, True, R.CONSENT_WITHDRAWN, False, None),
    (
        "consent withdrawn",
        S.COMPLETE,
        FUTURE,
        False,
        R.CONSENT_WITHDRAWN,
        False,
        R.CONSENT_WITHDRAWN,
    ),
    ("already destroyed", S.DESTROYED, PAST, False, R.RETENTION, True, None),
    ("incomplete past its date", S.INCOMPLETE, PAST, False, None, False, R.RETENTION),
    ("incomplete, policy destroys", S.INCOMPLETE, FUTURE, False, R.INCOMPLETE, False, R.INCOMPLETE),
    ("still being written", S.RECORDING, PAST, False, None, False, None),
    (
        "key gone, held since: finish",
        S.COMPLETE,
        FUTURE,
        True,
        R.CONSENT_WITHDRAWN,
        True,
        R.CONSENT_WITHDRAWN,
    ),
    ("key gone, resumed", S.COMPLETE, PAST, False, None, True, R.RETENTION),
]


@pytest.mark.parametrize(
    ("state", "until", "held", "requested", "started", "due"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_destruction_due(
    state: RecordingState,
    until: datetime,
    held: bool,
    requested: DestructionReason | None,
    started: bool,
    due: DestructionReason | None,
) -> None:
    assert destruction_due(RetentionFacts(state, until, held, requested, started), NOW) == due


def test_retention_date_comes_from_the_purpose_days() -> None:
    assert retain_until(NOW, 30) == NOW + timedelta(days=30)
