"""Reviewing recordings (R13): who may watch which recording, the stated reason, and the
short-lived, single-use playback link. Pure: no I/O, time passed in.

Who may watch (`view_decision`), in this order:
  * a recording of another organisation does not exist for the viewer (404, never 403);
  * a recording destroyed, or whose destruction has begun, cannot be watched (its key is gone);
  * a recording still being written cannot be watched (it is not sealed: nothing authenticates
    its end yet);
  * the designated safeguarding lead may watch any recording of the organisation;
  * an admin may when the purpose's `viewers` list (policy) names "admin";
  * a tutor may only when the purpose lists "tutor" *and* they hosted the session the recording
    belongs to (a tutor never watches someone else's lessons);
  * nobody else (observers, or a purpose the policy no longer lists, for anyone but the DSL).

A playback link is a random 256-bit token (only its SHA-256 is stored, the token itself says
nothing about the recording or the person), bound to the member of staff who stated the reason,
good for `PLAYBACK_TTL` and for one use. A link presented by another member of staff is refused
and burnt (it has leaked: whoever it was issued to asks again, with a reason).
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import Staff, StaffRole
from gateway.domain.retention import RecordingState

__all__ = [
    "PLAYBACK_TTL",
    "RECORDING_STATUSES",
    "VIEW_REASON_MAX",
    "VIEW_REASON_MIN",
    "PlaybackFault",
    "PlaybackGrant",
    "RecordingAccess",
    "RecordingFilters",
    "ViewDecision",
    "ViewRefusal",
    "check_view_reason",
    "playback_fault",
    "playback_refusal",
    "refusal_for",
    "view_decision",
]

# Long enough for the page to load and the video to start; a link sitting in a history or a
# log is useless minutes later.
PLAYBACK_TTL = timedelta(minutes=2)
VIEW_REASON_MIN = 10  # a few words, not "x"
VIEW_REASON_MAX = 1000


class ViewRefusal(enum.StrEnum):
    """Why a member of staff may not watch a recording: audited as it is."""

    OTHER_ORGANISATION = "other_organisation"
    DESTROYED = "destroyed"
    STILL_RECORDING = "still_recording"
    ROLE = "role"  # the policy does not let this role watch this purpose
    NOT_THEIR_SESSION = "not_their_session"  # a tutor, the purpose allows, another's session


@dataclass(frozen=True, slots=True)
class RecordingAccess:
    """The facts about one recording the decision needs."""

    org_id: str
    state: RecordingState
    destruction_started: bool
    purpose_viewers: Collection[str] | None  # the purpose's `viewers`; None: not in the policy
    session_host_id: str | None  # the staff id who hosted the session, when known


@dataclass(frozen=True, slots=True)
class ViewDecision:
    allowed: bool
    refusal: ViewRefusal | None = None
    as_role: str | None = None  # the role the viewer watches as (audited)


def view_decision(staff: Staff, access: RecordingAccess) -> ViewDecision:
    if staff.org_id != access.org_id:
        return ViewDecision(False, ViewRefusal.OTHER_ORGANISATION)
    if access.state is RecordingState.DESTROYED or access.destruction_started:
        return ViewDecision(False, ViewRefusal.DESTROYED)
    if access.state is RecordingState.RECORDING:
        return ViewDecision(False, ViewRefusal.STILL_RECORDING)
    if StaffRole.DSL in staff.roles:
        return ViewDecision(True, as_role=StaffRole.DSL.value)
    viewers = access.purpose_viewers or ()
    if StaffRole.ADMIN in staff.roles and "admin" in viewers:
        return ViewDecision(True, as_role=StaffRole.ADMIN.value)
    if StaffRole.TUTOR in staff.roles and "tutor" in viewers:
        if access.session_host_id == staff.id:
            return ViewDecision(True, as_role=StaffRole.TUTOR.value)
        return ViewDecision(False, ViewRefusal.NOT_THEIR_SESSION)
    return ViewDecision(False, ViewRefusal.ROLE)


def refusal_for(refused: ViewRefusal) -> Refusal:
    """What the viewer is told: another organisation's recording is simply not found."""
    if refused is ViewRefusal.OTHER_ORGANISATION:
        return Refusal(ErrorCode.NOT_FOUND, "No such recording.")
    if refused is ViewRefusal.DESTROYED:
        return Refusal(ErrorCode.RECORDING_GONE, "This recording has been destroyed.")
    if refused is ViewRefusal.STILL_RECORDING:
        return Refusal(ErrorCode.CONFLICT, "This recording is still being made.")
    return Refusal(ErrorCode.FORBIDDEN, "Your role may not watch this recording.")


def check_view_reason(reason: str) -> str:
    """The reason a recording is opened (R13): stated in words, kept in the audit log."""
    reason = " ".join(reason.split())
    if not VIEW_REASON_MIN <= len(reason) <= VIEW_REASON_MAX:
        raise Refusal(
            ErrorCode.BODY_INVALID,
            f"Say why you are opening this recording ({VIEW_REASON_MIN} to"
            f" {VIEW_REASON_MAX} characters).",
        )
    return reason


# the desk's list -------------------------------------------------------------------------------
# What the list filters on: the catalogue's states, and "held" (under a safeguarding hold).
RECORDING_STATUSES = ("complete", "incomplete", "recording", "held", "destroyed")


@dataclass(frozen=True, slots=True)
class RecordingFilters:
    """The desk's list of recordings: newest first, `after` the last one of the page before."""

    session_id: str | None = None
    person_id: str | None = None  # a child (or anyone) recorded in it, by registry id
    purpose: str | None = None
    status: str | None = None  # one of RECORDING_STATUSES
    since: datetime | None = None  # started at or after
    until: datetime | None = None  # started before
    # (started_at in UTC microseconds, id) of the previous page's last: integers, exact
    after: tuple[int, str] | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in RECORDING_STATUSES:
            raise Refusal(
                ErrorCode.QUERY_INVALID, "status is one of " + ", ".join(RECORDING_STATUSES) + "."
            )
        if self.since and self.until and self.since >= self.until:
            raise Refusal(ErrorCode.QUERY_INVALID, "'From' must be before 'until'.")


# playback links ---------------------------------------------------------------------------------
class PlaybackFault(enum.StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    OTHER_STAFF = "other_staff"


@dataclass(frozen=True, slots=True)
class PlaybackGrant:
    """A playback link as stored (keyed by the SHA-256 of its token)."""

    token_hash: str
    recording_id: str
    org_id: str
    staff_id: str
    reason: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


def playback_fault(
    grant: PlaybackGrant | None, staff: Staff, now: datetime
) -> PlaybackFault | None:
    """None when `staff` may use the link now. Another member of staff is named before a used
    or expired link, so a leaked link is always reported as leaked."""
    if grant is None:
        return PlaybackFault.UNKNOWN
    if grant.staff_id != staff.id or grant.org_id != staff.org_id:
        return PlaybackFault.OTHER_STAFF
    if grant.used_at is not None:
        return PlaybackFault.USED
    if now >= grant.expires_at:
        return PlaybackFault.EXPIRED
    return None


def playback_refusal(fault: PlaybackFault) -> Refusal:
    if fault is PlaybackFault.OTHER_STAFF:
        return Refusal(ErrorCode.FORBIDDEN, "This playback link was issued to someone else.")
    return Refusal(
        ErrorCode.PLAYBACK_LINK_INVALID,
        "This playback link has been used or has expired; open the recording again.",
    )
