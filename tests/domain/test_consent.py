"""Consent state (R6, R7, R9) and who may speak for whom."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.domain.consent import (
    age_on,
    check_consent_giver,
    check_evidence,
    check_purpose,
    consent_state,
    current_consents,
)
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import (
    ConsentAction,
    ConsentRecord,
    EvidenceMethod,
    Person,
    PersonKind,
)

from .factories import (
    DEFAULT_POLICY,
    TODAY,
    child,
    evidence,
    guardian,
    make_policy,
    record,
    staff,
)

REC = "recording:lesson_review"
W = ConsentAction.WITHDRAW


def t(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 10, day, hour, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("dob", "day", "age"),
    [
        pytest.param(date(2014, 11, 23), date(2026, 11, 23), 12, id="birthday-today"),
        pytest.param(date(2014, 11, 24), date(2026, 11, 23), 11, id="birthday-tomorrow"),
        pytest.param(date(2014, 12, 1), date(2026, 11, 23), 11, id="later-month"),
        pytest.param(date(2014, 1, 1), date(2026, 11, 23), 12, id="earlier-month"),
        pytest.param(date(2012, 2, 29), date(2026, 2, 28), 13, id="leap-day-before"),
        pytest.param(date(2012, 2, 29), date(2026, 3, 1), 14, id="leap-day-after"),
        pytest.param(date(2026, 11, 23), date(2026, 11, 23), 0, id="born-today"),
    ],
)
def test_age_on(dob: date, day: date, age: int) -> None:
    assert age_on(dob, day) == age


SAM = child()  # 10 years old: no assent needed
OLDER = child("child_2", date_of_birth=date(2013, 1, 1), guardian_ids=frozenset({"guardian_1"}))
PAT = guardian()
OTHER_G = guardian("guardian_9")
ROBIN = staff()

CHILD_CASES = [
    pytest.param(SAM, [], False, ("no_guardian_consent",), (), id="young-nothing"),
    pytest.param(
        SAM,
        [record(SAM, by=PAT, id="g1")],
        True,
        ("guardian_consent",),
        ("g1",),
        id="young-guardian-enough",
    ),
    pytest.param(
        SAM,
        [record(SAM, id="c1")],
        False,
        ("no_guardian_consent",),
        (),
        id="young-child-alone-not-enough",
    ),
    pytest.param(
        SAM,
        [record(SAM, by=OTHER_G, id="g9")],
        False,
        ("no_guardian_consent", "giver_not_allowed"),
        (),
        id="someone-elses-guardian-ignored",
    ),
    pytest.param(
        SAM,
        [record(SAM, by=ROBIN, id="s1")],
        False,
        ("no_guardian_consent", "giver_not_allowed"),
        (),
        id="staff-cannot-consent-for-child",
    ),
    pytest.param(
        OLDER,
        [record(OLDER, by=PAT, id="g1")],
        False,
        ("guardian_consent", "no_child_assent"),
        (),
        id="older-needs-assent",
    ),
    pytest.param(
        OLDER,
        [record(OLDER, id="c1")],
        False,
        ("no_guardian_consent", "child_assent"),
        (),
        id="older-assent-alone",
    ),
    pytest.param(
        OLDER,
        [record(OLDER, by=PAT, id="g1", at=t(1)), record(OLDER, id="c1", at=t(2))],
        True,
        ("guardian_consent", "child_assent"),
        ("g1", "c1"),
        id="older-both",
    ),
    pytest.param(
        SAM,
        [record(SAM, by=PAT, id="g1", at=t(1)), record(SAM, by=PAT, action=W, id="w1", at=t(2))],
        False,
        ("no_guardian_consent", "withdrawn"),
        ("w1",),
        id="guardian-withdraws",
    ),
    pytest.param(
        OLDER,
        [
            record(OLDER, by=PAT, id="g1", at=t(1)),
            record(OLDER, id="c1", at=t(2)),
            record(OLDER, action=W, id="w1", at=t(3)),
        ],
        False,
        ("no_guardian_consent", "no_child_assent", "withdrawn"),
        ("w1",),
        id="child-withdraws-voids-guardian-too",
    ),
    pytest.param(
        SAM,
        [
            record(SAM, by=PAT, id="g1", at=t(1)),
            record(SAM, by=PAT, action=W, id="w1", at=t(2)),
            record(SAM, by=PAT, id="g2", at=t(3)),
        ],
        True,
        ("guardian_consent",),
        ("g2",),
        id="given-again-after-withdrawal",
    ),
    pytest.param(
        SAM,
        [
            record(SAM, by=PAT, id="g2", at=t(3)),
            record(SAM, by=PAT, action=W, id="w1", at=t(2)),
            record(SAM, by=PAT, id="g1", at=t(1)),
        ],
        True,
        ("guardian_consent",),
        ("g2",),
        id="order-by-recorded-at-not-list-order",
    ),
    pytest.param(
        SAM,
        [
            record(SAM, by=PAT, action=W, id="b", at=t(2)),
            record(SAM, by=PAT, id="a", at=t(2)),
        ],
        False,
        ("no_guardian_consent", "withdrawn"),
        ("b",),
        id="tie-broken-by-id-give-a-before-withdraw-b",
    ),
    pytest.param(
        SAM,
        [
            record(SAM, by=PAT, id="b", at=t(2)),
            record(SAM, by=PAT, action=W, id="a", at=t(2)),
        ],
        True,
        ("guardian_consent",),
        ("b",),
        id="tie-broken-by-id-withdraw-a-before-give-b",
    ),
    pytest.param(
        SAM,
        [record(SAM, by=PAT, id="g1", at=t(1)), record(SAM, by=OTHER_G, action=W, at=t(2))],
        True,
        ("guardian_consent",),
        ("g1",),
        id="withdrawal-by-stranger-ignored",
    ),
    pytest.param(
        SAM,
        [record(SAM, by=PAT, evidence_=None, id="g1")],
        False,
        ("no_guardian_consent", "evidence_not_accepted"),
        (),
        id="no-evidence",
    ),
    pytest.param(
        SAM,
        [record(SAM, by=PAT, evidence_=evidence(EvidenceMethod.WRITTEN_EMAIL), id="g1")],
        False,
        ("no_guardian_consent", "evidence_not_accepted"),
        (),
        id="evidence-method-not-accepted",
    ),
    pytest.param(
        SAM,
        [record(SAM, by=PAT, evidence_=evidence(dated=date(2026, 11, 24)), id="g1")],
        False,
        ("no_guardian_consent", "evidence_not_accepted"),
        (),
        id="evidence-dated-after-today",
    ),
    pytest.param(
        SAM,
        [record(SAM, by=PAT, evidence_=evidence(dated=TODAY), id="g1")],
        True,
        ("guardian_consent",),
        ("g1",),
        id="evidence-dated-today-ok",
    ),
    pytest.param(
        SAM,
        [record(SAM, by=PAT, purpose=REC, id="g1")],
        False,
        ("no_guardian_consent",),
        (),
        id="other-purpose-does-not-count",
    ),
    pytest.param(
        SAM,
        [record(OLDER, by=PAT, id="g1")],
        False,
        ("no_guardian_consent",),
        (),
        id="other-subject-does-not-count",
    ),
]


@pytest.mark.parametrize(("subject", "records", "valid", "reasons", "ids"), CHILD_CASES)
def test_child_participation(
    subject: Person,
    records: list[ConsentRecord],
    valid: bool,
    reasons: tuple[str, ...],
    ids: tuple[str, ...],
) -> None:
    state = consent_state(subject, records, "participation", DEFAULT_POLICY, TODAY)
    assert (state.valid, state.reasons, state.record_ids) == (valid, reasons, ids)
    assert state.purpose == "participation"


@pytest.mark.parametrize(
    ("age_years", "assent_age", "required"),
    [
        pytest.param(11, 12, False, id="11-under-12"),
        pytest.param(12, 12, True, id="12-at-12"),
        pytest.param(13, 12, True, id="13-over-12"),
        pytest.param(5, 0, True, id="assent-age-0-always"),
        pytest.param(17, 18, False, id="17-under-18"),
    ],
)
def test_assent_required_follows_policy_age(
    age_years: int, assent_age: int, required: bool
) -> None:
    kid = child(date_of_birth=date(TODAY.year - age_years, 1, 1))
    policy = make_policy(consent={"child_assent_age": assent_age})
    state = consent_state(kid, [record(kid, by=PAT)], "participation", policy, TODAY)
    assert state.assent_required is required
    assert state.valid is (not required)
    assert ("no_child_assent" in state.reasons) is required


@pytest.mark.parametrize(
    ("policy_kwargs", "records", "purpose", "valid", "reasons"),
    [
        pytest.param({}, [], "participation", True, ("staff_not_required",), id="participation"),
        pytest.param(
            {},
            [record(ROBIN, action=W)],
            "participation",
            True,
            ("staff_not_required",),
            id="participation-even-after-withdrawal",
        ),
        pytest.param({}, [], REC, False, ("no_own_consent",), id="recording-required-missing"),
        pytest.param(
            {}, [record(ROBIN, purpose=REC, id="s1")], REC, True, ("own_consent",), id="own-give"
        ),
        pytest.param(
            {},
            [record(ROBIN, purpose=REC, by_kind=PersonKind.STAFF, by_id="staff_2")],
            REC,
            False,
            ("no_own_consent", "giver_not_allowed"),
            id="colleague-cannot-give",
        ),
        pytest.param(
            {"consent": {"staff_consent_required": False}},
            [],
            REC,
            True,
            ("not_required_by_policy",),
            id="recording-not-required",
        ),
        pytest.param(
            {"consent": {"staff_consent_required": False}},
            [record(ROBIN, purpose=REC, action=W)],
            REC,
            False,
            ("no_own_consent", "withdrawn"),
            id="not-required-but-withdrawn-honoured",
        ),
        pytest.param(
            {},
            [
                record(ROBIN, purpose=REC, at=t(1)),
                record(ROBIN, purpose=REC, action=W, at=t(2)),
            ],
            REC,
            False,
            ("no_own_consent", "withdrawn"),
            id="withdrawn",
        ),
    ],
)
def test_staff_consent(
    policy_kwargs: dict[str, dict[str, object]],
    records: list[ConsentRecord],
    purpose: str,
    valid: bool,
    reasons: tuple[str, ...],
) -> None:
    state = consent_state(ROBIN, records, purpose, make_policy(**policy_kwargs), TODAY)
    assert (state.valid, state.reasons) == (valid, reasons)
    assert state.assent_required is False


@pytest.mark.parametrize(
    ("records", "valid", "reasons"),
    [
        pytest.param([], False, ("no_own_consent",), id="nothing"),
        pytest.param([record(PAT, id="p1")], True, ("own_consent",), id="own"),
        pytest.param(
            [record(PAT, by=OTHER_G)],
            False,
            ("no_own_consent", "giver_not_allowed"),
            id="other-guardian",
        ),
        pytest.param(
            [record(PAT, at=t(1)), record(PAT, action=W, at=t(2))],
            False,
            ("no_own_consent", "withdrawn"),
            id="withdrawn",
        ),
    ],
)
def test_guardian_consent(
    records: list[ConsentRecord], valid: bool, reasons: tuple[str, ...]
) -> None:
    state = consent_state(PAT, records, "participation", DEFAULT_POLICY, TODAY)
    assert (state.valid, state.reasons) == (valid, reasons)


@pytest.mark.parametrize(
    "person",
    [
        pytest.param(SAM, id="child"),
        pytest.param(ROBIN, id="staff"),
        pytest.param(PAT, id="guardian"),
    ],
)
def test_unknown_purpose_is_invalid(person: Person) -> None:
    records = [record(person, purpose="recording:marketing")]
    state = consent_state(person, records, "recording:marketing", DEFAULT_POLICY, TODAY)
    assert (state.valid, state.reasons) == (False, ("purpose_unknown",))


def test_withdrawal_id_reported() -> None:
    records = [record(SAM, by=PAT, at=t(1)), record(SAM, by=PAT, action=W, id="w-1", at=t(5))]
    state = consent_state(SAM, records, "participation", DEFAULT_POLICY, TODAY)
    assert state.record_ids == ("w-1",)
    assert "withdrawn" in state.reasons


def test_current_consents_covers_every_policy_purpose() -> None:
    records = [record(SAM, by=PAT), record(SAM, by=PAT, purpose="recording:safeguarding_review")]
    states = current_consents(SAM, records, DEFAULT_POLICY, TODAY)
    assert list(states) == [
        "participation",
        "recording:lesson_review",
        "recording:safeguarding_review",
    ]
    assert {p: s.valid for p, s in states.items()} == {
        "participation": True,
        "recording:lesson_review": False,
        "recording:safeguarding_review": True,
    }


# -- who may speak for whom --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "kind", "giver_id"),
    [
        pytest.param(SAM, PersonKind.GUARDIAN, "guardian_1", id="child-by-own-guardian"),
        pytest.param(SAM, PersonKind.CHILD, "child_1", id="child-by-self"),
        pytest.param(ROBIN, PersonKind.STAFF, "staff_1", id="staff-by-self"),
        pytest.param(PAT, PersonKind.GUARDIAN, "guardian_1", id="guardian-by-self"),
    ],
)
def test_consent_giver_allowed(subject: Person, kind: PersonKind, giver_id: str) -> None:
    check_consent_giver(subject, kind, giver_id)  # does not raise


@pytest.mark.parametrize(
    ("subject", "kind", "giver_id", "code"),
    [
        pytest.param(
            SAM,
            PersonKind.GUARDIAN,
            "guardian_9",
            ErrorCode.NOT_A_GUARDIAN,
            id="child-by-stranger-guardian",
        ),
        pytest.param(
            SAM,
            PersonKind.STAFF,
            "staff_1",
            ErrorCode.CONSENT_GIVER_NOT_ALLOWED,
            id="child-by-staff",
        ),
        pytest.param(
            SAM,
            PersonKind.CHILD,
            "child_2",
            ErrorCode.CONSENT_GIVER_NOT_ALLOWED,
            id="child-by-other-child",
        ),
        pytest.param(
            ROBIN,
            PersonKind.STAFF,
            "staff_2",
            ErrorCode.CONSENT_GIVER_NOT_ALLOWED,
            id="staff-by-colleague",
        ),
        pytest.param(
            ROBIN,
            PersonKind.GUARDIAN,
            "guardian_1",
            ErrorCode.CONSENT_GIVER_NOT_ALLOWED,
            id="staff-by-guardian",
        ),
        pytest.param(
            PAT,
            PersonKind.GUARDIAN,
            "guardian_9",
            ErrorCode.CONSENT_GIVER_NOT_ALLOWED,
            id="guardian-by-other-guardian",
        ),
        pytest.param(
            PAT,
            PersonKind.STAFF,
            "staff_1",
            ErrorCode.CONSENT_GIVER_NOT_ALLOWED,
            id="guardian-by-staff",
        ),
    ],
)
def test_consent_giver_refused(
    subject: Person, kind: PersonKind, giver_id: str, code: ErrorCode
) -> None:
    with pytest.raises(Refusal) as caught:
        check_consent_giver(subject, kind, giver_id)
    assert caught.value.code is code
    for personal in ("Sam", "Rivers", "Robin", "Pat", giver_id, subject.id):
        assert personal not in caught.value.message


@pytest.mark.parametrize(
    ("ev_method", "dated", "ok"),
    [
        pytest.param(EvidenceMethod.SIGNED_FORM, TODAY, True, id="signed-today"),
        pytest.param(EvidenceMethod.E_SIGNATURE, date(2020, 1, 1), True, id="esig-old"),
        pytest.param(EvidenceMethod.WRITTEN_EMAIL, TODAY, False, id="email-not-accepted"),
        pytest.param(EvidenceMethod.SIGNED_FORM, date(2026, 11, 24), False, id="future-dated"),
    ],
)
def test_check_evidence(ev_method: EvidenceMethod, dated: date, ok: bool) -> None:
    if ok:
        check_evidence(evidence(ev_method, dated), DEFAULT_POLICY, TODAY)
    else:
        with pytest.raises(Refusal) as caught:
            check_evidence(evidence(ev_method, dated), DEFAULT_POLICY, TODAY)
        assert caught.value.code is ErrorCode.EVIDENCE_NOT_ACCEPTED


def test_check_evidence_missing() -> None:
    with pytest.raises(Refusal) as caught:
        check_evidence(None, DEFAULT_POLICY, TODAY)
    assert caught.value.code is ErrorCode.EVIDENCE_NOT_ACCEPTED


@pytest.mark.parametrize(
    ("purpose", "ok"),
    [
        ("participation", True),
        ("recording:lesson_review", True),
        ("recording:marketing", False),
        ("lesson_review", False),
    ],
)
def test_check_purpose(purpose: str, ok: bool) -> None:
    if ok:
        check_purpose(purpose, DEFAULT_POLICY)
    else:
        with pytest.raises(Refusal) as caught:
            check_purpose(purpose, DEFAULT_POLICY)
        assert caught.value.code is ErrorCode.PURPOSE_UNKNOWN
