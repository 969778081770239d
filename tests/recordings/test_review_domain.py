"""Who may watch a recording, the stated reason and the playback link (R13): the pure
decisions in gateway/domain/review.py, as tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import StaffRole
from gateway.domain.policy import parse_policy
from gateway.domain.retention import RecordingState
from gateway.domain.review import (
    PLAYBACK_TTL,
    PlaybackFault,
    PlaybackGrant,
    RecordingAccess,
    RecordingFilters,
    ViewRefusal,
    check_view_reason,
    playback_fault,
    playback_refusal,
    refusal_for,
    view_decision,
)
from tests.domain.factories import DEFAULT_POLICY_TEXT, NOW, ORG, staff

DSL = frozenset({StaffRole.DSL})
ADMIN = frozenset({StaffRole.ADMIN})
TUTOR = frozenset({StaffRole.TUTOR})
OBSERVER = frozenset({StaffRole.OBSERVER})
HOST = "staff_1"  # the factories' default staff id: the session's host below
COMPLETE = RecordingState.COMPLETE


def access(
    *,
    viewers: tuple[str, ...] | None = ("admin",),
    state: RecordingState = COMPLETE,
    started: bool = False,
    host: str | None = HOST,
    org: str = ORG,
) -> RecordingAccess:
    return RecordingAccess(org, state, started, viewers, host)


# (who, roles, the recording, allowed?, refusal, watches as)
CASES = [
    ("dsl, any purpose", DSL, access(), True, None, "dsl"),
    ("dsl, purpose lists nobody", DSL, access(viewers=()), True, None, "dsl"),
    ("dsl, purpose gone from the policy", DSL, access(viewers=None), True, None, "dsl"),
    ("dsl, incomplete recording", DSL, access(state=RecordingState.INCOMPLETE), True, None, "dsl"),
    ("admin, purpose lists admin", ADMIN, access(), True, None, "admin"),
    ("admin, purpose lists nobody", ADMIN, access(viewers=()), False, ViewRefusal.ROLE, None),
    ("admin, purpose gone", ADMIN, access(viewers=None), False, ViewRefusal.ROLE, None),
    ("tutor, default purpose", TUTOR, access(), False, ViewRefusal.ROLE, None),
    ("tutor, purpose allows, own session", TUTOR, access(viewers=("tutor",)), True, None, "tutor"),
    (
        "tutor, purpose allows, another's session",
        TUTOR,
        access(viewers=("tutor",), host="staff_9"),
        False,
        ViewRefusal.NOT_THEIR_SESSION,
        None,
    ),
    (
        "tutor, purpose allows, session unknown",
        TUTOR,
        access(viewers=("tutor",), host=None),
        False,
        ViewRefusal.NOT_THEIR_SESSION,
        None,
    ),
    (
        "observer, never",
        OBSERVER,
        access(viewers=("admin", "tutor")),
        False,
        ViewRefusal.ROLE,
        None,
    ),
    (
        "dsl of another organisation",
        DSL,
        access(org="org_2"),
        False,
        ViewRefusal.OTHER_ORGANISATION,
        None,
    ),
    (
        "dsl, destroyed",
        DSL,
        access(state=RecordingState.DESTROYED),
        False,
        ViewRefusal.DESTROYED,
        None,
    ),
    ("dsl, destruction begun", DSL, access(started=True), False, ViewRefusal.DESTROYED, None),
    (
        "dsl, still recording",
        DSL,
        access(state=RecordingState.RECORDING),
        False,
        ViewRefusal.STILL_RECORDING,
        None,
    ),
    (
        "tutor and dsl: the stronger role",
        frozenset({StaffRole.TUTOR, StaffRole.DSL}),
        access(host="staff_9"),
        True,
        None,
        "dsl",
    ),
]


@pytest.mark.parametrize(
    ("roles", "facts", "allowed", "refusal", "as_role"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_who_may_watch(
    roles: frozenset[StaffRole],
    facts: RecordingAccess,
    allowed: bool,
    refusal: ViewRefusal | None,
    as_role: str | None,
) -> None:
    decision = view_decision(staff(roles=roles), facts)
    assert (decision.allowed, decision.refusal, decision.as_role) == (allowed, refusal, as_role)


@pytest.mark.parametrize(
    ("refused", "code"),
    [
        (ViewRefusal.OTHER_ORGANISATION, ErrorCode.NOT_FOUND),  # never reveals it exists
        (ViewRefusal.DESTROYED, ErrorCode.RECORDING_GONE),
        (ViewRefusal.STILL_RECORDING, ErrorCode.CONFLICT),
        (ViewRefusal.ROLE, ErrorCode.FORBIDDEN),
        (ViewRefusal.NOT_THEIR_SESSION, ErrorCode.FORBIDDEN),
    ],
)
def test_what_a_refused_viewer_is_told(refused: ViewRefusal, code: ErrorCode) -> None:
    assert refusal_for(refused).code is code


def test_the_policy_names_who_besides_the_dsl_may_watch() -> None:
    policy = parse_policy(DEFAULT_POLICY_TEXT)
    assert policy.recording.purposes["lesson_review"].viewers == ("admin",)
    text = DEFAULT_POLICY_TEXT.replace(
        "audio_only = false", 'audio_only = false\nviewers = ["admin", "tutor"]'
    )
    assert parse_policy(text).recording.purposes["lesson_review"].viewers == ("admin", "tutor")
    with pytest.raises(ValueError):
        parse_policy(text.replace('"tutor"]', '"observer"]'))


@pytest.mark.parametrize(
    ("reason", "ok"),
    [
        ("", False),
        ("   ", False),
        ("x", False),
        ("too short", False),  # nine characters
        ("Concern 42", True),
        ("  Reviewing   the concern\nraised on Monday  ", True),
        ("r" * 1000, True),
        ("r" * 1001, False),
    ],
)
def test_a_reason_is_stated_in_words(reason: str, ok: bool) -> None:
    if ok:
        assert check_view_reason(reason) == " ".join(reason.split())
    else:
        with pytest.raises(Refusal) as refused:
            check_view_reason(reason)
        assert refused.value.code is ErrorCode.BODY_INVALID


GRANT = PlaybackGrant(
    token_hash="h" * 64,
    recording_id="r" * 32,
    org_id=ORG,
    staff_id=HOST,
    reason="Concern 42 review",
    created_at=NOW,
    expires_at=NOW + PLAYBACK_TTL,
)


@pytest.mark.parametrize(
    ("grant", "who", "at", "fault"),
    [
        (GRANT, staff(roles=DSL), NOW, None),
        (GRANT, staff(roles=DSL), NOW + PLAYBACK_TTL - timedelta(microseconds=1), None),
        (GRANT, staff(roles=DSL), NOW + PLAYBACK_TTL, PlaybackFault.EXPIRED),
        (replace(GRANT, used_at=NOW), staff(roles=DSL), NOW, PlaybackFault.USED),
        (GRANT, staff("staff_2", roles=DSL), NOW, PlaybackFault.OTHER_STAFF),
        # a leaked link is reported as leaked even when it is also used or expired
        (replace(GRANT, used_at=NOW), staff("staff_2", roles=DSL), NOW, PlaybackFault.OTHER_STAFF),
        (GRANT, staff("staff_2", roles=DSL), NOW + timedelta(hours=1), PlaybackFault.OTHER_STAFF),
        # the same staff id in another organisation is someone else
        (GRANT, staff(roles=DSL, org_id="org_2"), NOW, PlaybackFault.OTHER_STAFF),
        (None, staff(roles=DSL), NOW, PlaybackFault.UNKNOWN),
    ],
)
def test_a_playback_link(
    grant: PlaybackGrant | None, who: object, at: object, fault: PlaybackFault | None
) -> None:
    assert playback_fault(grant, who, at) is fault  # type: ignore[arg-type]


def test_link_refusals_say_nothing_about_the_recording() -> None:
    for fault in PlaybackFault:
        refusal = playback_refusal(fault)
        assert "r" * 32 not in refusal.message
    assert playback_refusal(PlaybackFault.OTHER_STAFF).code is ErrorCode.FORBIDDEN
    assert playback_refusal(PlaybackFault.USED).code is ErrorCode.PLAYBACK_LINK_INVALID


def test_list_filters_are_checked() -> None:
    with pytest.raises(Refusal):
        RecordingFilters(status="lost")
    with pytest.raises(Refusal):
        RecordingFilters(since=NOW, until=NOW)
    assert RecordingFilters(status="held").status == "held"


# the session's timeline with its recordings ------------------------------------------------------
def test_recordings_are_drawn_on_their_participants_lanes() -> None:
    from gateway.domain.timeline import RecordedInterval, lay_out_timeline
    from tests.desk.test_timeline_layout import ROSTER, T0, join

    minute = timedelta(minutes=1)
    layout = lay_out_timeline(
        [join(0, "p-host"), join(1, "p-sam")],
        ROSTER,
        until=T0 + 60 * minute,
        recordings=[
            RecordedInterval("p-sam", T0 + 5 * minute, T0 + 20 * minute, "complete"),
            RecordedInterval("p-sam", T0 + 30 * minute, None, "recording"),  # still running
            RecordedInterval("p-ada", T0 + 5 * minute, T0 + 6 * minute, "incomplete"),
            RecordedInterval("p-unknown", T0, T0 + minute, "complete"),  # not on the roster
        ],
    )
    lanes = {lane.label: lane for lane in layout.lanes}
    sam = [(b.start, b.end) for b in lanes["Sam G. (Child)"].bars if b.kind == "recorded"]
    assert sam == [(T0 + 5 * minute, T0 + 20 * minute), (T0 + 30 * minute, T0 + 60 * minute)]
    # Ada was never present, but her recording gives her a lane.
    ada = [b.kind for b in lanes["Ada H. (Child)"].bars]
    assert ada == ["recorded"]
    assert not any(b.kind == "recorded" for b in lanes["Tina T. (Host)"].bars)
    rows = [(row.at, row.who, row.what) for row in layout.rows]
    assert (T0 + 20 * minute, "Sam G. (Child)", "recording complete") in rows
    assert (T0 + 6 * minute, "Ada H. (Child)", "recording incomplete") in rows
    assert [row.at for row in layout.rows] == sorted(row.at for row in layout.rows)
    assert all("unknown" not in row.who for row in layout.rows)
