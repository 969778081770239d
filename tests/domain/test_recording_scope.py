"""Who a live recording may capture (R7, R8, R10), as tables."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import ConsentAction, ConsentRecord, SessionRole
from gateway.domain.policy import Policy
from gateway.domain.recording_scope import (
    Candidate,
    NewcomerAction,
    decide_newcomer,
    decide_start,
)
from tests.domain.factories import TODAY, child, guardian, make_policy, record, staff

PURPOSE = "lesson_review"
CONSENT = "recording:lesson_review"

TUTOR = staff("staff_1", name="Robin Tutor")
YOUNG = child("child_1", name="Sam Rivers")  # 10: no assent needed
MUM = guardian("guardian_1")
PARENT_OF_OLDER = guardian("guardian_2")
OLDER = child(  # 14: their own assent is needed too
    "child_2",
    name="Ada Hill",
    date_of_birth=date(2012, 1, 1),
    guardian_ids=frozenset({"guardian_2"}),
)


def tutor(**kw: Any) -> Candidate:
    return Candidate("p_tutor", "Robin T.", TUTOR, SessionRole.HOST, **kw)


def young(answer: str | None = "yes") -> Candidate:
    return Candidate("p_sam", "Sam R.", YOUNG, SessionRole.CHILD, answer)


def older(answer: str | None = "yes") -> Candidate:
    return Candidate("p_ada", "Ada H.", OLDER, SessionRole.CHILD, answer)


def viewer() -> Candidate:
    return Candidate("p_view", "Viewer 1", child("child_9"), SessionRole.VIEWER, None)


def consents(*which: str) -> dict[str, list[ConsentRecord]]:
    """'tutor', 'young', 'older_parent', 'older_self', each for the lesson_review purpose."""
    made: dict[str, list[ConsentRecord]] = {}
    if "tutor" in which:
        made.setdefault(TUTOR.id, []).append(record(TUTOR, purpose=CONSENT))
    if "young" in which:
        made.setdefault(YOUNG.id, []).append(record(YOUNG, by=MUM, purpose=CONSENT))
    if "older_parent" in which:
        made.setdefault(OLDER.id, []).append(record(OLDER, by=PARENT_OF_OLDER, purpose=CONSENT))
    if "older_self" in which:
        made.setdefault(OLDER.id, []).append(record(OLDER, purpose=CONSENT))
    return made


EVERYONE = ("tutor", "young", "older_parent", "older_self")


@pytest.mark.parametrize(
    ("given", "people", "allowed", "lacking"),
    [
        (EVERYONE, (tutor(), young(), older()), True, {}),
        (("young", "older_parent", "older_self"), (tutor(), young()), False,
         {"Robin T.": ("own_consent",)}),
        (("tutor", "older_parent", "older_self"), (tutor(), young()), False,
         {"Sam R.": ("guardian_consent",)}),
        (("tutor", "young", "older_parent"), (tutor(), young(), older()), False,
         {"Ada H.": ("child_assent",)}),
        (("tutor", "young", "older_self"), (tutor(), older()), False,
         {"Ada H.": ("guardian_consent",)}),
        (("tutor",), (tutor(), young(), older()), False,
         {"Sam R.": ("guardian_consent",), "Ada H.": ("guardian_consent", "child_assent")}),
        # a viewer never publishes, so is never recorded and needs no consent
        (("tutor", "young"), (tutor(), young(), viewer()), True, {}),
        # nobody to record: nothing starts
        ((), (viewer(),), False, {}),
    ],
)  # fmt: skip
def test_start_needs_everyone_recorded_to_have_consent(
    given: tuple[str, ...],
    people: tuple[Candidate, ...],
    allowed: bool,
    lacking: dict[str, tuple[str, ...]],
) -> None:
    decision = decide_start(people, consents(*given), PURPOSE, make_policy(), TODAY)
    assert decision.allowed is allowed
    assert {lack.display_name: lack.missing for lack in decision.lacking} == lacking
    if allowed:
        assert set(decision.recorded) == {p.identity for p in people if p.role.value != "viewer"}
    else:
        assert decision.recorded == () and dict(decision.consent_records) == {}


def test_refusal_list_names_people_by_masked_name_only() -> None:
    decision = decide_start((tutor(), young()), consents("tutor"), PURPOSE, make_policy(), TODAY)
    shown = [lack.as_dict() for lack in decision.lacking]
    assert shown[0]["says"] == "Sam R.: a parent's or carer's written consent"
    assert "Rivers" not in str(shown) and YOUNG.id not in str(shown)


def test_staff_consent_follows_the_policy() -> None:
    relaxed = make_policy(consent={"staff_consent_required": False})
    decision = decide_start((tutor(), young()), consents("young"), PURPOSE, relaxed, TODAY)
    assert decision.allowed
    withdrawn = {
        TUTOR.id: [record(TUTOR, purpose=CONSENT, action=ConsentAction.WITHDRAW, evidence_=None)]
    }
    assert not decide_start((tutor(),), withdrawn, PURPOSE, relaxed, TODAY).allowed


@pytest.mark.parametrize("purpose", ["marketing", "", "recording:lesson_review", "../x"])
def test_a_purpose_the_policy_does_not_list_is_refused(purpose: str) -> None:
    with pytest.raises(Refusal) as refused:
        decide_start((tutor(),), consents(*EVERYONE), purpose, make_policy(), TODAY)
    assert refused.value.code is ErrorCode.PURPOSE_UNKNOWN


def test_consent_for_another_purpose_does_not_count() -> None:
    other = {YOUNG.id: [record(YOUNG, by=MUM, purpose="recording:safeguarding_review")]}
    decision = decide_start((young(),), other, PURPOSE, make_policy(), TODAY)
    assert not decision.allowed


@pytest.mark.parametrize(
    ("declines", "answer", "allowed", "recorded", "excluded", "lacking"),
    [
        ("exclude", "yes", True, {"p_tutor", "p_sam"}, {}, {}),
        ("exclude", "no", True, {"p_tutor"}, {"p_sam": "declined_today"}, {}),
        ("exclude", None, True, {"p_tutor"}, {"p_sam": "not_asked_today"}, {}),
        ("block", "yes", True, {"p_tutor", "p_sam"}, {}, {}),
        ("block", "no", False, set(), {}, {"Sam R.": ("declined_today",)}),
        ("block", None, False, set(), {}, {"Sam R.": ("not_asked_today",)}),
    ],
)
def test_a_child_declining_today_is_excluded_or_blocks_as_the_policy_says(
    declines: str,
    answer: str | None,
    allowed: bool,
    recorded: set[str],
    excluded: dict[str, str],
    lacking: dict[str, tuple[str, ...]],
) -> None:
    policy = make_policy(recording={"child_declines": declines})
    decision = decide_start(
        (tutor(), young(answer)), consents("tutor", "young"), PURPOSE, policy, TODAY
    )
    assert decision.allowed is allowed
    assert set(decision.recorded) == recorded
    assert dict(decision.excluded) == excluded
    assert {lack.display_name: lack.missing for lack in decision.lacking} == lacking


def test_adults_are_not_asked_on_the_day() -> None:
    decision = decide_start((tutor(day_answer=None),), consents("tutor"), PURPOSE, make_policy(),
                            TODAY)  # fmt: skip
    assert decision.allowed and decision.recorded == ("p_tutor",)


@pytest.mark.parametrize(
    ("declines", "given", "answer", "action"),
    [
        ("exclude", ("young",), "yes", NewcomerAction.RECORD),
        ("exclude", (), "yes", NewcomerAction.EXCLUDE),
        ("exclude", ("young",), "no", NewcomerAction.EXCLUDE),
        ("exclude", ("young",), None, NewcomerAction.EXCLUDE),
        ("block", ("young",), "yes", NewcomerAction.RECORD),
        ("block", (), "yes", NewcomerAction.STOP),
        ("block", ("young",), "no", NewcomerAction.STOP),
    ],
)
def test_someone_joining_while_recording(
    declines: str, given: tuple[str, ...], answer: str | None, action: NewcomerAction
) -> None:
    policy = make_policy(recording={"child_declines": declines})
    found, reasons, ids = decide_newcomer(
        young(answer), consents(*given).get(YOUNG.id, []), PURPOSE, policy, TODAY
    )
    assert found is action
    assert bool(reasons) is (action is not NewcomerAction.RECORD)
    assert bool(ids) is (action is NewcomerAction.RECORD)


def test_a_withdrawal_voids_consent_for_a_newcomer_check() -> None:
    history = [
        record(YOUNG, by=MUM, purpose=CONSENT),
        record(
            YOUNG,
            by=MUM,
            purpose=CONSENT,
            action=ConsentAction.WITHDRAW,
            evidence_=None,
            at=record(YOUNG).recorded_at.replace(hour=10),
        ),
    ]
    action, reasons, _ = decide_newcomer(young(), history, PURPOSE, make_policy(), TODAY)
    assert action is NewcomerAction.EXCLUDE and reasons == ("guardian_consent",)


def test_a_viewer_joining_is_never_recorded() -> None:
    action, reasons, _ = decide_newcomer(viewer(), [], PURPOSE, make_policy(), TODAY)
    assert action is NewcomerAction.EXCLUDE and reasons == ("does_not_publish",)


@pytest.mark.parametrize("audio_only", [True, False])
def test_audio_only_comes_from_the_purpose(audio_only: bool) -> None:
    policy: Policy = make_policy(
        recording={"purposes": {"lesson_review": {"audio_only": audio_only}}}
    )
    decision = decide_start((tutor(),), consents("tutor"), PURPOSE, policy, TODAY)
    assert decision.audio_only is audio_only


def test_guardian_in_the_session_needs_their_own_consent() -> None:
    parent = Candidate("p_mum", "Pat R.", MUM, SessionRole.GUARDIAN)
    assert not decide_start((parent,), {}, PURPOSE, make_policy(), TODAY).allowed
    given = {MUM.id: [record(MUM, purpose=CONSENT)]}
    assert decide_start((parent,), given, PURPOSE, make_policy(), TODAY).allowed


@pytest.mark.parametrize(
    ("declines", "says"),
    [
        ("exclude", ["says no, or is not asked, is left out", "joins while", "is not recorded."]),
        (
            "block",
            ["says no, or is not asked, stops the recording", "recorded stops the recording"],
        ),
    ],
)
def test_the_policy_text_says_what_the_gateway_now_does(declines: str, says: list[str]) -> None:
    from gateway.domain.policy_text import render_policy

    text = " ".join(render_policy(make_policy(recording={"child_declines": declines})).split())
    for words in says:
        assert words in text, text
    assert "not switched on" not in text
    assert "(sound and video)" in text
    audio = make_policy(recording={"purposes": {"lesson_review": {"audio_only": True}}})
    assert "(sound only) for 30 days" in render_policy(audio)


def test_a_child_who_said_no_is_left_out_whatever_their_consent() -> None:
    decision = decide_start((tutor(), young("no")), consents("tutor"), PURPOSE, make_policy(),
                            TODAY)  # fmt: skip
    assert decision.allowed and dict(decision.excluded) == {"p_sam": "declined_today"}
    blocked = decide_start(
        (tutor(), young("no")),
        consents("tutor"),
        PURPOSE,
        make_policy(recording={"child_declines": "block"}),
        TODAY,
    )
    assert [x.missing for x in blocked.lacking] == [("guardian_consent", "declined_today")]
