"""The incident rules and views, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.incidents import (
    NOTE_MAX,
    Incident,
    IncidentNote,
    IncidentStatus,
    ReporterKind,
    check_can_close,
    check_may_handle,
    clean_actions,
    clean_note,
    clean_summary,
    incident_detail_view,
    incident_view,
    may_handle,
    viewer_rights,
)
from gateway.domain.models import Staff, StaffRole

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def staff(*roles: StaffRole) -> Staff:
    return Staff("s1", "o1", "Dee Lead", "dee@example.org", frozenset(roles), None)


def incident(status: IncidentStatus = IncidentStatus.OPEN) -> Incident:
    return Incident(
        id="i1",
        org_id="o1",
        session_id="sess",
        reported_by_kind=ReporterKind.PARTICIPANT,
        reporter_identity="p_abc",
        reporter_participant_id="part1",
        kind="concern",
        summary="worried",
        what_gateway_did=("dsl_notification_queued",),
        status=status,
        created_at=NOW,
    )


@pytest.mark.parametrize(
    ("roles", "handles", "reveals"),
    [
        ((StaffRole.DSL,), True, True),
        ((StaffRole.ADMIN,), True, False),
        ((StaffRole.TUTOR,), False, False),
        ((StaffRole.OBSERVER,), False, False),
        ((StaffRole.TUTOR, StaffRole.DSL), True, True),
    ],
)
def test_who_handles_and_who_sees_the_reporter(
    roles: tuple[StaffRole, ...], handles: bool, reveals: bool
) -> None:
    member = staff(*roles)
    assert may_handle(member) is handles
    rights = viewer_rights(member)
    assert rights.reveal_reporter is reveals and rights.read_notes is handles
    if not handles:
        with pytest.raises(Refusal) as refused:
            check_may_handle(member)
        assert refused.value.code is ErrorCode.FORBIDDEN
    nobody = viewer_rights(None)
    assert not nobody.reveal_reporter and not nobody.read_notes


def test_closed_incident_cannot_be_closed_again() -> None:
    check_can_close(incident())
    with pytest.raises(Refusal) as refused:
        check_can_close(incident(IncidentStatus.CLOSED))
    assert refused.value.code is ErrorCode.CONFLICT


def test_masked_view_hides_the_reporting_participant() -> None:
    masked = incident_view(incident(), reveal_reporter=False)
    assert masked["reported_by"] == {"kind": "participant", "identity": "p_abc"}
    assert "part1" not in str(masked)
    revealed = incident_view(incident(), reveal_reporter=True)
    assert revealed["reported_by"] == {
        "kind": "participant",
        "identity": "p_abc",
        "participant_id": "part1",
    }
    note = IncidentNote("n1", "i1", "s1", "spoke to guardian", NOW)
    assert "notes" not in incident_detail_view(incident(), viewer_rights(staff()), [note])
    shown = incident_detail_view(incident(), viewer_rights(staff(StaffRole.ADMIN)), [note])
    assert shown["notes"] == [
        {
            "id": "n1",
            "incident_id": "i1",
            "author_staff_id": "s1",
            "text": "spoke to guardian",
            "created_at": NOW.isoformat(),
        }
    ]


def test_text_rules() -> None:
    assert clean_note("  line one\r\nline two\t ") == "line one\nline two"
    assert clean_note("x" * NOTE_MAX) == "x" * NOTE_MAX
    assert clean_note("I feel sad 😢👨‍👩‍👧") == "I feel sad 😢👨‍👩‍👧"  # emoji with joiners are fine
    for bad in ("", "   ", "x" * (NOTE_MAX + 1), "a\x00b", "a\u202eb", "a\x9bb"):
        with pytest.raises(Refusal) as refused:
            clean_note(bad)
        assert refused.value.code is ErrorCode.BODY_INVALID
        assert bad.strip() == "" or bad[:3] not in refused.value.message
    assert clean_summary(None, "default") == "default"
    assert clean_summary("  ", "default") == "default"
    assert clean_summary("help", "default") == "help"
    with pytest.raises(Refusal):
        clean_summary("x" * 2001, "default")


def test_actions_are_short_words_without_repeats() -> None:
    assert clean_actions(["held_children", "alerted_host", "held_children"]) == (
        "held_children",
        "alerted_host",
    )
    # Nothing is recorded as told before it was: a claim that the DSL was alerted is recorded
    # as what is true when the incident opens (their message is queued).
    assert clean_actions(["alerted_dsl", "dsl_notification_queued"]) == ("dsl_notification_queued",)
    for bad in (["Alerted DSL"], ["x" * 65], [""], [f"a{i}" for i in range(21)]):
        with pytest.raises(Refusal):
            clean_actions(bad)
