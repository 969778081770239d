"""The decisions on a verified LiveKit webhook, as a table (gateway/domain/livekit_webhooks.py)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.domain.livekit_webhooks import Hint, Outcome, RoomOwner, body_matches, decide

OURS = RoomOwner("org-a", "s1")
THEIRS = RoomOwner("org-b", "s2")


def hint(kind: str = "participant_joined", identity: str = "p1", at: int = 100) -> Hint:
    return Hint(event_id="EV_1", kind=kind, room="room-1", identity=identity, created_at=at)


@pytest.mark.parametrize(
    ("case", "event", "seen", "known", "owner", "serves", "expected"),
    [
        ("fresh join", hint(), False, None, OURS, None, Outcome.RECONCILE),
        ("fresh join, key serves org", hint(), False, None, OURS, {"org-a"}, Outcome.RECONCILE),
        ("same id again", hint(), True, None, OURS, None, Outcome.DUPLICATE),
        ("duplicate wins over unknown room", hint(), True, None, None, None, Outcome.DUPLICATE),
        ("older than known", hint(at=99), False, 100, OURS, None, Outcome.STALE),
        ("same second as known", hint(at=100), False, 100, OURS, None, Outcome.RECONCILE),
        ("newer than known", hint(at=101), False, 100, OURS, None, Outcome.RECONCILE),
        (
            "left after join",
            hint("participant_left", at=101),
            False,
            100,
            OURS,
            None,
            Outcome.RECONCILE,
        ),
        (
            "left arriving late",
            hint("participant_left", at=90),
            False,
            100,
            OURS,
            None,
            Outcome.STALE,
        ),
        ("unknown room", hint(), False, None, None, None, Outcome.UNKNOWN_ROOM),
        (
            "another organisation's room",
            hint(),
            False,
            None,
            THEIRS,
            {"org-a"},
            Outcome.OTHER_ORGANISATION,
        ),
        (
            "other org checked before staleness",
            hint(at=1),
            False,
            100,
            THEIRS,
            {"org-a"},
            Outcome.OTHER_ORGANISATION,
        ),
        (
            "room event",
            hint("room_finished", identity=""),
            False,
            None,
            OURS,
            None,
            Outcome.RECONCILE,
        ),
        (
            "egress ended",
            hint("egress_ended", identity=""),
            False,
            None,
            OURS,
            None,
            Outcome.RECONCILE,
        ),
        (
            "ingress event recorded only",
            hint("ingress_started", identity=""),
            False,
            None,
            OURS,
            None,
            Outcome.RECORDED,
        ),
        (
            "presence without identity",
            hint(identity=""),
            False,
            None,
            OURS,
            None,
            Outcome.MALFORMED,
        ),
        ("no time", hint(at=0), False, None, OURS, None, Outcome.MALFORMED),
    ],
)
def test_decisions(
    case: str,
    event: Hint,
    seen: bool,
    known: int | None,
    owner: RoomOwner | None,
    serves: set[str] | None,
    expected: Outcome,
) -> None:
    got = decide(
        event,
        seen_before=seen,
        known_created_at=known,
        owner=owner,
        key_serves=frozenset(serves) if serves is not None else None,
    )
    assert got is expected, case


def test_presence_events_are_ordered_per_participant_and_room_events_per_room() -> None:
    assert hint(identity="p7").mark == "p7"
    assert hint("track_published", identity="p7").mark == ""
    assert hint("room_finished", identity="").mark == ""


@pytest.mark.parametrize(
    ("claim_of", "body", "expected"),
    [
        (b'{"event":"room_started"}', b'{"event":"room_started"}', True),
        (b'{"event":"room_started"}', b'{"event":"room_started"} ', False),  # one byte more
        (b"", b"", True),
    ],
)
def test_body_hash(claim_of: bytes, body: bytes, expected: bool) -> None:
    claim = base64.b64encode(hashlib.sha256(claim_of).digest()).decode()
    assert body_matches(claim, body) is expected


def test_a_claim_that_is_not_base64_never_matches() -> None:
    assert not body_matches("not base64!!", b"")
