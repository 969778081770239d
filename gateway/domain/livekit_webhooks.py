"""What the gateway does with a LiveKit webhook whose signature was already checked.

A webhook is a HINT (DESIGN §3: "webhooks are hints, not truth"): the most it can do is make the
session's authority reconcile now (ListParticipants is the truth). It never counts an adult,
never releases a child. So the decisions here are only which hints to act on:

- a duplicate (same event id seen before, by any process: the ids are kept in SQL) is ignored;
- an event older than what is already known about the same participant (or the room itself)
  is stale: it may not override newer knowledge (LiveKit delivers from several goroutines and
  retries, so `participant_left` can arrive before the `participant_joined` it follows);
- a room the gateway does not know is ignored (audited in aggregate, so nobody can grow the
  audit log by making up room names);
- a room of an organisation the signing key does not serve is refused;
- anything else asks for reconciliation of that session.

Pure: the caller passes what SQL knows and the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "PRESENCE_KINDS",
    "RECONCILE_KINDS",
    "Hint",
    "Outcome",
    "RoomOwner",
    "body_matches",
    "decide",
]

# Events about who is in a room: ordered per participant.
PRESENCE_KINDS = frozenset(
    {"participant_joined", "participant_left", "participant_connection_aborted"}
)
# Events that make the authority look at the room (the rest are recorded, not acted on).
RECONCILE_KINDS = PRESENCE_KINDS | frozenset(
    {
        "room_started",
        "room_finished",
        "track_published",
        "track_unpublished",
        "egress_started",
        "egress_updated",
        "egress_ended",
    }
)
ROOM_MARK = ""  # the mark key of events about the room itself (no participant)


@dataclass(frozen=True, slots=True)
class Hint:
    """A verified webhook reduced to what the gateway reads: no names, no metadata."""

    event_id: str
    kind: str
    room: str
    identity: str  # "" when the event is about the room (or egress) only
    created_at: int  # seconds, LiveKit's own clock

    @property
    def mark(self) -> str:
        """The key of the knowledge this event may update (participant or the room)."""
        return self.identity if self.kind in PRESENCE_KINDS else ROOM_MARK


@dataclass(frozen=True, slots=True)
class RoomOwner:
    org_id: str
    session_id: str


class Outcome(StrEnum):
    RECONCILE = "reconcile"  # ask the session's authority to reconcile now
    RECORDED = "recorded"  # fresh and known, but nothing to reconcile (e.g. ingress events)
    DUPLICATE = "duplicate"
    STALE = "stale"
    UNKNOWN_ROOM = "unknown_room"
    OTHER_ORGANISATION = "other_organisation"
    MALFORMED = "malformed"


def body_matches(sha256_claim: str, raw_body: bytes) -> bool:
    """LiveKit's check (webhook/verifier.go): the token's `sha256` claim is the base64 SHA-256
    of the raw body; compared in constant time."""
    try:
        claimed = base64.b64decode(sha256_claim, validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(claimed, hashlib.sha256(raw_body).digest())


def decide(
    hint: Hint,
    *,
    seen_before: bool,
    known_created_at: int | None,
    owner: RoomOwner | None,
    key_serves: frozenset[str] | None,
) -> Outcome:
    """`seen_before`: this event id is already recorded; `known_created_at`: the newest
    `created_at` already applied for the hint's mark (None: nothing known); `owner`: whose
    room it is (None: not a room of this gateway); `key_serves`: the organisations the
    signing key serves (None: every organisation)."""
    if not hint.event_id or not hint.room or not hint.kind or hint.created_at <= 0:
        return Outcome.MALFORMED
    if hint.kind in PRESENCE_KINDS and not hint.identity:
        return Outcome.MALFORMED
    if seen_before:
        return Outcome.DUPLICATE
    if owner is None:
        return Outcome.UNKNOWN_ROOM
    if key_serves is not None and owner.org_id not in key_serves:
        return Outcome.OTHER_ORGANISATION
    # Equal times are not stale: LiveKit stamps in whole seconds, a join and a leave can share
    # one; reconciliation (the truth) settles it, so acting twice is harmless.
    if known_created_at is not None and hint.created_at < known_created_at:
        return Outcome.STALE
    return Outcome.RECONCILE if hint.kind in RECONCILE_KINDS else Outcome.RECORDED
